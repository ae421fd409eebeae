// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title ISlasher
/// @notice On-chain punishment of equivocation: anyone may prove that one validator signed two
///         different batches for the same `(previousCommittedBatchHash, blockHash)`, or two
///         different sequencer blocks for the same `(anchor, height)`.
interface ISlasher {
    /// @notice The half of an equivocation proof that differs between the two batches: the
    ///         hashes of the batch's arrays (`Gear.chainCommitmentsHash`,
    ///         `Gear.codeCommitmentsHash`), its `burned`, and the 65-byte signature (r ‖ s ‖ v)
    ///         over the Router's EIP-712 digest of the batch hash.
    struct SignedBatchHeader {
        bytes32 chainCommitmentsHash;
        bytes32 codeCommitmentsHash;
        uint128 burned;
        bytes signature;
    }

    /// @notice The header of a sequencer block (injected transactions): the EIP-712 struct
    ///         `SequencerBlock(bytes32 anchor,uint64 anchorNumber,uint64 height,bytes32 parent,
    ///         bytes32 transactionsHash)` signed by the sequencer under the Router's domain
    ///         (`gexe.contracts.injected`). `anchor` is the Ethereum block (number
    ///         `anchorNumber`) whose events run just before the block's transactions; `height`
    ///         counts the sequencer's blocks; `transactionsHash` = keccak256 of the
    ///         transactions' hashes in order.
    struct SequencerBlockHeader {
        bytes32 anchor;
        uint64 anchorNumber;
        uint64 height;
        bytes32 parent;
        bytes32 transactionsHash;
    }

    event EquivocationSlashed(address indexed operator, address indexed signer, uint256 amount, address reporter);
    event SequencerEquivocationSlashed(
        address indexed operator, address indexed signer, uint256 amount, address reporter, bytes32 anchor, uint64 height
    );
    event FractionsChanged(uint16 slashFraction, uint16 reporterRewardFraction);
    event TreasuryChanged(address treasury);

    error ZeroAddress();
    /// @notice A fraction above 10,000 basis points.
    error InvalidFraction(uint256 basisPoints);
    /// @notice Both headers describe the same batch (hash `batchHash`): no equivocation.
    error SameBatch(bytes32 batchHash);
    /// @notice The two signatures come from different addresses.
    error DifferentSigners(address first, address second);
    /// @notice A proof with this key (`proofKey` or `sequencerProofKey`) was used.
    error ProofAlreadyUsed(bytes32 key);
    /// @notice The block's era `eraIndex` is `unbondingEras` or more behind `currentEra`: the
    ///         stake behind the signature may already be withdrawn.
    error ProofTooOld(uint256 eraIndex, uint256 currentEra);
    /// @notice The two sequencer block headers are not for the same slot: they differ in
    ///         anchor, anchor number or height.
    error NotSameSlot(
        bytes32 firstAnchor,
        uint64 firstAnchorNumber,
        uint64 firstHeight,
        bytes32 secondAnchor,
        uint64 secondAnchorNumber,
        uint64 secondHeight
    );
    /// @notice Both headers describe the same sequencer block (EIP-712 digest `blockHash`).
    error SameSequencerBlock(bytes32 blockHash);
    /// @notice The block precedes the first era: no validator set signed for it.
    error BlockBeforeFirstEra(uint64 blockNumber);
    /// @notice `signer` is not in the validator set of era `eraIndex` (its signatures never counted).
    error NotAValidatorOfEra(uint256 eraIndex, address signer);

    function router() external view returns (address);
    function staking() external view returns (address);
    /// @notice Part of the offender's stake (active + unbonding) taken, in basis points.
    function slashFraction() external view returns (uint16);
    /// @notice Part of the slashed amount paid to the reporter, in basis points.
    function reporterRewardFraction() external view returns (uint16);
    /// @notice Receives the slashed amount minus the reporter's reward.
    function treasury() external view returns (address);
    function proofUsed(bytes32 key) external view returns (bool);
    /// @notice keccak256(signer ‖ previousCommittedBatchHash ‖ blockHash): one proof per key.
    function proofKey(address signer, bytes32 previousCommittedBatchHash, bytes32 blockHash)
        external
        pure
        returns (bytes32);

    /// @notice keccak256(0x02 ‖ signer ‖ anchor ‖ uint64 height) (61 bytes): one sequencer
    ///         equivocation proof per key. Batch keys (`proofKey`) hash 84 bytes, so the two
    ///         kinds of key can only meet through a keccak256 collision.
    function sequencerProofKey(address signer, bytes32 anchor, uint64 height) external pure returns (bytes32);
    /// @notice The EIP-712 digest of a sequencer block header under the Router's domain: what
    ///         the sequencer signs, and the block's hash.
    function sequencerBlockHash(SequencerBlockHeader calldata h) external view returns (bytes32 digest);

    /// @notice Prove that one validator signed two different batches with the same
    ///         `(previousCommittedBatchHash, blockHash)`: slash its operator by `slashFraction`,
    ///         pay msg.sender `reporterRewardFraction` of that, send the rest to `treasury`, and
    ///         exclude the operator from future elections (until the Staking owner re-admits it).
    /// @return slashed The WVARA taken from the operator.
    function reportEquivocation(
        bytes32 blockHash,
        uint64 blockNumber,
        bytes32 previousCommittedBatchHash,
        SignedBatchHeader calldata first,
        SignedBatchHeader calldata second
    ) external returns (uint256 slashed);

    /// @notice Prove that one validator, acting as sequencer, signed two different sequencer
    ///         blocks for the same `(anchor, anchorNumber, height)`: punished like
    ///         `reportEquivocation` (slash, reward, exclusion). The era is the one of
    ///         `anchorNumber`, with the same age rule (`ProofTooOld`); the signer must be in
    ///         that era's validator set.
    /// @return slashed The WVARA taken from the operator.
    function reportSequencerEquivocation(
        SequencerBlockHeader calldata first,
        bytes calldata firstSignature,
        SequencerBlockHeader calldata second,
        bytes calldata secondSignature
    ) external returns (uint256 slashed);
}

// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";
import {Gear} from "./Gear.sol";
import {IRouter} from "./IRouter.sol";
import {ISlasher} from "./ISlasher.sol";
import {IStaking} from "./IStaking.sol";

/// @title Slasher
/// @notice Verifies equivocation proofs and punishes through Staking, whose `slasher` it is.
///         A proof is two batch headers sharing `(blockHash, blockNumber,
///         previousCommittedBatchHash)`: their hashes must differ and both signatures (over the
///         Router's EIP-712 digests, the very bytes `commitBatch` checks) must recover to one
///         signer that is in the validator set of the block's era. That era must be within the
///         unbonding window (`era + unbondingEras > currentEra`), so the stake is still there.
///         A sequencer equivocation is two sequencer block headers with the same
///         `(anchor, anchorNumber, height)` and different EIP-712 digests (same Router domain),
///         signed by one validator of the era of `anchorNumber`; it is punished the same way.
/// @dev Kept out of the Router so that the commit path stays small; it reads the Router's era
///      records and domain separator through views.
contract Slasher is ISlasher, Ownable, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    uint16 internal constant BASIS_POINTS = 10_000;

    address public immutable router;
    address public immutable staking;
    IERC20 internal immutable _wvara;

    uint16 public slashFraction;
    uint16 public reporterRewardFraction;
    address public treasury;

    mapping(bytes32 key => bool) public proofUsed;

    /// @dev keccak256("SequencerBlock(bytes32 anchor,uint64 anchorNumber,uint64 height,bytes32 parent,bytes32 transactionsHash)")
    bytes32 internal constant SEQUENCER_BLOCK_TYPEHASH = keccak256(
        "SequencerBlock(bytes32 anchor,uint64 anchorNumber,uint64 height,bytes32 parent,bytes32 transactionsHash)"
    );
    /// @dev First byte of a sequencer proof key's preimage (batch keys have none, and are longer).
    bytes1 internal constant SEQUENCER_KEY_TAG = 0x02;

    constructor(
        address owner_,
        address router_,
        uint16 slashFraction_,
        uint16 reporterRewardFraction_,
        address treasury_
    ) Ownable(owner_) {
        if (router_ == address(0) || treasury_ == address(0)) revert ZeroAddress();
        router = router_;
        staking = IRouter(router_).staking();
        _wvara = IERC20(IRouter(router_).wrappedVara());
        _setFractions(slashFraction_, reporterRewardFraction_);
        treasury = treasury_;
    }

    // -- owner --

    function setFractions(uint16 slashFraction_, uint16 reporterRewardFraction_) external onlyOwner {
        _setFractions(slashFraction_, reporterRewardFraction_);
    }

    function setTreasury(address treasury_) external onlyOwner {
        if (treasury_ == address(0)) revert ZeroAddress();
        treasury = treasury_;
        emit TreasuryChanged(treasury_);
    }

    function _setFractions(uint16 slash_, uint16 reporter_) private {
        if (slash_ > BASIS_POINTS) revert InvalidFraction(slash_);
        if (reporter_ > BASIS_POINTS) revert InvalidFraction(reporter_);
        slashFraction = slash_;
        reporterRewardFraction = reporter_;
        emit FractionsChanged(slash_, reporter_);
    }

    // -- proofs --

    /// @inheritdoc ISlasher
    function proofKey(address signer, bytes32 previousCommittedBatchHash, bytes32 blockHash)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encodePacked(signer, previousCommittedBatchHash, blockHash));
    }

    /// @inheritdoc ISlasher
    function reportEquivocation(
        bytes32 blockHash,
        uint64 blockNumber,
        bytes32 previousCommittedBatchHash,
        SignedBatchHeader calldata first,
        SignedBatchHeader calldata second
    ) external nonReentrant returns (uint256 slashed) {
        address signer = _equivocator(blockHash, blockNumber, previousCommittedBatchHash, first, second);

        bytes32 key = proofKey(signer, previousCommittedBatchHash, blockHash);
        if (proofUsed[key]) revert ProofAlreadyUsed(key);

        uint256 era = IRouter(router).eraOfBlock(blockNumber);
        if (era == 0) revert BlockBeforeFirstEra(blockNumber);
        uint256 current = IRouter(router).eraIndex();
        if (era + IStaking(staking).unbondingEras() <= current) revert ProofTooOld(era, current);

        address operator = _operatorOf(era, signer);
        proofUsed[key] = true;
        slashed = _punish(operator);
        emit EquivocationSlashed(operator, signer, slashed, msg.sender);
    }

    /// @inheritdoc ISlasher
    function sequencerProofKey(address signer, bytes32 anchor, uint64 height) public pure returns (bytes32) {
        // 61-byte preimage: never equal to a batch key's 84-byte one (`proofKey`).
        return keccak256(abi.encodePacked(SEQUENCER_KEY_TAG, signer, anchor, height));
    }

    /// @inheritdoc ISlasher
    function sequencerBlockHash(SequencerBlockHeader calldata h) external view returns (bytes32 digest) {
        return MessageHashUtils.toTypedDataHash(IRouter(router).domainSeparator(), _sequencerStructHash(h));
    }

    /// @inheritdoc ISlasher
    function reportSequencerEquivocation(
        SequencerBlockHeader calldata first,
        bytes calldata firstSignature,
        SequencerBlockHeader calldata second,
        bytes calldata secondSignature
    ) external nonReentrant returns (uint256 slashed) {
        address signer = _sequencerEquivocator(first, firstSignature, second, secondSignature);
        address operator;
        {
            bytes32 key = sequencerProofKey(signer, first.anchor, first.height);
            if (proofUsed[key]) revert ProofAlreadyUsed(key);
            // The era of the anchor the sequencer signed: nothing on chain ties `anchorNumber`
            // to `anchor`, but both are under the offender's own signature.
            operator = _operatorOf(_slashableEra(first.anchorNumber), signer);
            proofUsed[key] = true;
        }
        slashed = _punish(operator);
        emit SequencerEquivocationSlashed(operator, signer, slashed, msg.sender, first.anchor, first.height);
    }

    /// @dev The era of block `blockNumber`, if its validators can still be slashed (the same
    ///      rules as `reportEquivocation`).
    function _slashableEra(uint64 blockNumber) private view returns (uint256 era) {
        era = IRouter(router).eraOfBlock(blockNumber);
        if (era == 0) revert BlockBeforeFirstEra(blockNumber);
        uint256 current = IRouter(router).eraIndex();
        if (era + IStaking(staking).unbondingEras() <= current) revert ProofTooOld(era, current);
    }

    /// @dev The one signer of two different sequencer block headers for one slot; reverts
    ///      unless there is one.
    function _sequencerEquivocator(
        SequencerBlockHeader calldata first,
        bytes calldata firstSignature,
        SequencerBlockHeader calldata second,
        bytes calldata secondSignature
    ) private view returns (address signer) {
        if (first.anchor != second.anchor || first.anchorNumber != second.anchorNumber || first.height != second.height)
        {
            revert NotSameSlot(
                first.anchor, first.anchorNumber, first.height, second.anchor, second.anchorNumber, second.height
            );
        }
        bytes32 domain = IRouter(router).domainSeparator();
        bytes32 digestA = MessageHashUtils.toTypedDataHash(domain, _sequencerStructHash(first));
        bytes32 digestB = MessageHashUtils.toTypedDataHash(domain, _sequencerStructHash(second));
        if (digestA == digestB) revert SameSequencerBlock(digestA);
        signer = ECDSA.recoverCalldata(digestA, firstSignature);
        address other = ECDSA.recoverCalldata(digestB, secondSignature);
        if (signer != other) revert DifferentSigners(signer, other);
    }

    /// @dev EIP-712 struct hash of a sequencer block header (`injected.SequencerBlockHeader`).
    function _sequencerStructHash(SequencerBlockHeader calldata h) private pure returns (bytes32) {
        return keccak256(
            abi.encode(SEQUENCER_BLOCK_TYPEHASH, h.anchor, h.anchorNumber, h.height, h.parent, h.transactionsHash)
        );
    }

    /// @dev The one signer of two different batch headers; reverts unless there is one.
    function _equivocator(
        bytes32 blockHash,
        uint64 blockNumber,
        bytes32 previous,
        SignedBatchHeader calldata first,
        SignedBatchHeader calldata second
    ) private view returns (address signer) {
        bytes32 hashA = _hash(blockHash, blockNumber, previous, first);
        bytes32 hashB = _hash(blockHash, blockNumber, previous, second);
        if (hashA == hashB) revert SameBatch(hashA);
        bytes32 domain = IRouter(router).domainSeparator();
        signer = ECDSA.recoverCalldata(_digest(domain, hashA), first.signature);
        address other = ECDSA.recoverCalldata(_digest(domain, hashB), second.signature);
        if (signer != other) revert DifferentSigners(signer, other);
    }

    /// @dev Slash `operator` by `slashFraction` of its stake (active + unbonding), exclude it
    ///      from elections, pay the reporter its part and the treasury the rest.
    function _punish(address operator) private returns (uint256 slashed) {
        (, uint96 stake, uint96 unbonding,,) = IStaking(staking).operator(operator);
        uint256 amount = (uint256(stake) + unbonding) * slashFraction / BASIS_POINTS;
        if (amount > type(uint96).max) amount = type(uint96).max;
        slashed = IStaking(staking).slash(operator, uint96(amount), address(this));
        IStaking(staking).exclude(operator);
        uint256 reward = slashed * reporterRewardFraction / BASIS_POINTS;
        if (reward != 0) _wvara.safeTransfer(msg.sender, reward);
        if (slashed > reward) _wvara.safeTransfer(treasury, slashed - reward);
    }

    function _hash(bytes32 blockHash, uint64 blockNumber, bytes32 previous, SignedBatchHeader calldata h)
        private
        pure
        returns (bytes32)
    {
        return Gear.batchHashFromParts(
            blockHash, blockNumber, previous, h.chainCommitmentsHash, h.codeCommitmentsHash, h.burned
        );
    }

    function _digest(bytes32 domain, bytes32 batchHash) private pure returns (bytes32) {
        // The Router's BATCH_TYPEHASH: keccak256("BatchCommitment(bytes32 batchHash)").
        bytes32 structHash = keccak256(abi.encode(keccak256("BatchCommitment(bytes32 batchHash)"), batchHash));
        return MessageHashUtils.toTypedDataHash(domain, structHash);
    }

    /// @dev The operator `signer` stood for in era `era`: same index in the era's two blobs.
    function _operatorOf(uint256 era, address signer) private view returns (address) {
        (address[] memory signers,) = IRouter(router).eraValidators(era);
        for (uint256 i = 0; i < signers.length; ++i) {
            if (signers[i] == signer) {
                (address[] memory ops,) = IStaking(staking).eraOperators(era);
                return ops[i];
            }
        }
        revert NotAValidatorOfEra(era, signer);
    }
}

// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Gear} from "./Gear.sol";

/// @title IRouter
/// @notice Code registry, program factory, era bookkeeping and batch settlement of gexe.
interface IRouter {
    enum CodeState {
        Unknown,
        ValidationRequested,
        Validated
    }

    /// @notice The record of one era (indices from 1).
    struct Era {
        /// @dev SSTORE2 blob of `signer << 96 | stake` words, in validator-set order.
        address validatorsPointer;
        uint96 totalStake;
        /// @dev Block number and timestamp of the `startNextEra` transaction.
        uint64 startBlock;
        uint64 startTimestamp;
        /// @dev Executable balance burned in batches of this era's blocks (WVARA base units).
        uint128 rewardPool;
    }

    // -- events --

    /// @notice Validators must fetch `code` from this transaction's calldata
    ///         (`requestCodeValidation(bytes32,bytes)`), check blake2b-256(code) == codeId,
    ///         validate it and commit a verdict.
    event CodeValidationRequested(bytes32 codeId);

    event CodeGotValidated(bytes32 codeId, bool indexed valid);

    event ProgramCreated(address actorId, bytes32 indexed codeId);

    /// @notice A batch was accepted; `hash` is `Gear.batchHash` and the new chain head.
    event BatchCommitted(bytes32 hash);

    /// @notice The batch's chain commitment reached the gexe block `head`.
    event HeadCommitted(bytes32 head);

    event EraStarted(uint256 indexed eraIndex, address validatorsPointer, uint256 totalStake, uint256 validatorsCount);

    event MirrorSet(address mirrorImpl);

    /// @notice A batch for a block of era `eraIndex` reported `amount` burned executable balance.
    event RewardsCredited(uint256 indexed eraIndex, uint256 amount);

    event RewardsClaimed(address indexed operator, uint256 indexed eraIndex, uint256 amount);

    // -- errors --

    error ZeroAddress();
    error MirrorAlreadySet();
    error MirrorNotSet();
    error MirrorRouterMismatch(address mirrorImpl);
    error EmptyCode();
    error ZeroCodeId();
    error CodeAlreadyRequestedOrValidated(bytes32 codeId, CodeState state);
    error CodeNotValidated(bytes32 codeId);
    error CodeNotRequested(bytes32 codeId);
    error UnknownProgram(address actorId);
    error WVaraTransferFailed();
    error EraNotFinished(uint256 endsAt);
    error NoValidators();
    error NoValidatorSet();
    error BatchDoesNotExtendHead(bytes32 latestCommittedBatchHash, bytes32 previousCommittedBatchHash);
    error BlockNotRecentAncestor(uint64 blockNumber, bytes32 blockHash);
    error TooManyChainCommitments();
    /// @notice Signature `index` recovers to `signer`, which is not a validator of the era
    ///         after the previous signer in validator-set order (unknown, duplicate or unordered).
    error UnexpectedSigner(uint256 index, address signer);
    error NotEnoughStake(uint256 signedStake, uint256 totalStake);
    error InsufficientValue(uint256 balance, uint256 needed);
    /// @notice The batch's block belongs to era `eraIndex`, which may no longer sign: it is older
    ///         than the previous era, or the previous era's grace window is over.
    error EraExpired(uint256 eraIndex);
    /// @notice The batch's block precedes the first era's start block.
    error BlockBeforeFirstEra(uint64 blockNumber);
    /// @notice Crediting `burned` would make the rewards owed exceed this contract's WVARA
    ///         (`available` = balance minus what is already owed).
    error BurnedExceedsBalance(uint256 burned, uint256 available);
    /// @notice Batches may still be credited to era `eraIndex` (current, or previous in grace).
    error EraNotClosed(uint256 eraIndex);
    error RewardsAlreadyClaimed(uint256 eraIndex, address operator);
    error NotAValidatorOfEra(uint256 eraIndex, address operator);

    // -- views --

    function wrappedVara() external view returns (address);
    function staking() external view returns (address);
    function mirrorImpl() external view returns (address);
    function eraLength() external view returns (uint256);
    function eraGraceBlocks() external view returns (uint256);
    function latestCommittedBatchHash() external view returns (bytes32);
    function codeState(bytes32 codeId) external view returns (CodeState);
    function programCodeId(address actorId) external view returns (bytes32);
    function programsCount() external view returns (uint256);
    function validatedCodesCount() external view returns (uint256);
    /// @notice The current era (0 before the first one).
    function eraIndex() external view returns (uint256);
    /// @notice The current era's start timestamp.
    function eraStartedAt() external view returns (uint256);
    /// @notice The current era's validator-set blob.
    function validatorsPointer() external view returns (address);
    /// @notice The current era's total stake.
    function totalStake() external view returns (uint256);
    /// @notice The record of era `index` (zeroes for an era not started yet).
    function eraInfo(uint256 index) external view returns (Era memory);
    /// @notice The era a batch for block `blockNumber` belongs to: the newest era whose start
    ///         block is at most `blockNumber` (0 if none).
    function eraOfBlock(uint64 blockNumber) external view returns (uint256);
    /// @notice True once no batch can be credited to era `index` any more (claims are open).
    function eraClosed(uint256 index) external view returns (bool);
    /// @notice The current era's validator signers and stakes, in validator-set order.
    function validators() external view returns (address[] memory signers, uint256[] memory stakes);
    /// @notice Era `index`'s validator signers and stakes, in validator-set order.
    function eraValidators(uint256 index) external view returns (address[] memory signers, uint256[] memory stakes);
    /// @notice WVARA credited to reward pools and not claimed yet.
    function rewardsOutstanding() external view returns (uint256);
    function rewardsClaimed(address operator, uint256 index) external view returns (bool);
    /// @notice `operator`'s share of era `index`'s pool so far: pool × its snapshotted stake ÷ the
    ///         era's total stake (0 once claimed). Final when `eraClosed(index)`.
    function pendingRewards(address operator, uint256 index) external view returns (uint256);
    function domainSeparator() external view returns (bytes32);
    /// @notice The EIP-712 digest validators sign for a batch with hash `batchHash`.
    function batchDigest(bytes32 batchHash) external view returns (bytes32);

    // -- calls --

    function setMirror(address mirrorImpl) external;

    /// @notice Upload `code` as calldata and ask validators to validate it under `codeId`
    ///         (its blake2b-256 hash).
    function requestCodeValidation(bytes32 codeId, bytes calldata code) external;

    function createProgram(bytes32 codeId, bytes32 salt, address overrideInitializer) external returns (address);

    function createProgramWithInit(
        bytes32 codeId,
        bytes32 salt,
        bytes calldata initPayload,
        bool callReply,
        uint128 initialExecutableBalance
    ) external payable returns (address actorId, bytes32 initMessageId);

    function startNextEra() external;

    /// @notice Accept a batch signed by the validators of its block's era and apply it.
    /// @param signatures 65-byte ECDSA signatures (r ‖ s ‖ v, low s) over
    ///        `batchDigest(Gear.batchHash(batch))`, ordered by the signers' index in
    ///        `eraValidators(eraOfBlock(batch.blockNumber))`; together they must hold strictly
    ///        more than 2/3 of that era's total stake. The era must be the current one, or the
    ///        previous one while `block.number <= current start block + eraGraceBlocks`.
    function commitBatch(Gear.BatchCommitment calldata batch, bytes[] calldata signatures) external;

    /// @notice Pay msg.sender its share of each closed era's reward pool in `eras` (WVARA), each
    ///         (operator, era) once: pool × stake in the era's snapshot ÷ the era's total stake.
    function claimRewards(uint256[] calldata eras) external returns (uint256 paid);
}

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

    // -- views --

    function wrappedVara() external view returns (address);
    function staking() external view returns (address);
    function mirrorImpl() external view returns (address);
    function eraLength() external view returns (uint256);
    function latestCommittedBatchHash() external view returns (bytes32);
    function codeState(bytes32 codeId) external view returns (CodeState);
    function programCodeId(address actorId) external view returns (bytes32);
    function programsCount() external view returns (uint256);
    function validatedCodesCount() external view returns (uint256);
    function eraIndex() external view returns (uint256);
    function eraStartedAt() external view returns (uint256);
    function validatorsPointer() external view returns (address);
    function totalStake() external view returns (uint256);
    /// @notice The current era's validator signers and stakes, in validator-set order.
    function validators() external view returns (address[] memory signers, uint256[] memory stakes);
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

    /// @notice Accept a batch signed by the current era's validators and apply it.
    /// @param signatures 65-byte ECDSA signatures (r ‖ s ‖ v, low s) over
    ///        `batchDigest(Gear.batchHash(batch))`, ordered by the signers' index in
    ///        `validators()`; together they must hold strictly more than 2/3 of `totalStake()`.
    function commitBatch(Gear.BatchCommitment calldata batch, bytes[] calldata signatures) external;
}

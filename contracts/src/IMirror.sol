// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Gear} from "./Gear.sol";

/// @title IMirror
/// @notice The Ethereum face of one gexe program. The dApp-facing functions and all events keep
///         Vara.eth's IMirror signatures, so contracts and tools written for Vara.eth work
///         unchanged. "...Requested" events ask the validators to do something; the others
///         report what a committed state transition did.
interface IMirror {
    // -- events for validators (requests) --

    /// @notice A message for the program's queue. `id` = keccak256(mirror ‖ uint256(nonce)).
    event MessageQueueingRequested(bytes32 id, address indexed source, bytes payload, uint128 value, bool callReply);

    /// @notice A reply to a message the program sent to `source` (mailbox).
    event ReplyQueueingRequested(bytes32 repliedTo, address indexed source, bytes payload, uint128 value);

    /// @notice `source` asks to claim the value of mailbox message `claimedId`.
    event ValueClaimingRequested(bytes32 claimedId, address indexed source);

    /// @notice Wei sent to the program's owned balance (plain transfer to the Mirror).
    event OwnedBalanceTopUpRequested(uint128 value);

    /// @notice WVARA added to the program's executable balance.
    event ExecutableBalanceTopUpRequested(uint128 value);

    // -- events for users (results of committed transitions) --

    event StateChanged(bytes32 stateHash);

    event Message(bytes32 id, address indexed destination, bytes payload, uint128 value);

    event MessageCallFailed(bytes32 id, address indexed destination, uint128 value);

    event Reply(bytes payload, uint128 value, bytes32 replyTo, bytes4 indexed replyCode);

    event ReplyCallFailed(uint128 value, bytes32 replyTo, bytes4 indexed replyCode);

    event ValueClaimed(bytes32 claimedId, uint128 value);

    /// @notice Declared for ABI compatibility with Vara.eth; gexe transitions carry no events yet.
    event GearEvent(bytes payload);

    event TransferLockedValueToInheritorFailed(address inheritor, uint128 value);

    event ReplyTransferFailed(address destination, uint128 value);

    event ValueClaimFailed(bytes32 claimedId, uint128 value);

    // -- errors --

    error InitMessageNotCreated();
    error InitMessageNotCreatedAndCallerNotInitializer();
    error InitMessageAlreadyCreated();
    error ProgramExited();
    error ProgramNotExited();
    error CallerNotRouter();
    error WVaraTransferFailed();
    error EtherTransferToRouterFailed();
    error TransferLockedValueToInheritorExternalFailed();
    error InitializerAlreadySet();
    error InvalidActorId();
    error ValueMismatch(uint256 sent, uint256 valueToReceive);
    error InheritorMustBeZero();
    error InvalidFallbackCall();
    /// @notice Not enough gas left to give a reply callback its full stipend; the submitter
    ///         must send the batch with more gas (a callback never fails for lack of batch gas).
    error InsufficientGasForCallback();

    // -- views --

    function router() external view returns (address);
    function stateHash() external view returns (bytes32);
    /// @notice Messages sent to the program from Ethereum so far (0 before the init message).
    function nonce() external view returns (uint256);
    function exited() external view returns (bool);
    function inheritor() external view returns (address);
    function initializer() external view returns (address);

    // -- dApp-facing calls (Vara.eth signatures) --

    /// @notice Queue `payload` for the program with msg.value (wei). With `callReply`, the reply
    ///         is delivered by calling msg.sender (see contracts/README.md, "Callbacks").
    function sendMessage(bytes calldata payload, bool callReply) external payable returns (bytes32 messageId);

    function sendReply(bytes32 repliedTo, bytes calldata payload) external payable;

    function claimValue(bytes32 claimedId) external;

    /// @notice Move `value` WVARA from msg.sender (approved to this Mirror) to the Router as
    ///         the program's executable balance.
    function executableBalanceTopUp(uint128 value) external;

    function executableBalanceTopUpWithPermit(uint128 value, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external;

    function transferLockedValueToInheritor() external;

    // -- Router-only --

    function initialize(address initializer, uint128 initialExecutableBalance) external;

    /// @notice Queue the init message (nonce 0) on behalf of the initializer `source`.
    function sendInitMessage(address source, bytes calldata payload, bool callReply, uint128 value)
        external
        returns (bytes32 messageId);

    /// @notice Apply a committed transition (Router only; msg.value must equal
    ///         `valueToReceive`). Returns the transition's hash (Gear.stateTransitionHash).
    function performStateTransition(Gear.StateTransition calldata transition)
        external
        payable
        returns (bytes32 transitionHash);
}

// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title ICallbacks
/// @notice What a Mirror calls on a contract that sent a message with `callReply = true`.
///         A success reply (reply code's first byte 0) is delivered by calling the sender with
///         the reply payload itself as calldata: the program encodes the call it wants, e.g.
///         `abi.encodeWithSignature("replyOn_ping(bytes32,bytes)", requestId, pong)` (Vara.eth
///         and Sails name these `replyOn_<method>`). An error reply calls `onErrorReply`.
///         Either call carries the reply's value and at most `Mirror.CALLBACK_GAS` gas; if it
///         fails, the Mirror emits `ReplyCallFailed` and the batch goes on.
interface ICallbacks {
    /// @param messageId The id of the message this error replies to (the id `sendMessage` returned).
    /// @param payload The error reply's payload.
    /// @param replyCode Gear's 4-byte reply code (first byte non-zero).
    function onErrorReply(bytes32 messageId, bytes calldata payload, bytes4 replyCode) external payable;
}

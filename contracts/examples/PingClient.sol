// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ICallbacks} from "../src/ICallbacks.sol";
import {IMirror} from "../src/IMirror.sol";

/// @title PingClient
/// @notice Template dApp: asks a gexe program for an answer and receives it in a callback.
///
///         1. `ping(payload)` sends `payload` to the program's Mirror with `callReply = true`
///            and remembers the returned message id.
///         2. The program answers with a reply whose payload is the calldata of the callback
///            it wants called here:
///              abi.encodeWithSignature("replyOn_ping(bytes32,bytes)", messageId, answer)
///            (`messageId` is the id of the message being answered, `gr_message_id` in the
///            program). Once validators commit the reply, the Mirror calls this contract with
///            that calldata, the reply's value and at most 500,000 gas.
///         3. An error reply (the program panicked, ran out of gas, ...) arrives as
///            `onErrorReply(messageId, payload, replyCode)` instead.
///
///         Callbacks must be cheap, must check `msg.sender == mirror`, and should not revert
///         on expected input: a reverting callback is reported by the Mirror as
///         `ReplyCallFailed` and its reply is lost to this contract (its value is sent with a
///         plain transfer instead).
contract PingClient is ICallbacks {
    IMirror public immutable mirror;

    mapping(bytes32 messageId => bool) public pending;
    mapping(bytes32 messageId => bytes) public answers;
    mapping(bytes32 messageId => bytes4) public errorCodes;

    event PingSent(bytes32 indexed messageId, bytes payload);
    event PongReceived(bytes32 indexed messageId, bytes answer, uint256 value);
    event PingFailed(bytes32 indexed messageId, bytes4 replyCode, bytes payload);

    error OnlyMirror();
    error UnknownRequest(bytes32 messageId);

    constructor(IMirror mirror_) {
        mirror = mirror_;
    }

    modifier onlyMirror() {
        if (msg.sender != address(mirror)) revert OnlyMirror();
        _;
    }

    /// @notice Send `payload` to the program (with msg.value as the message's value).
    function ping(bytes calldata payload) external payable returns (bytes32 messageId) {
        messageId = mirror.sendMessage{value: msg.value}(payload, true);
        pending[messageId] = true;
        emit PingSent(messageId, payload);
    }

    /// @notice Success callback, called by the Mirror with the program's reply as calldata.
    function replyOn_ping(bytes32 messageId, bytes calldata answer) external payable onlyMirror {
        if (!pending[messageId]) revert UnknownRequest(messageId);
        delete pending[messageId];
        answers[messageId] = answer;
        emit PongReceived(messageId, answer, msg.value);
    }

    /// @inheritdoc ICallbacks
    function onErrorReply(bytes32 messageId, bytes calldata payload, bytes4 replyCode)
        external
        payable
        onlyMirror
    {
        if (!pending[messageId]) revert UnknownRequest(messageId);
        delete pending[messageId];
        errorCodes[messageId] = replyCode;
        emit PingFailed(messageId, replyCode, payload);
    }

    /// @notice Value of replies whose callback failed arrives as a plain transfer.
    receive() external payable {}
}

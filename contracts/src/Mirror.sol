// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {Gear} from "./Gear.sol";
import {ICallbacks} from "./ICallbacks.sol";
import {IMirror} from "./IMirror.sol";
import {IRouter} from "./IRouter.sol";

/// @title Mirror
/// @notice One per program (an ERC-1167 clone of this implementation, created by the Router;
///         its address is the program's actor id). Users send messages, replies, claims and
///         top-ups here; the Router applies the program's committed state transitions here.
/// @dev Wei sent to a program is forwarded to the Router at once (one pool for all programs,
///      since value moves between programs off-chain); a transition brings back what it pays
///      out (`valueToReceive`). The Mirror emits what happened and never reverts a batch
///      because of a user contract: callbacks get a fixed gas stipend and their failures
///      become events.
contract Mirror is IMirror, ReentrancyGuardTransient {
    /// @notice Gas given to a reply / message callback into a user contract.
    uint256 public constant CALLBACK_GAS = 500_000;
    /// @notice Gas given to a plain value transfer (claims, refunds, inheritance).
    uint256 public constant TRANSFER_GAS = 5_000;
    /// @dev Gas that must be left before a callback so that it surely gets CALLBACK_GAS
    ///      (EIP-150 keeps 1/64 back; the CALL itself may cost up to 2,600 + 9,000 + 25,000).
    uint256 internal constant CALLBACK_GAS_RESERVE = (CALLBACK_GAS * 64) / 63 + 40_000;

    /// @inheritdoc IMirror
    address public immutable router;

    /// @inheritdoc IMirror
    bytes32 public stateHash;
    /// @inheritdoc IMirror
    address public initializer;
    /// @inheritdoc IMirror
    bool public exited;
    uint64 internal _nonce;
    /// @inheritdoc IMirror
    address public inheritor;

    constructor(address router_) {
        router = router_;
    }

    modifier onlyRouter() {
        if (msg.sender != router) revert CallerNotRouter();
        _;
    }

    /// @inheritdoc IMirror
    function nonce() external view returns (uint256) {
        return _nonce;
    }

    // -- dApp-facing calls --

    /// @inheritdoc IMirror
    function sendMessage(bytes calldata payload, bool callReply) external payable returns (bytes32 messageId) {
        if (exited) revert ProgramExited();
        if (_nonce == 0 && msg.sender != initializer) revert InitMessageNotCreatedAndCallerNotInitializer();
        uint128 value = uint128(msg.value);
        messageId = _queue(msg.sender, payload, callReply, value);
        _forwardToRouter(value);
    }

    /// @inheritdoc IMirror
    function sendReply(bytes32 repliedTo, bytes calldata payload) external payable {
        _onlyActiveAndInitialized();
        uint128 value = uint128(msg.value);
        _forwardToRouter(value);
        emit ReplyQueueingRequested(repliedTo, msg.sender, payload, value);
    }

    /// @inheritdoc IMirror
    function claimValue(bytes32 claimedId) external {
        _onlyActiveAndInitialized();
        emit ValueClaimingRequested(claimedId, msg.sender);
    }

    /// @inheritdoc IMirror
    function executableBalanceTopUp(uint128 value) external {
        if (exited) revert ProgramExited();
        _pullWVara(value);
        emit ExecutableBalanceTopUpRequested(value);
    }

    /// @inheritdoc IMirror
    function executableBalanceTopUpWithPermit(uint128 value, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external
    {
        if (exited) revert ProgramExited();
        // A front-run permit makes this call fail, not the top-up: the allowance is already there.
        try IERC20Permit(_wvara()).permit(msg.sender, address(this), value, deadline, v, r, s) {} catch {}
        _pullWVara(value);
        emit ExecutableBalanceTopUpRequested(value);
    }

    /// @inheritdoc IMirror
    function transferLockedValueToInheritor() external nonReentrant {
        if (!exited) revert ProgramNotExited();
        address heir = inheritor;
        (bool ok,) = heir == address(0) ? (false, bytes("")) : heir.call{value: address(this).balance}("");
        if (!ok) revert TransferLockedValueToInheritorExternalFailed();
    }

    /// @notice Plain wei to the Mirror tops up the program's owned balance.
    receive() external payable {
        if (msg.value == 0) revert InvalidFallbackCall();
        if (exited) revert ProgramExited();
        uint128 value = uint128(msg.value);
        _forwardToRouter(value);
        emit OwnedBalanceTopUpRequested(value);
    }

    /// @notice Unknown calls are rejected (gexe has no Sails ABI-interface proxying yet).
    fallback() external {
        revert InvalidFallbackCall();
    }

    // -- Router-only --

    /// @inheritdoc IMirror
    function initialize(address initializer_, uint128 initialExecutableBalance) external onlyRouter {
        if (initializer != address(0)) revert InitializerAlreadySet();
        initializer = initializer_;
        if (initialExecutableBalance != 0) emit ExecutableBalanceTopUpRequested(initialExecutableBalance);
    }

    /// @inheritdoc IMirror
    function sendInitMessage(address source, bytes calldata payload, bool callReply, uint128 value)
        external
        onlyRouter
        returns (bytes32 messageId)
    {
        if (_nonce != 0) revert InitMessageAlreadyCreated();
        if (source != initializer) revert InitMessageNotCreatedAndCallerNotInitializer();
        messageId = _queue(source, payload, callReply, value);
    }

    /// @inheritdoc IMirror
    /// @dev Runs once per program per batch, so it reads calldata directly (Gear.*At) and
    ///      hashes exactly the words it acts on; the Router checks the returned hashes against
    ///      the validators' signatures, and the whole batch reverts on any mismatch.
    function performStateTransition(Gear.StateTransition calldata transition)
        external
        payable
        onlyRouter
        returns (bytes32 transitionHash)
    {
        address actorId;
        bytes32 newStateHash;
        bool exiting;
        address heir;
        uint128 valueToReceive;
        uint256 claims;
        uint256 msgs;
        assembly ("memory-safe") {
            actorId := calldataload(transition)
            newStateHash := calldataload(add(transition, 0x20))
            exiting := calldataload(add(transition, 0x40))
            heir := calldataload(add(transition, 0x60))
            valueToReceive := calldataload(add(transition, 0x80))
            claims := add(transition, calldataload(add(transition, 0xa0)))
            msgs := add(transition, calldataload(add(transition, 0xc0)))
            if or(or(shr(160, or(actorId, heir)), shr(1, exiting)), shr(128, valueToReceive)) {
                mstore(0x00, 0xad4d102a) // Gear.InvalidEncoding()
                revert(0x1c, 0x04)
            }
        }
        if (actorId != address(this)) revert InvalidActorId();
        if (msg.value != valueToReceive) revert ValueMismatch(msg.value, valueToReceive);
        // Effects first, then interactions (callbacks, transfers).
        if (exiting) {
            if (exited) revert ProgramExited();
            exited = true;
            inheritor = heir;
        } else if (heir != address(0)) {
            revert InheritorMustBeZero();
        }
        if (stateHash != newStateHash) {
            stateHash = newStateHash;
            emit StateChanged(newStateHash);
        }

        bytes32 messagesHash = _sendMessages(msgs);
        bytes32 claimsHash = _claimValues(claims);

        if (exiting && heir != address(0)) {
            uint128 rest = uint128(address(this).balance);
            if (!_transferEther(heir, rest)) emit TransferLockedValueToInheritorFailed(heir, rest);
        }

        transitionHash =
            Gear.stateTransitionHashOf(actorId, newStateHash, exiting, heir, valueToReceive, claimsHash, messagesHash);
    }

    /// @dev Deliver the messages whose ABI array (length word) is at calldata offset `msgs`;
    ///      returns the hash of the array (keccak256 of the messages' hashes).
    function _sendMessages(uint256 msgs) private returns (bytes32 messagesHash) {
        uint256 n;
        uint256 hashes;
        assembly ("memory-safe") {
            n := calldataload(msgs)
            msgs := add(msgs, 0x20)
            hashes := mload(0x40)
            mstore(0x40, add(hashes, shl(5, n)))
        }
        for (uint256 i = 0; i < n; ++i) {
            uint256 e;
            assembly ("memory-safe") {
                e := add(msgs, calldataload(add(msgs, shl(5, i))))
            }
            bytes32 h = Gear.messageHashAt(e);
            bytes32 replyTo;
            bool isCall;
            assembly ("memory-safe") {
                mstore(add(hashes, shl(5, i)), h)
                replyTo := calldataload(add(e, 0x80))
                isCall := calldataload(add(e, 0xc0))
            }
            if (isCall) {
                Gear.Message calldata message;
                assembly ("memory-safe") {
                    message := e
                }
                if (replyTo == bytes32(0)) _deliverMessage(message);
                else _deliverReply(message);
            } else if (replyTo == bytes32(0)) {
                _emitMessageAt(e);
            } else {
                _emitReplyAt(e);
            }
        }
        assembly ("memory-safe") {
            messagesHash := keccak256(hashes, shl(5, n))
        }
    }

    /// @dev Pay the value claims whose ABI array is at calldata offset `claims`; returns the
    ///      hash of the array.
    function _claimValues(uint256 claims) private returns (bytes32 claimsHash) {
        uint256 n;
        assembly ("memory-safe") {
            n := calldataload(claims)
            claims := add(claims, 0x20)
        }
        if (n == 0) return Gear.EMPTY_ARRAY_HASH;
        uint256 hashes;
        assembly ("memory-safe") {
            hashes := mload(0x40)
            mstore(0x40, add(hashes, shl(5, n)))
        }
        for (uint256 i = 0; i < n; ++i) {
            uint256 c = claims + i * 0x60;
            bytes32 h = Gear.valueClaimHashAt(c);
            bytes32 messageId;
            address destination;
            uint128 value;
            assembly ("memory-safe") {
                mstore(add(hashes, shl(5, i)), h)
                messageId := calldataload(c)
                destination := calldataload(add(c, 0x20))
                value := calldataload(add(c, 0x40))
            }
            if (_transferEther(destination, value)) emit ValueClaimed(messageId, value);
            else emit ValueClaimFailed(messageId, value);
        }
        assembly ("memory-safe") {
            claimsHash := keccak256(hashes, shl(5, n))
        }
    }

    // -- internals --

    function _onlyActiveAndInitialized() private view {
        if (exited) revert ProgramExited();
        if (_nonce == 0) revert InitMessageNotCreated();
    }

    function _queue(address source, bytes calldata payload, bool callReply, uint128 value)
        private
        returns (bytes32 messageId)
    {
        uint64 n = _nonce;
        messageId = Gear.ethMessageId(address(this), n);
        _nonce = n + 1;
        emit MessageQueueingRequested(messageId, source, payload, value, callReply);
    }

    function _forwardToRouter(uint128 value) private {
        if (value != 0) {
            (bool ok,) = router.call{value: value}("");
            if (!ok) revert EtherTransferToRouterFailed();
        }
    }

    function _wvara() private view returns (address) {
        return IRouter(router).wrappedVara();
    }

    function _pullWVara(uint128 value) private {
        if (value != 0) {
            if (!IERC20(_wvara()).transferFrom(msg.sender, router, value)) revert WVaraTransferFailed();
        }
    }

    /// @dev A program's message to an address (goes to the mailbox off-chain; never carries
    ///      value here, value is claimed later). With `call`, the payload is the calldata.
    function _deliverMessage(Gear.Message calldata message) private {
        if (message.call) {
            if (!_callBounded(message.destination, 0, message.payload)) {
                emit MessageCallFailed(message.id, message.destination, message.value);
                return;
            }
        }
        emit Message(message.id, message.destination, message.payload, message.value);
    }

    /// @dev A program's reply to a message from Ethereum: pays its value; with `call`, calls
    ///      the original sender (payload as calldata on success, `onErrorReply` on error).
    function _deliverReply(Gear.Message calldata message) private {
        address destination = message.destination;
        uint128 value = message.value;
        bytes32 replyTo = message.replyDetails.to;
        bytes4 code = message.replyDetails.code;
        if (message.call) {
            bytes memory data = code[0] == 0
                ? message.payload
                : abi.encodeCall(ICallbacks.onErrorReply, (replyTo, message.payload, code));
            if (!_callBounded(destination, value, data)) {
                if (!_transferEther(destination, value)) emit ReplyTransferFailed(destination, value);
                emit ReplyCallFailed(value, replyTo, code);
            }
        } else {
            if (!_transferEther(destination, value)) emit ReplyTransferFailed(destination, value);
            emit Reply(message.payload, value, replyTo, code);
        }
    }

    /// @dev `emit Message(id, destination, payload, value)` for the message encoded at `e`.
    function _emitMessageAt(uint256 e) private {
        bytes32 topic = Message.selector;
        assembly ("memory-safe") {
            let payload := add(e, calldataload(add(e, 0x40)))
            let len := calldataload(payload)
            let p := mload(0x40)
            mstore(p, calldataload(e)) // id
            mstore(add(p, 0x20), 0x60) // payload offset
            mstore(add(p, 0x40), calldataload(add(e, 0x60))) // value
            mstore(add(p, 0x60), len)
            calldatacopy(add(p, 0x80), add(payload, 0x20), len)
            mstore(add(add(p, 0x80), len), 0)
            log2(p, add(0x80, and(add(len, 31), not(31))), topic, calldataload(add(e, 0x20)))
        }
    }

    /// @dev Pay the reply's value and `emit Reply(payload, value, replyTo, code)` for the
    ///      reply encoded at `e` (no callback).
    function _emitReplyAt(uint256 e) private {
        address destination;
        uint128 value;
        assembly ("memory-safe") {
            destination := calldataload(add(e, 0x20))
            value := calldataload(add(e, 0x60))
        }
        if (!_transferEther(destination, value)) emit ReplyTransferFailed(destination, value);
        bytes32 topic = Reply.selector;
        assembly ("memory-safe") {
            let payload := add(e, calldataload(add(e, 0x40)))
            let len := calldataload(payload)
            let p := mload(0x40)
            mstore(p, 0x60) // payload offset
            mstore(add(p, 0x20), value)
            mstore(add(p, 0x40), calldataload(add(e, 0x80))) // replyTo
            mstore(add(p, 0x60), len)
            calldatacopy(add(p, 0x80), add(payload, 0x20), len)
            mstore(add(add(p, 0x80), len), 0)
            log2(p, add(0x80, and(add(len, 31), not(31))), topic, calldataload(add(e, 0xa0)))
        }
    }

    /// @dev Call with exactly CALLBACK_GAS and no return data copied (no return bomb).
    function _callBounded(address to, uint256 value, bytes memory data) private returns (bool ok) {
        if (gasleft() < CALLBACK_GAS_RESERVE) revert InsufficientGasForCallback();
        assembly ("memory-safe") {
            ok := call(CALLBACK_GAS, to, value, add(data, 0x20), mload(data), 0, 0)
        }
    }

    function _transferEther(address to, uint128 value) private returns (bool ok) {
        if (value == 0) return true;
        assembly ("memory-safe") {
            ok := call(TRANSFER_GAS, to, value, 0, 0, 0, 0)
        }
    }
}

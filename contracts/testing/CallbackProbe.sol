// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IMirror} from "../src/IMirror.sol";

/// @title CallbackProbe
/// @notice Test-only dApp: sends messages to a Mirror and receives its callbacks, behaving as
///         configured (record, revert, burn all gas, return a huge buffer, or call a target).
contract CallbackProbe {
    enum Mode {
        Record,
        Revert,
        BurnGas,
        ReturnBomb,
        Forward
    }

    event Called(address sender, uint256 value, uint256 gasAtEntry, bytes data);

    Mode public mode;
    bool public rejectPlainEther;
    address public forwardTarget;
    bytes public forwardData;

    uint256 public calls;
    bytes public lastData;
    uint256 public lastValue;
    uint256 public lastGas;

    function configure(Mode mode_, bool rejectPlainEther_, address forwardTarget_, bytes calldata forwardData_)
        external
    {
        mode = mode_;
        rejectPlainEther = rejectPlainEther_;
        forwardTarget = forwardTarget_;
        forwardData = forwardData_;
    }

    function send(IMirror mirror, bytes calldata payload, bool callReply) external payable returns (bytes32) {
        return mirror.sendMessage{value: msg.value}(payload, callReply);
    }

    receive() external payable {
        if (rejectPlainEther) revert("no plain ether");
    }

    fallback() external payable {
        uint256 gasAtEntry = gasleft();
        Mode m = mode;
        if (m == Mode.Revert) revert("callback refused");
        if (m == Mode.BurnGas) {
            while (true) {}
        }
        if (m == Mode.ReturnBomb) {
            assembly {
                return(0, 300000)
            }
        }
        if (m == Mode.Forward) {
            (bool ok, bytes memory ret) = forwardTarget.call(forwardData);
            if (!ok) {
                assembly {
                    revert(add(ret, 0x20), mload(ret))
                }
            }
        }
        calls += 1;
        lastData = msg.data;
        lastValue = msg.value;
        lastGas = gasAtEntry;
        emit Called(msg.sender, msg.value, gasAtEntry, msg.data);
    }
}

// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title SSTORE2
/// @notice Immutable data stored as the code of a tiny contract: written once with CREATE,
///         read with one EXTCODECOPY (2,600 gas cold + 3 gas per word) instead of one cold
///         SLOAD (2,100 gas) per word. The code starts with a STOP byte so it cannot be run.
library SSTORE2 {
    error SSTORE2WriteFailed();
    error SSTORE2InvalidPointer();

    /// @dev Deploy `data` and return the address holding it.
    function write(bytes memory data) internal returns (address pointer) {
        if (data.length >= type(uint16).max) revert SSTORE2WriteFailed();
        // init code (12 bytes): PUSH2 len DUP1 PUSH1 0x0c PUSH1 0 CODECOPY PUSH1 0 RETURN,
        // followed by the runtime code 0x00 ‖ data.
        bytes memory initCode = abi.encodePacked(
            hex"61", uint16(data.length + 1), hex"80600c6000396000f3", hex"00", data
        );
        assembly ("memory-safe") {
            pointer := create(0, add(initCode, 0x20), mload(initCode))
        }
        if (pointer == address(0)) revert SSTORE2WriteFailed();
    }

    /// @dev The data stored at `pointer`.
    function read(address pointer) internal view returns (bytes memory data) {
        uint256 size = pointer.code.length;
        if (size == 0) revert SSTORE2InvalidPointer();
        unchecked {
            size -= 1;
        }
        assembly ("memory-safe") {
            data := mload(0x40)
            mstore(data, size)
            extcodecopy(pointer, add(data, 0x20), 1, size)
            mstore(0x40, add(add(data, 0x20), and(add(size, 31), not(31))))
        }
    }
}

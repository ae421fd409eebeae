// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";

/// @title WrappedVara
/// @notice WVARA: the ERC20 (+ EIP-2612 permit) token for programs' executable balance and for
///         validator stake. 12 decimals, like VARA and Vara.eth's WrappedVara. The owner mints
///         (a dev/test faucet in this first version; a bridge later).
contract WrappedVara is ERC20, ERC20Permit, Ownable {
    constructor(address owner_) ERC20("Wrapped Vara", "WVARA") ERC20Permit("Wrapped Vara") Ownable(owner_) {}

    function decimals() public pure override returns (uint8) {
        return 12;
    }

    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }

    /// @notice Burn `amount` of the caller's tokens.
    function burn(uint256 amount) external {
        _burn(msg.sender, amount);
    }
}

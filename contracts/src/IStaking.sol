// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title IStaking
/// @notice Operators stake WVARA and name a validator signing address; `snapshot()` freezes the
///         elected validator set for an era into an SSTORE2 blob the Router reads.
interface IStaking {
    event Deposited(address indexed operator, uint256 amount);
    event ValidatorRegistered(address indexed operator, address indexed signer);
    event Unbonded(address indexed operator, uint256 amount, uint256 releaseAt);
    event Withdrawn(address indexed operator, uint256 amount);
    event Slashed(address indexed operator, uint256 amount, address beneficiary);
    event SlasherChanged(address slasher);
    event ValidatorSetSnapshotted(address pointer, uint256 totalStake, uint256 count);

    error ZeroAmount();
    error ZeroAddress();
    error NotAnOperator(address account);
    error SignerTaken(address signer, address operator);
    error InsufficientStake(uint256 available, uint256 requested);
    error NothingToWithdraw();
    error StillUnbonding(uint256 releaseAt);
    error CallerNotSlasher();
    error StakeOverflow(uint256 total);

    /// @notice One entry of an era's validator set.
    struct Validator {
        address signer;
        uint96 stake;
    }

    function wrappedVara() external view returns (address);

    /// @notice Elect the validator set from current stakes and store it as an SSTORE2 blob:
    ///         one 32-byte word per validator, `signer << 96 | stake`, in election order.
    function snapshot() external returns (address pointer, uint96 totalStake, uint256 count);

    /// @notice The set `snapshot()` would store now.
    function electedValidators() external view returns (Validator[] memory);
}

// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title IStaking
/// @notice Operators stake WVARA and name a validator signing address; at each era start the
///         Router calls `snapshot(era)`, which elects the era's validator set and freezes it
///         into an SSTORE2 blob the Router reads (and a second blob naming the operators).
///         Unbonded stake is released `unbondingEras` eras later. The `slasher` (an
///         equivocation-proof verifier) may take stake and exclude an operator from elections.
interface IStaking {
    event Deposited(address indexed operator, uint256 amount);
    event ValidatorRegistered(address indexed operator, address indexed signer);
    event Unbonded(address indexed operator, uint256 amount, uint256 releaseEra);
    event Withdrawn(address indexed operator, uint256 amount);
    event Slashed(address indexed operator, uint256 amount, address beneficiary);
    event SlasherChanged(address slasher);
    event RouterSet(address router);
    event OperatorExcluded(address indexed operator);
    event OperatorReadmitted(address indexed operator);
    event ValidatorSetSnapshotted(address pointer, uint256 totalStake, uint256 count);

    error ZeroAmount();
    error ZeroAddress();
    error NotAnOperator(address account);
    error SignerTaken(address signer, address operator);
    error InsufficientStake(uint256 available, uint256 requested);
    error NothingToWithdraw();
    /// @notice The unbonding stake is released at era `releaseEra` (the current era is lower).
    error StillBonding(uint256 releaseEra);
    error CallerNotSlasher();
    error CallerNotRouter();
    error RouterAlreadySet();
    error UnbondingErasTooShort(uint256 unbondingEras);
    error UnexpectedEra(uint256 expected, uint256 given);
    error StakeOverflow(uint256 total);

    /// @notice One entry of an era's validator set.
    struct Validator {
        address signer;
        uint96 stake;
    }

    function wrappedVara() external view returns (address);

    /// @notice Minimum number of eras between `unbond` and `withdraw` (≥ 2).
    function unbondingEras() external view returns (uint64);

    /// @notice The index of the era the Router started last (0 before the first era).
    function currentEra() external view returns (uint64);

    /// @notice Elect era `era`'s validator set from current stakes and store it as an SSTORE2
    ///         blob: one 32-byte word per validator, `signer << 96 | stake`, in election order.
    ///         Only the Router calls it, with `era == currentEra() + 1`.
    function snapshot(uint256 era) external returns (address pointer, uint96 totalStake, uint256 count);

    /// @notice The set `snapshot()` would store now.
    function electedValidators() external view returns (Validator[] memory);

    /// @notice The operators of era `era`'s validator set and their snapshotted stakes, in the
    ///         same order as the Router's `eraValidators(era)`.
    function eraOperators(uint256 era) external view returns (address[] memory operators, uint256[] memory stakes);

    /// @notice `account`'s stake in era `era`'s snapshot (0 when not elected that era).
    function eraStakeOf(uint256 era, address account) external view returns (uint256);

    /// @notice Take up to `amount` from `account` (active stake first, then unbonding) and send
    ///         it to `beneficiary`. Slasher only.
    function slash(address account, uint96 amount, address beneficiary) external returns (uint96 taken);

    /// @notice Leave `account` out of every election until the owner re-admits it. Slasher only.
    function exclude(address account) external;

    function operator(address account)
        external
        view
        returns (address signer, uint96 stake, uint96 unbonding, uint64 releaseEra, bool excluded);
}

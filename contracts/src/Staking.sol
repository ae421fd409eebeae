// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IStaking} from "./IStaking.sol";
import {SSTORE2} from "./SSTORE2.sol";

/// @title Staking
/// @notice First version: operators deposit WVARA, register a validator signing address, and
///         unbond with a delay. The election (top `maxValidators` by stake, at least `minStake`)
///         is snapshotted by the Router at each era start. Slashing is a hook for a future
///         equivocation-proof contract (the `slasher`), which the owner appoints.
/// @dev Keep `unbondingPeriod` longer than two eras so that stake backing a signed batch stays
///      slashable while that batch's era can still be proven against.
contract Staking is IStaking, Ownable, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    struct Operator {
        address signer;
        uint96 stake;
        uint96 unbonding;
        uint64 unbondingReleaseAt;
        bool known;
    }

    IERC20 internal immutable _wvara;
    uint64 public immutable unbondingPeriod;

    uint96 public minStake;
    uint16 public maxValidators;
    address public slasher;

    mapping(address operator => Operator) internal _operators;
    mapping(address signer => address operator) public operatorOfSigner;
    address[] internal _operatorList;

    constructor(address owner_, address wrappedVara_, uint64 unbondingPeriod_, uint96 minStake_, uint16 maxValidators_)
        Ownable(owner_)
    {
        if (wrappedVara_ == address(0)) revert ZeroAddress();
        _wvara = IERC20(wrappedVara_);
        unbondingPeriod = unbondingPeriod_;
        minStake = minStake_;
        maxValidators = maxValidators_;
    }

    // -- operators --

    /// @notice Add `amount` WVARA (approved to this contract) to msg.sender's stake.
    function deposit(uint96 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        Operator storage op = _operators[msg.sender];
        if (!op.known) {
            op.known = true;
            _operatorList.push(msg.sender);
        }
        op.stake += amount;
        _wvara.safeTransferFrom(msg.sender, address(this), amount);
        emit Deposited(msg.sender, amount);
    }

    /// @notice Set (or change) the address whose signatures count for msg.sender's stake.
    function registerValidator(address signer) external {
        if (signer == address(0)) revert ZeroAddress();
        Operator storage op = _operators[msg.sender];
        if (!op.known) revert NotAnOperator(msg.sender);
        address holder = operatorOfSigner[signer];
        if (holder != address(0) && holder != msg.sender) revert SignerTaken(signer, holder);
        if (op.signer != address(0)) delete operatorOfSigner[op.signer];
        op.signer = signer;
        operatorOfSigner[signer] = msg.sender;
        emit ValidatorRegistered(msg.sender, signer);
    }

    /// @notice Move `amount` from active stake to unbonding; it can be withdrawn after
    ///         `unbondingPeriod` (a new unbond restarts the delay for the whole unbonding sum).
    function unbond(uint96 amount) external {
        if (amount == 0) revert ZeroAmount();
        Operator storage op = _operators[msg.sender];
        if (op.stake < amount) revert InsufficientStake(op.stake, amount);
        op.stake -= amount;
        op.unbonding += amount;
        uint64 releaseAt = uint64(block.timestamp) + unbondingPeriod;
        op.unbondingReleaseAt = releaseAt;
        emit Unbonded(msg.sender, amount, releaseAt);
    }

    function withdraw() external nonReentrant {
        Operator storage op = _operators[msg.sender];
        uint96 amount = op.unbonding;
        if (amount == 0) revert NothingToWithdraw();
        if (block.timestamp < op.unbondingReleaseAt) revert StillUnbonding(op.unbondingReleaseAt);
        op.unbonding = 0;
        _wvara.safeTransfer(msg.sender, amount);
        emit Withdrawn(msg.sender, amount);
    }

    // -- slashing hook --

    function setSlasher(address slasher_) external onlyOwner {
        slasher = slasher_;
        emit SlasherChanged(slasher_);
    }

    /// @notice Take up to `amount` from `operator` (active stake first, then unbonding) and send
    ///         it to `beneficiary`. Only the slasher (a future equivocation-proof verifier) may.
    function slash(address account, uint96 amount, address beneficiary) external nonReentrant returns (uint96 taken) {
        if (msg.sender != slasher || msg.sender == address(0)) revert CallerNotSlasher();
        if (beneficiary == address(0)) revert ZeroAddress();
        Operator storage op = _operators[account];
        uint96 fromStake = op.stake < amount ? op.stake : amount;
        op.stake -= fromStake;
        uint96 rest = amount - fromStake;
        uint96 fromUnbonding = op.unbonding < rest ? op.unbonding : rest;
        op.unbonding -= fromUnbonding;
        taken = fromStake + fromUnbonding;
        if (taken != 0) _wvara.safeTransfer(beneficiary, taken);
        emit Slashed(account, taken, beneficiary);
    }

    // -- settings --

    function setMinStake(uint96 minStake_) external onlyOwner {
        minStake = minStake_;
    }

    function setMaxValidators(uint16 maxValidators_) external onlyOwner {
        maxValidators = maxValidators_;
    }

    // -- views --

    function wrappedVara() external view returns (address) {
        return address(_wvara);
    }

    function operator(address account)
        external
        view
        returns (address signer, uint96 stake, uint96 unbonding, uint64 unbondingReleaseAt)
    {
        Operator storage op = _operators[account];
        return (op.signer, op.stake, op.unbonding, op.unbondingReleaseAt);
    }

    function operators() external view returns (address[] memory) {
        return _operatorList;
    }

    // -- election --

    /// @inheritdoc IStaking
    function electedValidators() public view returns (Validator[] memory set) {
        uint256 n = _operatorList.length;
        uint256 cap = maxValidators;
        uint96 floor = minStake == 0 ? 1 : minStake;
        set = new Validator[](cap < n ? cap : n);
        uint256 len = 0;
        // Insertion into a list kept sorted by stake, descending; ties keep registration order
        // (strict comparison), so the result is a deterministic function of the state.
        for (uint256 i = 0; i < n; ++i) {
            Operator storage op = _operators[_operatorList[i]];
            uint96 stake = op.stake;
            if (op.signer == address(0) || stake < floor) continue;
            if (len == set.length && (len == 0 || set[len - 1].stake >= stake)) continue;
            uint256 j = len < set.length ? len++ : len - 1;
            while (j > 0 && set[j - 1].stake < stake) {
                set[j] = set[j - 1];
                --j;
            }
            set[j] = Validator(op.signer, stake);
        }
        assembly ("memory-safe") {
            mstore(set, len)
        }
    }

    /// @inheritdoc IStaking
    function snapshot() external returns (address pointer, uint96 totalStake, uint256 count) {
        Validator[] memory set = electedValidators();
        count = set.length;
        bytes memory blob = new bytes(count * 32);
        uint256 total = 0;
        for (uint256 i = 0; i < count; ++i) {
            uint256 word = (uint256(uint160(set[i].signer)) << 96) | set[i].stake;
            total += set[i].stake;
            assembly ("memory-safe") {
                mstore(add(add(blob, 0x20), shl(5, i)), word)
            }
        }
        totalStake = uint96(total);
        if (totalStake != total) revert StakeOverflow(total);
        pointer = SSTORE2.write(blob);
        emit ValidatorSetSnapshotted(pointer, totalStake, count);
    }
}

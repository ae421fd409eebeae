// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IStaking} from "./IStaking.sol";
import {SSTORE2} from "./SSTORE2.sol";

/// @title Staking
/// @notice Operators deposit WVARA, register a validator signing address (registering again
///         rotates it: the new signer counts from the next election), unbond, and withdraw once
///         `unbondingEras` eras have started since the unbond. At each era start the Router calls
///         `snapshot(era)`: the election (top `maxValidators` by stake, at least `minStake`, with
///         a signer, not excluded; ties in registration order) is frozen as two SSTORE2 blobs —
///         the signers the Router checks batches against, and the operators it pays rewards to.
///         The `slasher` (the equivocation-proof verifier, appointed by the owner) may take stake
///         and exclude an operator from elections until the owner re-admits it.
/// @dev `unbondingEras` ≥ 2: stake that backed a signature in era e stays slashable until era
///      e + unbondingEras starts, which covers the grace window in era e + 1 during which e's
///      batches can still be committed.
contract Staking is IStaking, Ownable, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    struct Operator {
        address signer;
        uint96 stake;
        uint96 unbonding;
        /// @dev The era of the last `unbond` (the whole unbonding sum is released together).
        uint64 unbondEra;
        bool known;
        bool excluded;
    }

    IERC20 internal immutable _wvara;
    /// @inheritdoc IStaking
    uint64 public immutable unbondingEras;

    uint96 public minStake;
    uint16 public maxValidators;
    address public slasher;
    address public router;
    /// @inheritdoc IStaking
    uint64 public currentEra;

    mapping(address operator => Operator) internal _operators;
    mapping(address signer => address operator) public operatorOfSigner;
    address[] internal _operatorList;
    /// @dev Per era: SSTORE2 blob of `operator << 96 | stake` words, in election order.
    mapping(uint256 era => address pointer) internal _eraOperators;

    constructor(address owner_, address wrappedVara_, uint64 unbondingEras_, uint96 minStake_, uint16 maxValidators_)
        Ownable(owner_)
    {
        if (wrappedVara_ == address(0)) revert ZeroAddress();
        if (unbondingEras_ < 2) revert UnbondingErasTooShort(unbondingEras_);
        _wvara = IERC20(wrappedVara_);
        unbondingEras = unbondingEras_;
        minStake = minStake_;
        maxValidators = maxValidators_;
    }

    // -- operators --

    /// @notice Add `amount` WVARA (approved to this contract) to msg.sender's stake. Allowed
    ///         while unbonding too (it does not touch the unbonding sum).
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

    /// @notice Set (or rotate) the address whose signatures count for msg.sender's stake. The
    ///         era in progress keeps the signer it was elected with (the snapshot is frozen);
    ///         the new one counts from the next election.
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

    /// @notice Move `amount` from active stake to unbonding. It can be withdrawn once era
    ///         `currentEra + unbondingEras` has started (a new unbond restarts the delay for the
    ///         whole unbonding sum). Unbonded stake leaves the next election at once but stays
    ///         slashable until released.
    function unbond(uint96 amount) external {
        if (amount == 0) revert ZeroAmount();
        Operator storage op = _operators[msg.sender];
        if (op.stake < amount) revert InsufficientStake(op.stake, amount);
        op.stake -= amount;
        op.unbonding += amount;
        uint64 era = currentEra;
        op.unbondEra = era;
        emit Unbonded(msg.sender, amount, era + unbondingEras);
    }

    function withdraw() external nonReentrant {
        Operator storage op = _operators[msg.sender];
        uint96 amount = op.unbonding;
        if (amount == 0) revert NothingToWithdraw();
        uint256 releaseEra = uint256(op.unbondEra) + unbondingEras;
        if (currentEra < releaseEra) revert StillBonding(releaseEra);
        op.unbonding = 0;
        _wvara.safeTransfer(msg.sender, amount);
        emit Withdrawn(msg.sender, amount);
    }

    // -- slashing --

    function setSlasher(address slasher_) external onlyOwner {
        slasher = slasher_;
        emit SlasherChanged(slasher_);
    }

    function _checkSlasher() private view {
        if (msg.sender != slasher || msg.sender == address(0)) revert CallerNotSlasher();
    }

    /// @inheritdoc IStaking
    function slash(address account, uint96 amount, address beneficiary) external nonReentrant returns (uint96 taken) {
        _checkSlasher();
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

    /// @inheritdoc IStaking
    function exclude(address account) external {
        _checkSlasher();
        _operators[account].excluded = true;
        emit OperatorExcluded(account);
    }

    /// @notice Let an excluded operator stand in elections again.
    function readmit(address account) external onlyOwner {
        _operators[account].excluded = false;
        emit OperatorReadmitted(account);
    }

    // -- settings --

    /// @notice Name the Router, the only caller of `snapshot` (once, at deployment).
    function setRouter(address router_) external onlyOwner {
        if (router != address(0)) revert RouterAlreadySet();
        if (router_ == address(0)) revert ZeroAddress();
        router = router_;
        emit RouterSet(router_);
    }

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

    /// @inheritdoc IStaking
    function operator(address account)
        external
        view
        returns (address signer, uint96 stake, uint96 unbonding, uint64 releaseEra, bool excluded)
    {
        Operator storage op = _operators[account];
        releaseEra = op.unbonding == 0 ? 0 : op.unbondEra + unbondingEras;
        return (op.signer, op.stake, op.unbonding, releaseEra, op.excluded);
    }

    function operators() external view returns (address[] memory) {
        return _operatorList;
    }

    /// @inheritdoc IStaking
    function eraOperators(uint256 era) external view returns (address[] memory ops, uint256[] memory stakes) {
        address pointer = _eraOperators[era];
        if (pointer == address(0)) return (ops, stakes);
        bytes memory blob = SSTORE2.read(pointer);
        uint256 n = blob.length >> 5;
        ops = new address[](n);
        stakes = new uint256[](n);
        for (uint256 i = 0; i < n; ++i) {
            uint256 word = _wordAt(blob, i);
            ops[i] = address(uint160(word >> 96));
            stakes[i] = uint96(word);
        }
    }

    /// @inheritdoc IStaking
    function eraStakeOf(uint256 era, address account) external view returns (uint256) {
        address pointer = _eraOperators[era];
        if (pointer == address(0)) return 0;
        bytes memory blob = SSTORE2.read(pointer);
        uint256 n = blob.length >> 5;
        for (uint256 i = 0; i < n; ++i) {
            uint256 word = _wordAt(blob, i);
            if (address(uint160(word >> 96)) == account) return uint96(word);
        }
        return 0;
    }

    function _wordAt(bytes memory blob, uint256 i) private pure returns (uint256 word) {
        assembly ("memory-safe") {
            word := mload(add(add(blob, 0x20), shl(5, i)))
        }
    }

    // -- election --

    /// @inheritdoc IStaking
    function electedValidators() public view returns (Validator[] memory set) {
        (set,) = _elect();
    }

    /// @dev The election, and the operator of each elected validator (same order).
    function _elect() private view returns (Validator[] memory set, address[] memory ops) {
        uint256 n = _operatorList.length;
        uint256 cap = maxValidators;
        uint96 floor = minStake == 0 ? 1 : minStake;
        set = new Validator[](cap < n ? cap : n);
        ops = new address[](set.length);
        uint256 len = 0;
        // Insertion into a list kept sorted by stake, descending; ties keep registration order
        // (strict comparison), so the result is a deterministic function of the state.
        for (uint256 i = 0; i < n; ++i) {
            address account = _operatorList[i];
            Operator storage op = _operators[account];
            uint96 stake = op.stake;
            if (op.signer == address(0) || stake < floor || op.excluded) continue;
            if (len == set.length && (len == 0 || set[len - 1].stake >= stake)) continue;
            uint256 j = len < set.length ? len++ : len - 1;
            while (j > 0 && set[j - 1].stake < stake) {
                set[j] = set[j - 1];
                ops[j] = ops[j - 1];
                --j;
            }
            set[j] = Validator(op.signer, stake);
            ops[j] = account;
        }
        assembly ("memory-safe") {
            mstore(set, len)
            mstore(ops, len)
        }
    }

    /// @inheritdoc IStaking
    function snapshot(uint256 era) external returns (address pointer, uint96 totalStake, uint256 count) {
        if (msg.sender != router || msg.sender == address(0)) revert CallerNotRouter();
        if (era != uint256(currentEra) + 1) revert UnexpectedEra(uint256(currentEra) + 1, era);
        (Validator[] memory set, address[] memory ops) = _elect();
        count = set.length;
        bytes memory signers = new bytes(count * 32);
        bytes memory owners = new bytes(count * 32);
        uint256 total = 0;
        for (uint256 i = 0; i < count; ++i) {
            uint256 stake = set[i].stake;
            uint256 word = (uint256(uint160(set[i].signer)) << 96) | stake;
            uint256 ownerWord = (uint256(uint160(ops[i])) << 96) | stake;
            total += stake;
            assembly ("memory-safe") {
                mstore(add(add(signers, 0x20), shl(5, i)), word)
                mstore(add(add(owners, 0x20), shl(5, i)), ownerWord)
            }
        }
        totalStake = uint96(total);
        if (totalStake != total) revert StakeOverflow(total);
        currentEra = uint64(era);
        if (count != 0) {
            pointer = SSTORE2.write(signers);
            _eraOperators[era] = SSTORE2.write(owners);
        }
        emit ValidatorSetSnapshotted(pointer, totalStake, count);
    }
}

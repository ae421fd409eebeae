// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Clones} from "@openzeppelin/contracts/proxy/Clones.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {Gear} from "./Gear.sol";
import {IMirror} from "./IMirror.sol";
import {IRouter} from "./IRouter.sol";
import {IStaking} from "./IStaking.sol";
import {SSTORE2} from "./SSTORE2.sol";

/// @title Router
/// @notice The entry point of a gexe network on Ethereum: code uploads, program creation,
///         validator eras and batch settlement.
/// @dev Batch acceptance (see contracts/README.md): the batch extends the latest committed one,
///      its block is a recent ancestor, and signers of the era of that block (the current era,
///      or the previous one during the grace window after an era start) holding strictly more
///      than 2/3 of that era's stake signed its EIP-712 digest. Signatures come in
///      validator-set order; an unknown, repeated or out-of-order signer reverts. As in
///      Vara.eth, transitions are applied while the batch is hashed (each Mirror returns the
///      hash of what it applied) and the signatures are checked over that hash at the end of
///      the same transaction, which reverts as a whole if they do not hold. The executable
///      balance a batch reports as `burned` is credited to its era's reward pool, which the
///      era's operators claim in proportion to their snapshotted stake.
contract Router is IRouter, Ownable, EIP712, ReentrancyGuardTransient {
    /// @notice EIP-712 type of what validators sign.
    bytes32 public constant BATCH_TYPEHASH = keccak256("BatchCommitment(bytes32 batchHash)");

    address public immutable wrappedVara;
    address public immutable staking;
    /// @notice Minimum era duration in seconds.
    uint256 public immutable eraLength;
    /// @notice For this many blocks after an era starts, batches for blocks of the previous
    ///         era are still accepted (signed by the previous era's set).
    uint256 public immutable eraGraceBlocks;

    address public mirrorImpl;
    /// @dev EXTCODEHASH of an ERC-1167 clone of `mirrorImpl`: a program's code hash.
    bytes32 internal _mirrorCodeHash;

    bytes32 public latestCommittedBatchHash;

    /// @dev One slot, read by every commit: the current era, the block it started in, and the
    ///      rewards credited but not claimed yet (WVARA this contract owes the operators).
    uint64 internal _eraIndex;
    uint64 internal _eraStartBlock;
    uint128 internal _rewardsOutstanding;

    /// @dev Per era (1, 2, ...): its validator set (SSTORE2 blob) and total stake in one slot,
    ///      then its start and reward pool in another.
    mapping(uint256 index => Era) internal _eras;
    mapping(uint256 index => mapping(address operator => bool)) internal _rewardsClaimed;

    mapping(bytes32 codeId => CodeState) internal _codes;
    mapping(address actorId => bytes32 codeId) internal _programs;
    uint256 public programsCount;
    uint256 public validatedCodesCount;

    constructor(address owner_, address wrappedVara_, address staking_, uint256 eraLength_, uint256 eraGraceBlocks_)
        Ownable(owner_)
        EIP712("gexe Router", "1")
    {
        if (wrappedVara_ == address(0) || staking_ == address(0)) revert ZeroAddress();
        wrappedVara = wrappedVara_;
        staking = staking_;
        eraLength = eraLength_;
        eraGraceBlocks = eraGraceBlocks_;
    }

    /// @notice Wei forwarded by Mirrors (the pool that transitions pay out of).
    receive() external payable {
        if (_programs[msg.sender] == bytes32(0)) revert UnknownProgram(msg.sender);
    }

    // -- owner --

    /// @inheritdoc IRouter
    function setMirror(address mirrorImpl_) external onlyOwner {
        if (mirrorImpl != address(0)) revert MirrorAlreadySet();
        if (mirrorImpl_ == address(0)) revert ZeroAddress();
        if (IMirror(mirrorImpl_).router() != address(this)) revert MirrorRouterMismatch(mirrorImpl_);
        mirrorImpl = mirrorImpl_;
        _mirrorCodeHash = keccak256(
            abi.encodePacked(hex"363d3d373d3d3d363d73", mirrorImpl_, hex"5af43d82803e903d91602b57fd5bf3")
        );
        emit MirrorSet(mirrorImpl_);
    }

    // -- codes and programs --

    /// @inheritdoc IRouter
    function requestCodeValidation(bytes32 codeId, bytes calldata code) external {
        if (codeId == bytes32(0)) revert ZeroCodeId();
        if (code.length == 0) revert EmptyCode();
        CodeState state = _codes[codeId];
        if (state != CodeState.Unknown) revert CodeAlreadyRequestedOrValidated(codeId, state);
        _codes[codeId] = CodeState.ValidationRequested;
        emit CodeValidationRequested(codeId);
    }

    /// @inheritdoc IRouter
    function createProgram(bytes32 codeId, bytes32 salt, address overrideInitializer)
        external
        returns (address actorId)
    {
        address initializer = overrideInitializer == address(0) ? msg.sender : overrideInitializer;
        actorId = _createProgram(codeId, salt, initializer, 0);
    }

    /// @inheritdoc IRouter
    function createProgramWithInit(
        bytes32 codeId,
        bytes32 salt,
        bytes calldata initPayload,
        bool callReply,
        uint128 initialExecutableBalance
    ) external payable returns (address actorId, bytes32 initMessageId) {
        if (initialExecutableBalance != 0) {
            if (!IERC20(wrappedVara).transferFrom(msg.sender, address(this), initialExecutableBalance)) {
                revert WVaraTransferFailed();
            }
        }
        actorId = _createProgram(codeId, salt, msg.sender, initialExecutableBalance);
        // The init message's value stays here, in the pool.
        initMessageId = IMirror(actorId).sendInitMessage(msg.sender, initPayload, callReply, uint128(msg.value));
    }

    function _createProgram(bytes32 codeId, bytes32 salt, address initializer, uint128 initialExecutableBalance)
        private
        returns (address actorId)
    {
        if (_codes[codeId] != CodeState.Validated) revert CodeNotValidated(codeId);
        address impl = mirrorImpl;
        if (impl == address(0)) revert MirrorNotSet();
        actorId = Clones.cloneDeterministic(impl, keccak256(abi.encodePacked(codeId, salt)));
        _programs[actorId] = codeId;
        ++programsCount;
        // Validators learn about the program before any of its Mirror's events.
        emit ProgramCreated(actorId, codeId);
        IMirror(actorId).initialize(initializer, initialExecutableBalance);
    }

    // -- eras --

    /// @inheritdoc IRouter
    function startNextEra() external nonReentrant {
        uint256 index = _eraIndex;
        if (index == 0) {
            // The first set is chosen by the owner, after the genesis validators registered.
            _checkOwner();
        } else {
            uint256 endsAt = uint256(_eras[index].startTimestamp) + eraLength;
            if (block.timestamp < endsAt) revert EraNotFinished(endsAt);
        }
        uint256 next = index + 1;
        (address pointer, uint96 total, uint256 count) = IStaking(staking).snapshot(next);
        if (count == 0 || total == 0) revert NoValidators();
        _eras[next] = Era(pointer, total, uint64(block.number), uint64(block.timestamp), 0);
        _eraIndex = uint64(next);
        _eraStartBlock = uint64(block.number);
        emit EraStarted(next, pointer, total, count);
    }

    // -- batches --

    /// @inheritdoc IRouter
    function commitBatch(Gear.BatchCommitment calldata batch, bytes[] calldata signatures) external nonReentrant {
        bytes32 previous = latestCommittedBatchHash;
        if (batch.previousCommittedBatchHash != previous) {
            revert BatchDoesNotExtendHead(previous, batch.previousCommittedBatchHash);
        }
        uint64 blockNumber = batch.blockNumber;
        bytes32 blockHash = batch.blockHash;
        // blockhash() is zero for the current block, future blocks and blocks > 256 back.
        if (blockHash == bytes32(0) || blockhash(blockNumber) != blockHash) {
            revert BlockNotRecentAncestor(blockNumber, blockHash);
        }
        if (batch.chainCommitment.length > 1) revert TooManyChainCommitments();
        // The era of the batch's block: the current one, or the previous one while the grace
        // window after the current era's start lasts.
        uint256 era = _eraIndex;
        if (era == 0) revert NoValidatorSet();
        if (blockNumber < _eraStartBlock) era = _previousEraFor(blockNumber, era);
        Era storage record = _eras[era];
        address pointer = record.validatorsPointer;
        uint256 total = record.totalStake;

        // Apply, collecting each transition's hash as its Mirror computed it from what it
        // applied; then check the signatures over the whole batch. Any mismatch or a missing
        // signature reverts everything (Vara.eth does the same).
        _applyCodes(batch.codeCommitments);
        bytes32 chainHash = Gear.EMPTY_ARRAY_HASH;
        if (batch.chainCommitment.length == 1) {
            Gear.ChainCommitment calldata chain = batch.chainCommitment[0];
            bytes32 transitionsHash = _applyTransitions(chain.transitions);
            chainHash = keccak256(abi.encode(Gear.chainCommitmentHashOf(transitionsHash, chain.head)));
            emit HeadCommitted(chain.head);
        }
        bytes32 hash = Gear.batchHashOf(batch, chainHash);
        _verifySignatures(hash, signatures, pointer, total);
        uint128 burned = batch.burned;
        if (burned != 0) _creditRewards(era, burned);
        latestCommittedBatchHash = hash;
        emit BatchCommitted(hash);
    }

    /// @dev `blockNumber` is before the current era's start: the previous era if the block is
    ///      in it and the grace window is open; otherwise revert naming the block's era.
    function _previousEraFor(uint64 blockNumber, uint256 current) private view returns (uint256 previous) {
        previous = current - 1;
        if (previous == 0 || blockNumber < _eras[previous].startBlock) {
            uint256 era = _eraOf(blockNumber);
            if (era == 0) revert BlockBeforeFirstEra(blockNumber);
            revert EraExpired(era);
        }
        if (block.number > uint256(_eraStartBlock) + eraGraceBlocks) revert EraExpired(previous);
    }

    /// @dev The newest era whose start block is at most `blockNumber` (0: none).
    function _eraOf(uint256 blockNumber) private view returns (uint256 lo) {
        uint256 hi = _eraIndex;
        while (lo < hi) {
            uint256 mid = (lo + hi + 1) >> 1;
            if (_eras[mid].startBlock <= blockNumber) lo = mid;
            else hi = mid - 1;
        }
    }

    /// @dev Add `burned` to era `era`'s reward pool. The WVARA it stands for is already here
    ///      (executable balance top-ups go to this contract); never owe more than we hold.
    function _creditRewards(uint256 era, uint128 burned) private {
        uint256 owed = _rewardsOutstanding;
        uint256 outstanding = owed + burned;
        uint256 balance = IERC20(wrappedVara).balanceOf(address(this));
        if (outstanding > balance || outstanding > type(uint128).max) {
            revert BurnedExceedsBalance(burned, balance > owed ? balance - owed : 0);
        }
        _rewardsOutstanding = uint128(outstanding);
        _eras[era].rewardPool += burned;
        emit RewardsCredited(era, burned);
    }

    /// @dev Signers of `hash` (EIP-712 digest) must be members of the era's set, in set order,
    ///      each at most once, holding strictly more than 2/3 of `total` stake together.
    function _verifySignatures(bytes32 hash, bytes[] calldata signatures, address pointer, uint256 total)
        private
        view
    {        // The whole set in one EXTCODECOPY: no storage read per signer.
        bytes memory set = SSTORE2.read(pointer);
        uint256 n = set.length >> 5;
        bytes32 digest = _hashTypedDataV4(keccak256(abi.encode(BATCH_TYPEHASH, hash)));

        uint256 signed = 0;
        uint256 j = 0;
        uint256 base;
        assembly ("memory-safe") {
            base := signatures.offset
        }
        for (uint256 i = 0; i < signatures.length; ++i) {
            bytes32 r;
            bytes32 s;
            uint8 v;
            assembly ("memory-safe") {
                let sig := add(base, calldataload(add(base, shl(5, i))))
                if iszero(eq(calldataload(sig), 65)) {
                    mstore(0x00, 0xfce698f7) // ECDSAInvalidSignatureLength(uint256)
                    mstore(0x20, calldataload(sig))
                    revert(0x1c, 0x24)
                }
                r := calldataload(add(sig, 0x20))
                s := calldataload(add(sig, 0x40))
                v := byte(0, calldataload(add(sig, 0x60)))
            }
            // OZ ECDSA: reverts on invalid signatures and on high-s (malleable) ones.
            address signer = ECDSA.recover(digest, v, r, s);
            while (true) {
                if (j == n) revert UnexpectedSigner(i, signer);
                uint256 word;
                assembly ("memory-safe") {
                    word := mload(add(add(set, 0x20), shl(5, j)))
                }
                ++j;
                if (address(uint160(word >> 96)) == signer) {
                    signed += uint96(word);
                    break;
                }
            }
        }
        if (signed * 3 <= total * 2) revert NotEnoughStake(signed, total);
    }

    // -- rewards --

    /// @inheritdoc IRouter
    function claimRewards(uint256[] calldata eras) external nonReentrant returns (uint256 paid) {
        for (uint256 i = 0; i < eras.length; ++i) {
            uint256 era = eras[i];
            if (!_eraClosed(era)) revert EraNotClosed(era);
            if (_rewardsClaimed[era][msg.sender]) revert RewardsAlreadyClaimed(era, msg.sender);
            uint256 stake = IStaking(staking).eraStakeOf(era, msg.sender);
            if (stake == 0) revert NotAValidatorOfEra(era, msg.sender);
            _rewardsClaimed[era][msg.sender] = true;
            Era storage record = _eras[era];
            uint256 amount = uint256(record.rewardPool) * stake / record.totalStake;
            paid += amount;
            emit RewardsClaimed(msg.sender, era, amount);
        }
        _rewardsOutstanding -= uint128(paid);
        if (paid != 0 && !IERC20(wrappedVara).transfer(msg.sender, paid)) revert WVaraTransferFailed();
    }

    /// @dev No batch can be credited to `era` any more: it is neither current nor in grace.
    function _eraClosed(uint256 era) private view returns (bool) {
        uint256 current = _eraIndex;
        if (era == 0 || era >= current) return false;
        return era + 1 < current || block.number > uint256(_eraStartBlock) + eraGraceBlocks;
    }

    function _applyCodes(Gear.CodeCommitment[] calldata codes) private {
        for (uint256 i = 0; i < codes.length; ++i) {
            bytes32 codeId = codes[i].id;
            bool valid = codes[i].valid;
            if (_codes[codeId] != CodeState.ValidationRequested) revert CodeNotRequested(codeId);
            if (valid) {
                _codes[codeId] = CodeState.Validated;
                ++validatedCodesCount;
            } else {
                // An invalid verdict frees the id: the right code can be uploaded again.
                delete _codes[codeId];
            }
            emit CodeGotValidated(codeId, valid);
        }
    }

    /// @dev Call `performStateTransition` on each transition's Mirror; returns the hash of the
    ///      transitions (keccak256 of the hashes the Mirrors returned).
    function _applyTransitions(Gear.StateTransition[] calldata transitions) private returns (bytes32 hash) {
        bytes32 codeHash = _mirrorCodeHash;
        if (codeHash == bytes32(0)) revert MirrorNotSet();
        bytes4 selector = IMirror.performStateTransition.selector;
        uint256 n = transitions.length;
        uint256 data;
        uint256 hashes;
        assembly ("memory-safe") {
            data := transitions.offset
            hashes := mload(0x40)
            mstore(0x40, add(hashes, shl(5, n)))
        }
        for (uint256 i = 0; i < n; ++i) {
            uint256 start;
            uint256 end;
            address actorId;
            uint256 value;
            assembly ("memory-safe") {
                start := add(data, calldataload(add(data, shl(5, i))))
                // The transition's encoding runs to the next one (the last: to the end of the
                // calldata). Whatever the Mirror reads from these bytes is what it hashes, so a
                // non-canonical layout can only change the hash, never smuggle in other data.
                end := calldatasize()
                if lt(add(i, 1), n) { end := add(data, calldataload(add(data, shl(5, add(i, 1))))) }
                if lt(end, add(start, 0xe0)) { end := add(start, 0xe0) }
                actorId := calldataload(start)
                value := calldataload(add(start, 0x80))
            }
            // A clone of our Mirror (only the Router can initialize one). EXTCODEHASH warms the
            // account for the call below, so the check costs ~100 gas instead of a cold SLOAD.
            if (actorId.codehash != codeHash) revert UnknownProgram(actorId);
            if (value > address(this).balance) revert InsufficientValue(address(this).balance, value);
            // performStateTransition(transition): a struct's offsets are relative to its start,
            // so its own bytes are its ABI encoding.
            assembly ("memory-safe") {
                let len := sub(end, start)
                let p := mload(0x40)
                mstore(p, selector)
                mstore(add(p, 0x04), 0x20)
                calldatacopy(add(p, 0x24), start, len)
                if iszero(call(gas(), actorId, value, p, add(len, 0x24), 0, 0x20)) {
                    returndatacopy(p, 0, returndatasize())
                    revert(p, returndatasize())
                }
                // Our Mirror always returns one word (the code hash check above rules out others).
                if iszero(eq(returndatasize(), 0x20)) { revert(0, 0) }
                mstore(add(hashes, shl(5, i)), mload(0))
            }
        }
        assembly ("memory-safe") {
            hash := keccak256(hashes, shl(5, n))
        }
    }

    // -- views --

    function codeState(bytes32 codeId) external view returns (CodeState) {
        return _codes[codeId];
    }

    function programCodeId(address actorId) external view returns (bytes32) {
        return _programs[actorId];
    }

    function eraIndex() external view returns (uint256) {
        return _eraIndex;
    }

    function eraStartedAt() external view returns (uint256) {
        return _eras[_eraIndex].startTimestamp;
    }

    function validatorsPointer() external view returns (address) {
        return _eras[_eraIndex].validatorsPointer;
    }

    function totalStake() external view returns (uint256) {
        return _eras[_eraIndex].totalStake;
    }

    /// @inheritdoc IRouter
    function eraInfo(uint256 index) external view returns (Era memory) {
        return _eras[index];
    }

    /// @inheritdoc IRouter
    function eraOfBlock(uint64 blockNumber) external view returns (uint256) {
        return _eraOf(blockNumber);
    }

    /// @inheritdoc IRouter
    function eraClosed(uint256 index) external view returns (bool) {
        return _eraClosed(index);
    }

    function rewardsOutstanding() external view returns (uint256) {
        return _rewardsOutstanding;
    }

    function rewardsClaimed(address operator, uint256 index) external view returns (bool) {
        return _rewardsClaimed[index][operator];
    }

    /// @inheritdoc IRouter
    function pendingRewards(address operator, uint256 index) public view returns (uint256) {
        if (_rewardsClaimed[index][operator]) return 0;
        Era storage record = _eras[index];
        if (record.totalStake == 0) return 0;
        uint256 stake = IStaking(staking).eraStakeOf(index, operator);
        return uint256(record.rewardPool) * stake / record.totalStake;
    }

    /// @inheritdoc IRouter
    function validators() external view returns (address[] memory signers, uint256[] memory stakes) {
        return _setOf(_eras[_eraIndex].validatorsPointer);
    }

    /// @inheritdoc IRouter
    function eraValidators(uint256 index) external view returns (address[] memory signers, uint256[] memory stakes) {
        return _setOf(_eras[index].validatorsPointer);
    }

    function _setOf(address pointer) private view returns (address[] memory signers, uint256[] memory stakes) {
        if (pointer == address(0)) return (signers, stakes);
        bytes memory set = SSTORE2.read(pointer);
        uint256 n = set.length >> 5;
        signers = new address[](n);
        stakes = new uint256[](n);
        for (uint256 i = 0; i < n; ++i) {
            uint256 word;
            assembly ("memory-safe") {
                word := mload(add(add(set, 0x20), shl(5, i)))
            }
            signers[i] = address(uint160(word >> 96));
            stakes[i] = uint96(word);
        }
    }

    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    function batchDigest(bytes32 batchHash) external view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(BATCH_TYPEHASH, batchHash)));
    }
}

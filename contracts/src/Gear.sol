// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title Gear
/// @notice The on-chain protocol types of gexe and their canonical keccak256 hashes.
/// @dev Field names and meanings follow Vara.eth (gear-tech/gear, ethexe/contracts); the set of
///      fields is simplified, see contracts/README.md ("Deviations from Vara.eth").
///      Hashing rule: a struct hashes as keccak256 of its fields packed (abi.encodePacked order,
///      as declared below); an array hashes as keccak256 of the concatenation of its elements'
///      hashes (so an empty array hashes to keccak256("")). The Python mirror
///      (contracts/hashing.py) must produce the same bytes for every function here.
library Gear {
    /// @dev A value in calldata is not clean for its type (e.g. an address with high bits set).
    error InvalidEncoding();

    /// @dev Marks a message as a reply. `to` is the id of the message replied to; zero means
    ///      "not a reply". `code` is Gear's 4-byte reply code (first byte 0 = success).
    struct ReplyDetails {
        bytes32 to;
        bytes4 code;
    }

    /// @dev An outgoing message of a program, delivered by its Mirror on Ethereum.
    struct Message {
        bytes32 id;
        address destination;
        bytes payload;
        uint128 value;
        ReplyDetails replyDetails;
        /// @dev Deliver by calling `destination` (set when the original sender asked `callReply`).
        bool call;
    }

    /// @dev Value (wei) a program releases to `destination` for a claimed mailbox message.
    struct ValueClaim {
        bytes32 messageId;
        address destination;
        uint128 value;
    }

    /// @dev The change of one program over the committed blocks.
    struct StateTransition {
        address actorId;
        bytes32 newStateHash;
        bool exited;
        address inheritor;
        /// @dev Wei the Router sends to the Mirror with this transition (funds its payouts).
        uint128 valueToReceive;
        ValueClaim[] valueClaims;
        Message[] messages;
    }

    /// @dev Transitions of the programs that changed, up to the gexe block `head`.
    struct ChainCommitment {
        StateTransition[] transitions;
        bytes32 head;
    }

    /// @dev The validators' verdict on an uploaded code.
    struct CodeCommitment {
        bytes32 id;
        bool valid;
    }

    /// @dev What validators sign: everything that happened after `previousCommittedBatchHash`
    ///      up to and including the Ethereum block `blockHash` (number `blockNumber`).
    struct BatchCommitment {
        bytes32 blockHash;
        uint64 blockNumber;
        bytes32 previousCommittedBatchHash;
        /// @dev Zero or one chain commitment.
        ChainCommitment[] chainCommitment;
        CodeCommitment[] codeCommitments;
        /// @dev Executable balance (WVARA base units) the programs burned in the batch's blocks:
        ///      the Router credits it to the reward pool of the era of `blockNumber`.
        uint128 burned;
    }

    /// @dev keccak256("") — the hash of an empty array.
    bytes32 internal constant EMPTY_ARRAY_HASH =
        0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470;

    // -- messages and value claims, read straight from calldata --
    //
    // The `...At(offset)` functions take the calldata offset of a struct's ABI encoding and
    // read its fields directly (a Mirror applies one transition per program per batch, so
    // this is the hot path). They revert on values that are not clean for their type
    // (address, bool, uint128, bytes4), exactly what Solidity's decoder would reject, so the
    // packed hash always describes the very words the caller goes on to use.

    /// @dev keccak256(id ‖ destination ‖ payload ‖ value ‖ replyDetails.to ‖ replyDetails.code ‖ call)
    ///      of the Message encoded at calldata offset `e`.
    function messageHashAt(uint256 e) internal pure returns (bytes32 h) {
        assembly ("memory-safe") {
            let payload := add(e, calldataload(add(e, 0x40)))
            let len := calldataload(payload)
            let destination := calldataload(add(e, 0x20))
            let value := calldataload(add(e, 0x60))
            let code := calldataload(add(e, 0xa0))
            let isCall := calldataload(add(e, 0xc0))
            if or(or(shr(32, len), shr(160, destination)), or(or(shr(128, value), shl(32, code)), shr(1, isCall))) {
                mstore(0x00, 0xad4d102a) // InvalidEncoding()
                revert(0x1c, 0x04)
            }
            // Scratch space past the free memory pointer; nothing is allocated.
            let p := mload(0x40)
            mstore(p, calldataload(e))
            mstore(add(p, 0x20), shl(96, destination))
            calldatacopy(add(p, 0x34), add(payload, 0x20), len)
            let q := add(add(p, 0x34), len)
            mstore(q, shl(128, value))
            mstore(add(q, 0x10), calldataload(add(e, 0x80)))
            mstore(add(q, 0x30), code)
            mstore8(add(q, 0x34), isCall)
            h := keccak256(p, add(len, 0x69))
        }
    }

    /// @dev keccak256(messageId ‖ destination ‖ value) of the ValueClaim at calldata offset `c`.
    function valueClaimHashAt(uint256 c) internal pure returns (bytes32 h) {
        assembly ("memory-safe") {
            let destination := calldataload(add(c, 0x20))
            let value := calldataload(add(c, 0x40))
            if or(shr(160, destination), shr(128, value)) {
                mstore(0x00, 0xad4d102a) // InvalidEncoding()
                revert(0x1c, 0x04)
            }
            let p := mload(0x40)
            mstore(p, calldataload(c))
            mstore(add(p, 0x20), shl(96, destination))
            mstore(add(p, 0x34), shl(128, value))
            h := keccak256(p, 0x44)
        }
    }

    /// @dev keccak256(actorId ‖ newStateHash ‖ exited ‖ inheritor ‖ valueToReceive
    ///                ‖ valueClaimsHash ‖ messagesHash)
    function stateTransitionHashOf(
        address actorId,
        bytes32 newStateHash,
        bool exited,
        address inheritor,
        uint128 valueToReceive,
        bytes32 valueClaimsHash_,
        bytes32 messagesHash_
    ) internal pure returns (bytes32 h) {
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore(p, shl(96, actorId))
            mstore(add(p, 0x14), newStateHash)
            mstore8(add(p, 0x34), exited)
            mstore(add(p, 0x35), shl(96, inheritor))
            mstore(add(p, 0x49), shl(128, valueToReceive))
            mstore(add(p, 0x59), valueClaimsHash_)
            mstore(add(p, 0x79), messagesHash_)
            h := keccak256(p, 0x99)
        }
    }

    // -- the same hashes over Solidity calldata structs (HashHarness, Router) --

    function messageHash(Message calldata message) internal pure returns (bytes32) {
        uint256 e;
        assembly ("memory-safe") {
            e := message
        }
        return messageHashAt(e);
    }

    function valueClaimHash(ValueClaim calldata claim) internal pure returns (bytes32) {
        uint256 c;
        assembly ("memory-safe") {
            c := claim
        }
        return valueClaimHashAt(c);
    }

    /// @dev keccak256 over the concatenated hashes of `messages`.
    function messagesHash(Message[] calldata messages) internal pure returns (bytes32 h) {
        uint256 n = messages.length;
        uint256 buf = _alloc(n);
        for (uint256 i = 0; i < n; ++i) {
            _put(buf, i, messageHash(messages[i]));
        }
        h = _hashWords(buf, n);
    }

    /// @dev keccak256 over the concatenated hashes of `claims`.
    function valueClaimsHash(ValueClaim[] calldata claims) internal pure returns (bytes32 h) {
        uint256 n = claims.length;
        uint256 buf = _alloc(n);
        for (uint256 i = 0; i < n; ++i) {
            _put(buf, i, valueClaimHash(claims[i]));
        }
        h = _hashWords(buf, n);
    }

    /// @dev The hash `Mirror.performStateTransition(t)` returns.
    function stateTransitionHash(StateTransition calldata t) internal pure returns (bytes32) {
        return stateTransitionHashOf(
            t.actorId,
            t.newStateHash,
            t.exited,
            t.inheritor,
            t.valueToReceive,
            valueClaimsHash(t.valueClaims),
            messagesHash(t.messages)
        );
    }

    /// @dev keccak256 over the concatenated hashes of `transitions`.
    function transitionsHash(StateTransition[] calldata transitions) internal pure returns (bytes32 h) {
        uint256 n = transitions.length;
        uint256 buf = _alloc(n);
        for (uint256 i = 0; i < n; ++i) {
            _put(buf, i, stateTransitionHash(transitions[i]));
        }
        h = _hashWords(buf, n);
    }

    /// @dev keccak256(transitionsHash ‖ head)
    function chainCommitmentHash(ChainCommitment calldata c) internal pure returns (bytes32) {
        return chainCommitmentHashOf(transitionsHash(c.transitions), c.head);
    }

    function chainCommitmentHashOf(bytes32 transitionsHash_, bytes32 head) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(transitionsHash_, head));
    }

    /// @dev keccak256 over the concatenated hashes of `chain` (zero or one element).
    function chainCommitmentsHash(ChainCommitment[] calldata chain) internal pure returns (bytes32 h) {
        uint256 n = chain.length;
        uint256 buf = _alloc(n);
        for (uint256 i = 0; i < n; ++i) {
            _put(buf, i, chainCommitmentHash(chain[i]));
        }
        h = _hashWords(buf, n);
    }

    /// @dev keccak256(id ‖ valid)
    function codeCommitmentHash(CodeCommitment calldata c) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(c.id, c.valid));
    }

    /// @dev keccak256 over the concatenated hashes of `codes`.
    function codeCommitmentsHash(CodeCommitment[] calldata codes) internal pure returns (bytes32 h) {
        uint256 n = codes.length;
        uint256 buf = _alloc(n);
        for (uint256 i = 0; i < n; ++i) {
            _put(buf, i, codeCommitmentHash(codes[i]));
        }
        h = _hashWords(buf, n);
    }

    /// @dev keccak256(blockHash ‖ blockNumber ‖ previousCommittedBatchHash
    ///                ‖ chainCommitmentsHash ‖ codeCommitmentsHash ‖ burned)
    function batchHash(BatchCommitment calldata b) internal pure returns (bytes32) {
        return batchHashOf(b, chainCommitmentsHash(b.chainCommitment));
    }

    /// @dev `batchHash` with the chain commitments' hash already computed.
    function batchHashOf(BatchCommitment calldata b, bytes32 chainHash) internal pure returns (bytes32) {
        return batchHashFromParts(
            b.blockHash,
            b.blockNumber,
            b.previousCommittedBatchHash,
            chainHash,
            codeCommitmentsHash(b.codeCommitments),
            b.burned
        );
    }

    /// @dev `batchHash` from a batch's header: its scalar fields and the hashes of its two
    ///      arrays (what an equivocation proof carries instead of the whole batch).
    function batchHashFromParts(
        bytes32 blockHash,
        uint64 blockNumber,
        bytes32 previousCommittedBatchHash,
        bytes32 chainCommitmentsHash_,
        bytes32 codeCommitmentsHash_,
        uint128 burned
    ) internal pure returns (bytes32) {
        return keccak256(
            abi.encodePacked(
                blockHash, blockNumber, previousCommittedBatchHash, chainCommitmentsHash_, codeCommitmentsHash_, burned
            )
        );
    }

    /// @dev Id of the `nonce`-th message sent to the program `mirror` from Ethereum:
    ///      keccak256(mirror ‖ uint256(nonce)). Nonce 0 is the init message.
    function ethMessageId(address mirror, uint256 nonce) internal pure returns (bytes32 id) {
        assembly ("memory-safe") {
            mstore(0x00, shl(96, mirror))
            mstore(0x14, nonce)
            id := keccak256(0x00, 0x34)
        }
    }

    // -- word buffers: n consecutive 32-byte hashes in freshly allocated memory --

    function _alloc(uint256 n) private pure returns (uint256 buf) {
        assembly ("memory-safe") {
            buf := mload(0x40)
            mstore(0x40, add(buf, shl(5, n)))
        }
    }

    function _put(uint256 buf, uint256 i, bytes32 word) private pure {
        assembly ("memory-safe") {
            mstore(add(buf, shl(5, i)), word)
        }
    }

    function _hashWords(uint256 buf, uint256 n) private pure returns (bytes32 h) {
        assembly ("memory-safe") {
            h := keccak256(buf, shl(5, n))
        }
    }
}

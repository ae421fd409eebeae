// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";
import {Gear} from "../src/Gear.sol";

/// @title HashHarness
/// @notice Test-only: exposes the Gear hashing library so tests can compare it with the
///         Python mirror (gexe.contracts.hashing), and the EIP-712 structs of injected
///         transactions and promises (gexe.contracts.injected), which no deployed contract
///         checks yet. Never deployed by the deploy helpers.
contract HashHarness {
    struct InjectedTransaction {
        address destination;
        bytes payload;
        uint128 value;
        bytes32 referenceBlock;
        bytes32 salt;
    }

    struct Promise {
        bytes32 txHash;
        bytes32 replyHash;
        bytes4 replyCode;
    }

    bytes32 internal constant INJECTED_TYPEHASH = keccak256(
        "InjectedTransaction(address destination,bytes payload,uint128 value,bytes32 referenceBlock,bytes32 salt)"
    );
    bytes32 internal constant PROMISE_TYPEHASH = keccak256("Promise(bytes32 txHash,bytes32 replyHash,bytes4 replyCode)");

    function messageHash(Gear.Message calldata m) external pure returns (bytes32) {
        return Gear.messageHash(m);
    }

    function messagesHash(Gear.Message[] calldata ms) external pure returns (bytes32) {
        return Gear.messagesHash(ms);
    }

    function valueClaimHash(Gear.ValueClaim calldata c) external pure returns (bytes32) {
        return Gear.valueClaimHash(c);
    }

    function stateTransitionHash(Gear.StateTransition calldata t) external pure returns (bytes32) {
        return Gear.stateTransitionHash(t);
    }

    function chainCommitmentHash(Gear.ChainCommitment calldata c) external pure returns (bytes32) {
        return Gear.chainCommitmentHash(c);
    }

    function codeCommitmentHash(Gear.CodeCommitment calldata c) external pure returns (bytes32) {
        return Gear.codeCommitmentHash(c);
    }

    function codeCommitmentsHash(Gear.CodeCommitment[] calldata cs) external pure returns (bytes32) {
        return Gear.codeCommitmentsHash(cs);
    }

    function batchHash(Gear.BatchCommitment calldata b) external pure returns (bytes32) {
        return Gear.batchHash(b);
    }

    function batchHashFromParts(
        bytes32 blockHash,
        uint64 blockNumber,
        bytes32 previousCommittedBatchHash,
        bytes32 chainHash,
        bytes32 codesHash,
        uint128 burned
    ) external pure returns (bytes32) {
        return Gear.batchHashFromParts(blockHash, blockNumber, previousCommittedBatchHash, chainHash, codesHash, burned);
    }

    function chainCommitmentsHash(Gear.ChainCommitment[] calldata cs) external pure returns (bytes32) {
        return Gear.chainCommitmentsHash(cs);
    }

    function ethMessageId(address mirror, uint256 nonce) external pure returns (bytes32) {
        return Gear.ethMessageId(mirror, nonce);
    }

    function injectedTransactionStructHash(InjectedTransaction calldata t) public pure returns (bytes32) {
        return keccak256(
            abi.encode(INJECTED_TYPEHASH, t.destination, keccak256(t.payload), t.value, t.referenceBlock, t.salt)
        );
    }

    /// @notice The transaction's hash: its EIP-712 digest under `domainSeparator` (the Router's).
    function injectedTransactionHash(bytes32 domainSeparator, InjectedTransaction calldata t)
        external
        pure
        returns (bytes32)
    {
        return MessageHashUtils.toTypedDataHash(domainSeparator, injectedTransactionStructHash(t));
    }

    function promiseStructHash(Promise calldata p) public pure returns (bytes32) {
        return keccak256(abi.encode(PROMISE_TYPEHASH, p.txHash, p.replyHash, p.replyCode));
    }

    function promiseDigest(bytes32 domainSeparator, Promise calldata p) external pure returns (bytes32) {
        return MessageHashUtils.toTypedDataHash(domainSeparator, promiseStructHash(p));
    }
}

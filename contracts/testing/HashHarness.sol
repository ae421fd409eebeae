// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Gear} from "../src/Gear.sol";

/// @title HashHarness
/// @notice Test-only: exposes the Gear hashing library so tests can compare it with the
///         Python mirror (gexe.contracts.hashing). Never deployed by the deploy helpers.
contract HashHarness {
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
}

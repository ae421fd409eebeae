"""EIP-712 digests and signatures of batch commitments, as the Router verifies them.

Domain: name "gexe Router", version "1", the chain id and the Router address. Message:
`BatchCommitment(bytes32 batchHash)` where batchHash = `hashing.batch_hash(batch)`.
Signatures are 65 bytes r ‖ s ‖ v (v = 27/28, low s). The Router wants them in
validator-set order (`signatures_in_set_order`), each signer at most once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from eth_account import Account
from eth_keys import keys
from eth_utils import keccak, to_canonical_address, to_checksum_address

DOMAIN_NAME = "gexe Router"
DOMAIN_VERSION = "1"
EIP712_DOMAIN_TYPEHASH = keccak(
    b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
BATCH_TYPEHASH = keccak(b"BatchCommitment(bytes32 batchHash)")
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


class BadSignature(ValueError):
    """A signature that is malformed or does not recover."""


def recover_address(digest: bytes, signature: bytes) -> bytes:
    """The 20-byte address that signed the 32-byte `digest` — the one recovery every
    signed object here goes through. Strict, as OpenZeppelin's ECDSA on chain: 65 bytes
    r ‖ s ‖ v, v 27/28, 0 < r < n, 0 < s ≤ n/2 (EIP-2)."""
    if len(signature) != 65 or signature[64] not in (27, 28):
        raise BadSignature("signature must be 65 bytes r ‖ s ‖ v with v in {27, 28}")
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    if not 0 < r < SECP256K1_N:
        raise BadSignature("signature r is out of range")
    if not 0 < s <= SECP256K1_N // 2:
        raise BadSignature("signature s is not in the lower half of the curve order")
    try:
        sig = keys.Signature(signature_bytes=signature[:64] + bytes([signature[64] - 27]))
        return sig.recover_public_key_from_msg_hash(digest).to_canonical_address()
    except Exception as e:  # eth_keys raises several validation types
        raise BadSignature(f"signature does not recover: {e}") from None


def domain_separator(chain_id: int, router: str) -> bytes:
    return keccak(
        EIP712_DOMAIN_TYPEHASH
        + keccak(DOMAIN_NAME.encode())
        + keccak(DOMAIN_VERSION.encode())
        + chain_id.to_bytes(32, "big")
        + bytes(12)
        + to_canonical_address(router)
    )


def batch_digest(batch_hash: bytes, chain_id: int, router: str) -> bytes:
    """The 32-byte digest validators sign for the batch with hash `batch_hash`."""
    if len(batch_hash) != 32:
        raise ValueError("batch_hash must be 32 bytes")
    struct_hash = keccak(BATCH_TYPEHASH + batch_hash)
    return keccak(b"\x19\x01" + domain_separator(chain_id, router) + struct_hash)


def typed_data(batch_hash: bytes, chain_id: int, router: str) -> dict[str, Any]:
    """The same digest as an EIP-712 typed-data document (for wallets, eth_signTypedData)."""
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "BatchCommitment": [{"name": "batchHash", "type": "bytes32"}],
        },
        "primaryType": "BatchCommitment",
        "domain": {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": chain_id,
            "verifyingContract": to_checksum_address(router),
        },
        "message": {"batchHash": bytes(batch_hash)},
    }


def sign_batch(private_key: bytes | str, batch_hash: bytes, chain_id: int, router: str) -> bytes:
    """A validator's 65-byte signature over the batch digest."""
    signed = Account.unsafe_sign_hash(batch_digest(batch_hash, chain_id, router), private_key)
    return bytes(signed.signature)


def recover_signer(signature: bytes, batch_hash: bytes, chain_id: int, router: str) -> str:
    """The address that produced `signature` (65 bytes, v = 27/28) over the batch digest."""
    return to_checksum_address(
        recover_address(batch_digest(batch_hash, chain_id, router), signature)
    )


def signatures_in_set_order(
    signatures: Mapping[str, bytes], validator_set: Sequence[str]
) -> list[bytes]:
    """Order `{signer: signature}` as `commitBatch` wants: by index in the era's validator
    set. Signers outside the set are dropped (they would make the call revert)."""
    by_signer = {to_checksum_address(k): v for k, v in signatures.items()}
    return [by_signer[v] for v in map(to_checksum_address, validator_set) if v in by_signer]

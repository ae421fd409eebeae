"""Identifiers: code ids, message ids and actor ids, derived as Gear derives them.

All hashes are unkeyed BLAKE2b with a 32-byte digest over the plain concatenation of
the parts (runtime/ABI.md, section 4). Actor ids are 32 bytes; an Ethereum address is
an actor id whose first 12 bytes are zero (Vara.eth's convention for Mirror addresses
and Ethereum senders).
"""

from __future__ import annotations

import hashlib

_blake2b = hashlib.blake2b

ZERO_ID = bytes(32)


def blake2b256(*parts: bytes) -> bytes:
    h = hashlib.blake2b(digest_size=32)
    for p in parts:
        h.update(p)
    return h.digest()


def code_id(code: bytes) -> bytes:
    return blake2b256(code)


def outgoing_message_id(incoming: bytes, nonce: int) -> bytes:
    """Id of the `nonce`-th message sent while handling message `incoming`."""
    return _blake2b(b"outgoing" + incoming + nonce.to_bytes(4, "little"), digest_size=32).digest()


def reply_message_id(replied_to: bytes) -> bytes:
    """Id of the (single) reply to message `replied_to`, manual, auto or error alike."""
    return _blake2b(b"reply" + replied_to, digest_size=32).digest()


def program_id_from_user(code_hash: bytes, salt: bytes) -> bytes:
    """Sandbox program id: Gear's formula, truncated to an Ethereum-style address.

    On the network the id is the Mirror contract's address; in the local sandbox there
    is no chain, so the Gear derivation is used and its last 20 bytes kept, so that ids
    look the same as on the network (12 zero bytes, then an address).
    """
    return actor_from_address(blake2b256(b"program_from_user", code_hash, salt)[12:])


def actor_from_address(address: bytes) -> bytes:
    if len(address) != 20:
        raise ValueError(f"an Ethereum address is 20 bytes, got {len(address)}")
    return bytes(12) + address


def is_address(actor: bytes) -> bool:
    return len(actor) == 32 and actor[:12] == bytes(12)


def address_of(actor: bytes) -> bytes:
    return actor[12:]

"""The storage protocol the runtime needs, and an in-memory implementation.

The runtime keeps every piece of program state (memory pages, queues, waitlists,
allocations, the state record itself) as content-addressed blobs: the key of a blob is
its BLAKE2b-256 hash. Nodes provide an LMDB-backed implementation (`gexe.node`); tests
and the sandbox use `MemoryStorage`. Writes of identical content are idempotent, so
an unchanged page costs nothing to "rewrite" and a failed dispatch that wrote nothing
leaves nothing behind.
"""

from __future__ import annotations

import threading
from typing import Protocol, runtime_checkable

from .ids import blake2b256


@runtime_checkable
class Storage(Protocol):
    def read(self, key: bytes) -> bytes | None:
        """The blob whose hash is `key`, or None."""
        ...

    def write(self, data: bytes) -> bytes:
        """Store `data`; return its hash."""
        ...


class MissingBlob(KeyError):
    def __init__(self, key: bytes, what: str) -> None:
        super().__init__(f"{what} {key.hex()} is missing from storage")


def read_required(storage: Storage, key: bytes, what: str) -> bytes:
    data = storage.read(key)
    if data is None:
        raise MissingBlob(key, what)
    return data


class MemoryStorage:
    """A thread-safe dict of blobs; for tests and the local sandbox."""

    def __init__(self) -> None:
        self._blobs: dict[bytes, bytes] = {}
        self._lock = threading.Lock()

    def read(self, key: bytes) -> bytes | None:
        return self._blobs.get(key)

    def write(self, data: bytes) -> bytes:
        key = blake2b256(data)
        if key not in self._blobs:
            with self._lock:
                self._blobs[key] = bytes(data)
        return key

    def __len__(self) -> int:
        return len(self._blobs)

"""Canonical binary encoding used for state hashing: a tiny writer and reader.

Fixed-width little-endian integers, u32-length-prefixed byte strings, nothing else.
Every encoded structure in the runtime is built from these so its hash is a pure
function of its fields.
"""

from __future__ import annotations


class Writer:
    __slots__ = ("_parts",)

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def u8(self, v: int) -> Writer:
        self._parts.append(v.to_bytes(1, "little"))
        return self

    def u32(self, v: int) -> Writer:
        self._parts.append(v.to_bytes(4, "little"))
        return self

    def u64(self, v: int) -> Writer:
        self._parts.append(v.to_bytes(8, "little"))
        return self

    def u128(self, v: int) -> Writer:
        self._parts.append(v.to_bytes(16, "little"))
        return self

    def fixed(self, b: bytes, n: int) -> Writer:
        if len(b) != n:
            raise ValueError(f"expected {n} bytes, got {len(b)}")
        self._parts.append(b)
        return self

    def blob(self, b: bytes) -> Writer:
        self._parts.append(len(b).to_bytes(4, "little"))
        self._parts.append(b)
        return self

    def bytes(self) -> bytes:
        return b"".join(self._parts)


class DecodeError(ValueError):
    pass


class Reader:
    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def _take(self, n: int) -> bytes:
        end = self._pos + n
        if end > len(self._data):
            raise DecodeError("truncated encoding")
        out = self._data[self._pos : end]
        self._pos = end
        return out

    def u8(self) -> int:
        return self._take(1)[0]

    def u32(self) -> int:
        return int.from_bytes(self._take(4), "little")

    def u64(self) -> int:
        return int.from_bytes(self._take(8), "little")

    def u128(self) -> int:
        return int.from_bytes(self._take(16), "little")

    def fixed(self, n: int) -> bytes:
        return self._take(n)

    def blob(self) -> bytes:
        return self._take(self.u32())

    def done(self) -> bool:
        return self._pos == len(self._data)

    def finish(self) -> None:
        if not self.done():
            raise DecodeError("trailing bytes after encoding")

"""Where a fuzz case's choices come from: one interface, two engines.

A target builds each case from a `Source` (`int`, `bool`, `pick`, `bytes`, `u32`), so the
same generator serves both engines:

- `HypothesisSource` draws from Hypothesis (`st.data()`): boundary-biased values and
  shrinking to a minimal failing case; used by the CI tests and by the soak driver when
  atheris is absent;
- `BytesSource` reads the choices from a byte string: what atheris (libFuzzer) feeds in,
  so coverage guidance mutates the choices themselves. Reading past the end yields
  zeros, never an error, so every input is a valid case.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

# u32 values where pointer and length arithmetic goes wrong (as i32: -1, INT_MIN, ...)
EDGE_U32 = (
    0,
    1,
    2,
    3,
    4,
    7,
    8,
    31,
    32,
    33,
    0x7F,
    0x80,
    0xFF,
    0x100,
    0x3FFF,
    0x4000,
    0xFFFF,
    0x10000,
    0x1FFFF,
    0x20000,
    0x7FFFFFFF,
    0x80000000,
    0xFFFFFFF0,
    0xFFFFFFFC,
    0xFFFFFFFE,
    0xFFFFFFFF,
)


class Source(Protocol):
    def int(self, lo: int, hi: int) -> int:
        """An integer in [lo, hi]."""
        ...

    def bool(self) -> bool: ...

    def pick(self, seq: Sequence[T]) -> T: ...

    def bytes(self, max_len: int) -> bytes:
        """Up to `max_len` arbitrary bytes."""
        ...

    def rest(self) -> bytes:
        """Whatever raw material is left (libFuzzer: the rest of its input)."""
        ...


def u32(src: Source) -> int:
    """A u32 that is an edge value half of the time."""
    if src.bool():
        return src.pick(EDGE_U32)
    return src.int(0, 0xFFFFFFFF)


class BytesSource:
    """Choices read from a byte string (libFuzzer input); zeros once it is used up."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _take(self, n: int) -> bytes:
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out.ljust(n, b"\0")

    def int(self, lo: int, hi: int) -> int:
        span = hi - lo
        if span <= 0:
            return lo
        n = (span.bit_length() + 7) // 8
        return lo + int.from_bytes(self._take(n), "little") % (span + 1)

    def bool(self) -> bool:
        return bool(self._take(1)[0] & 1)

    def pick(self, seq: Sequence[T]) -> T:
        return seq[self.int(0, len(seq) - 1)]

    def bytes(self, max_len: int) -> bytes:
        n = self.int(0, max_len)
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def rest(self) -> bytes:
        out = self.data[self.pos :]
        self.pos = len(self.data)
        return out


class Recorder:
    """Writes the byte string that makes `BytesSource` replay given choices: how the
    seed corpus for atheris is made from ordinary values."""

    def __init__(self) -> None:
        self.out = bytearray()

    def int(self, lo: int, hi: int, value: int) -> Recorder:
        span = hi - lo
        if span > 0:
            self.out += (value - lo).to_bytes((span.bit_length() + 7) // 8, "little")
        return self

    def bool(self, value: bool) -> Recorder:
        self.out.append(1 if value else 0)
        return self

    def pick(self, seq: Sequence[Any], value: Any) -> Recorder:
        return self.int(0, len(seq) - 1, list(seq).index(value))

    def bytes(self, max_len: int, value: bytes) -> Recorder:
        self.int(0, max_len, len(value))
        self.out += value
        return self

    def done(self) -> bytes:
        return bytes(self.out)


class HypothesisSource:
    """Choices drawn from Hypothesis's `st.data()`."""

    def __init__(self, data: Any) -> None:
        from hypothesis import strategies as st

        self._st = st
        self._data = data

    def int(self, lo: int, hi: int) -> int:
        return self._data.draw(self._st.integers(lo, hi))

    def bool(self) -> bool:
        return self._data.draw(self._st.booleans())

    def pick(self, seq: Sequence[T]) -> T:
        return self._data.draw(self._st.sampled_from(seq))

    def bytes(self, max_len: int) -> bytes:
        return self._data.draw(self._st.binary(max_size=max_len))

    def rest(self) -> bytes:
        return self.bytes(4096)

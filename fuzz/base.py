"""What every fuzz target is: a case generator and a property that must hold for it."""

from __future__ import annotations

from typing import Any

from .source import BytesSource, Source


class Finding(AssertionError):
    """A property of the target does not hold for a case: a bug to fix and pin."""


class Target:
    """One fuzz target. `generate` builds a case from a `Source`; `check` raises `Finding`
    when the property is violated (any other exception escaping is a finding too).
    `open`/`close` hold resources (a store, a server) shared by every case of a run."""

    name = ""
    about = ""
    # libFuzzer must leave these signals to wasmtime (its traps are SIGSEGV/SIGILL/...)
    uses_wasm = False

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> Target:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def generate(self, src: Source) -> Any:
        raise NotImplementedError

    def check(self, case: Any) -> None:
        raise NotImplementedError

    def seeds(self) -> list[bytes]:
        """Inputs for `BytesSource` that replay interesting starting cases (atheris corpus)."""
        return []

    def show(self, case: Any) -> str:
        """A case as text for a crash report: enough to write the regression test."""
        text = repr(case)
        return text if len(text) < 4000 else text[:4000] + f"... ({len(text)} chars)"

    def run_bytes(self, data: bytes) -> None:
        self.check(self.generate(BytesSource(data)))


def must(cond: bool, what: str) -> None:
    if not cond:
        raise Finding(what)

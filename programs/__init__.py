"""Example Gear programs shipped as package data: `path("ping")` gives the built wasm."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def path(name: str) -> Path:
    """Path of the committed `programs/<name>/<name>.wasm`; raises FileNotFoundError."""
    p = _HERE / name / f"{name}.wasm"
    if not p.is_file():
        raise FileNotFoundError(f"no built program {name!r} at {p}; run `make programs`")
    return p


def names() -> list[str]:
    """Names of every example program with a built wasm."""
    return sorted(d.name for d in _HERE.iterdir() if (d / f"{d.name}.wasm").is_file())

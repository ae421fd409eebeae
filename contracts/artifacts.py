"""Compiled contract artifacts (ABI + bytecode) shipped as package data.

`contracts/build.js` writes `contracts/artifacts/<Name>.json`; this module loads them through
importlib.resources, so an installed wheel needs neither node nor solc. Also decodes revert
data of any of our contracts into the custom error's name and arguments.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import keccak, to_checksum_address

# Contracts a gexe network deploys.
ROUTER = "Router"
MIRROR = "Mirror"
STAKING = "Staking"
WRAPPED_VARA = "WrappedVara"


@dataclass(frozen=True)
class Artifact:
    """One contract: its ABI, creation code and runtime code."""

    name: str
    source: str
    abi: tuple[dict[str, Any], ...]
    bytecode: bytes
    deployed_bytecode: bytes

    def abi_list(self) -> list[dict[str, Any]]:
        return list(self.abi)


def _dir() -> Any:
    return resources.files(__package__ or "gexe.contracts") / "artifacts"


@cache
def artifact_names() -> tuple[str, ...]:
    return tuple(sorted(p.name[:-5] for p in _dir().iterdir() if p.name.endswith(".json")))


@cache
def load_artifact(name: str) -> Artifact:
    """The artifact of contract `name` (e.g. "Router")."""
    path = _dir() / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"no artifact for contract {name!r}: run `make contracts` (known: "
            f"{', '.join(artifact_names())})"
        )
    raw = json.loads(path.read_text(encoding="utf-8"))
    return Artifact(
        name=raw["contractName"],
        source=raw["sourceName"],
        abi=tuple(raw["abi"]),
        bytecode=bytes.fromhex(raw["bytecode"][2:]),
        deployed_bytecode=bytes.fromhex(raw["deployedBytecode"][2:]),
    )


def _signature(entry: dict[str, Any]) -> str:
    return f"{entry['name']}({','.join(_abi_type(i) for i in entry['inputs'])})"


def _abi_type(param: dict[str, Any]) -> str:
    t = param["type"]
    if t.startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in param["components"]) + ")" + t[5:]
    return t


@dataclass(frozen=True)
class DecodedError:
    """A custom error (or Error(string) / Panic(uint256)) decoded from revert data."""

    name: str
    args: tuple[Any, ...]

    def __str__(self) -> str:
        return f"{self.name}({', '.join(map(repr, self.args))})"


@cache
def _error_table() -> dict[bytes, tuple[str, tuple[str, ...]]]:
    table: dict[bytes, tuple[str, tuple[str, ...]]] = {
        bytes.fromhex("08c379a0"): ("Error", ("string",)),
        bytes.fromhex("4e487b71"): ("Panic", ("uint256",)),
    }
    for name in artifact_names():
        for entry in load_artifact(name).abi:
            if entry.get("type") == "error":
                selector = keccak(text=_signature(entry))[:4]
                table[selector] = (entry["name"], tuple(_abi_type(i) for i in entry["inputs"]))
    return table


def decode_error(data: bytes | str) -> DecodedError | None:
    """Decode revert data from any gexe contract; None if empty or unknown."""
    if isinstance(data, str):
        data = bytes.fromhex(data.removeprefix("0x"))
    if len(data) < 4:
        return None
    known = _error_table().get(data[:4])
    if known is None:
        return None
    name, types = known
    try:
        values = abi_decode(list(types), data[4:])
    except Exception:  # noqa: BLE001 - malformed arguments: keep the name
        return DecodedError(name, ())
    args = tuple(
        to_checksum_address(v) if t == "address" else v for t, v in zip(types, values, strict=True)
    )
    return DecodedError(name, args)

"""Node configuration: one TOML file → frozen dataclasses, with environment overrides.

Sections and keys are the fields of the dataclasses below (`example-config.toml` shows
them all with their defaults). Every value may be overridden by an environment
variable `GEXE_<SECTION>_<KEY>` (e.g. `GEXE_RPC_PORT=9000`, `GEXE_P2P_BOOTNODES=a,b`),
parsed to the field's type. Relative paths in the file are relative to the file's
directory; in the environment, to the working directory.

Invariants:
- Unknown sections and keys — in the file or in `GEXE_<SECTION>_*` variables — are
  errors naming the key and where it came from (a typo must not silently fall back to a
  default).
- Services bind to loopback by default; binding RPC or metrics elsewhere requires
  `allow_external = true` in that section.
- Nothing secret lives in the config: the validator's password is read from a file or
  an environment variable that the config only names.
- Errors are `ConfigError` with one line: what, where, what to do.

When modifying this part: a new key is a dataclass field with a default, a line in
`example-config.toml`, and (if it has limits) a rule in `_problems`.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .logging import FORMATS, LEVELS

DEFAULT_DATA_DIR = Path("~/.gexe")
ENV_PREFIX = "GEXE_"


class ConfigError(Exception):
    """A configuration problem the user can fix; the message is one line."""


@dataclass(frozen=True, slots=True)
class NodeConfig:
    data_dir: Path = DEFAULT_DATA_DIR
    log_level: str = "info"
    log_format: str = "text"  # text (key=value) | json
    store_map_size: int = 64 << 30  # bytes of address space for LMDB (sparse file)
    keep_blocks: int = 256  # blocks whose state stays addressable for reorgs


@dataclass(frozen=True, slots=True)
class EthereumConfig:
    rpc_url: str = "http://127.0.0.1:8545"
    router_address: str | None = None
    confirmation_depth: int = 0  # blocks behind the head before events apply
    poll_interval: float = 2.0  # seconds between head polls
    get_logs_max_range: int = 1000  # blocks per eth_getLogs call (shrunk on provider errors)
    request_timeout: float = 10.0  # seconds


@dataclass(frozen=True, slots=True)
class P2PConfig:
    listen: str = "/ip4/127.0.0.1/tcp/0"
    bootnodes: tuple[str, ...] = ()
    key_file: Path | None = None  # libp2p identity; default <data_dir>/p2p.key


@dataclass(frozen=True, slots=True)
class RpcConfig:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 9944
    allow_external: bool = False
    max_request_bytes: int = 1 << 20
    rate_limit: float = 100.0  # requests per second per client; 0 = unlimited
    max_connections: int = 512  # open HTTP/WebSocket connections at once (503 beyond)


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 9635
    allow_external: bool = False


@dataclass(frozen=True, slots=True)
class ValidatorConfig:
    keystore: Path | None = None  # default <data_dir>/keystore
    address: str | None = None  # which key of the keystore; default: the only one
    password_file: Path | None = None
    password_env: str | None = None
    report_equivocation: bool = True  # submit equivocation proofs seen in gossip


@dataclass(frozen=True, slots=True)
class SequencerConfig:
    enabled: bool = False
    max_batch_latency: float = 2.0  # seconds from the first change to a proposal; 0 = at once
    max_batch_transitions: int = 1000
    max_injected_per_block: int = 512  # injected txs ordered after one Ethereum block
    gas_cap: int = 16_777_216  # per-transaction gas cap (EIP-7825); batches are sized under it
    replace_after_blocks: int = 3  # blocks without inclusion before a fee-bumped replacement
    fee_bump_percent: float = 12.5  # fee increase of a replacement (nodes require >= 10)
    max_fee_gwei: float = 500.0  # ceiling of maxFeePerGas
    request_interval: float = 1.0  # seconds between re-publications of a pending request
    proposal_timeout_blocks: int = 5  # blocks to wait for the threshold before re-proposing


@dataclass(frozen=True, slots=True)
class NativeConfig:
    """The native path: injected transactions, sequencer blocks, pre-confirmations."""

    sequencer: str | None = None  # address whose sequencer blocks we follow; unset = off
    block_interval: float = 0.01  # seconds a sequencer waits to gather transactions
    max_block_txs: int = 256  # transactions per sequencer block
    max_payload_bytes: int = 65_536  # per injected transaction
    pool_size: int = 20_000  # transactions a node holds while they wait to be ordered
    reforward_interval: float = 2.0  # seconds before a waiting transaction is re-forwarded


@dataclass(frozen=True, slots=True)
class Config:
    node: NodeConfig = field(default_factory=NodeConfig)
    ethereum: EthereumConfig = field(default_factory=EthereumConfig)
    p2p: P2PConfig = field(default_factory=P2PConfig)
    rpc: RpcConfig = field(default_factory=RpcConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    validator: ValidatorConfig = field(default_factory=ValidatorConfig)
    sequencer: SequencerConfig = field(default_factory=SequencerConfig)
    native: NativeConfig = field(default_factory=NativeConfig)
    source: Path | None = None  # the file it was read from, if any


SECTIONS: dict[str, type] = {
    f.name: typing.get_type_hints(Config)[f.name]
    for f in dataclasses.fields(Config)
    if f.name != "source"
}


# ------------------------------------------------------------------ typed parsing


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _optional(tp: Any) -> Any | None:
    """T for `T | None`, else None."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return None


def _describe(tp: Any) -> str:
    inner = _optional(tp)
    if inner is not None:
        return _describe(inner)
    return {
        bool: "true or false",
        int: "an integer",
        float: "a number",
        str: "a string",
        Path: "a path (string)",
    }.get(tp, "a list of strings")


def _from_toml(tp: Any, value: Any, base: Path | None) -> Any:
    """Convert a TOML value; raise TypeError when it has the wrong type."""
    inner = _optional(tp)
    if inner is not None:
        return _from_toml(inner, value, base)
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif tp is Path:
        if isinstance(value, str):
            p = Path(value).expanduser()
            return p if p.is_absolute() or base is None else base / p
    elif typing.get_origin(tp) is tuple:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
    raise TypeError


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _from_env(tp: Any, text: str) -> Any:
    """Convert an environment string; raise ValueError when it does not parse."""
    inner = _optional(tp)
    if inner is not None:
        return None if text == "" else _from_env(inner, text)
    t = text.strip()
    if tp is bool:
        if t.lower() in _TRUE:
            return True
        if t.lower() in _FALSE:
            return False
        raise ValueError
    if tp is int:
        return int(t.replace("_", ""), 0)
    if tp is float:
        return float(t)
    if tp is str:
        return text
    if tp is Path:
        return Path(t).expanduser()
    if typing.get_origin(tp) is tuple:
        return tuple(p.strip() for p in t.split(",") if p.strip())
    raise ValueError


def _unknown(kind: str, name: str, known: list[str], where: str) -> ConfigError:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return ConfigError(f"{where}: unknown {kind} '{name}'; {hint}known: {', '.join(known)}")


def _section_values(name: str, table: Any, file: Path | None) -> dict[str, Any]:
    where = str(file) if file else "config"
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: '{name}' must be a table ([{name}])")
    types_ = _field_types(SECTIONS[name])
    out = {}
    for key, value in table.items():
        if key not in types_:
            raise _unknown(f"key in [{name}]", key, list(types_), where)
        try:
            out[key] = _from_toml(types_[key], value, file.parent if file else None)
        except TypeError:
            raise ConfigError(
                f"{where}: [{name}] {key} must be {_describe(types_[key])}, got "
                f"{type(value).__name__} {value!r:.40}"
            ) from None
    return out


def _env_values(environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for var in sorted(environ):
        if not var.startswith(ENV_PREFIX):
            continue
        section, _, key = var[len(ENV_PREFIX) :].lower().partition("_")
        if section not in SECTIONS:
            continue  # GEXE_DEBUG and the like are not config overrides
        types_ = _field_types(SECTIONS[section])
        if key not in types_:
            close = difflib.get_close_matches(key, list(types_), n=1)
            hint = (
                f"did you mean {ENV_PREFIX}{section.upper()}_{close[0].upper()}? " if close else ""
            )
            raise ConfigError(
                f"environment variable {var}: not a config override (no key "
                f"'{key}' in [{section}]); {hint}rename or unset it (a variable "
                "holding a password must not use a GEXE_<SECTION>_ name)"
            )
        try:
            out.setdefault(section, {})[key] = _from_env(types_[key], environ[var])
        except ValueError:
            raise ConfigError(
                f"environment variable {var} must be {_describe(types_[key])}; fix or unset it"
            ) from None
    return out


# ------------------------------------------------------------------ validation


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_MULTIADDR = re.compile(r"/(ip4|ip6|dns|dns4|dns6)/[^/]+/tcp/\d{1,5}(/.*)?")


def _problems(c: Config) -> list[str]:
    p: list[str] = []
    n, e, net, rpc, m, v, s = (
        c.node,
        c.ethereum,
        c.p2p,
        c.rpc,
        c.metrics,
        c.validator,
        c.sequencer,
    )
    if n.log_level not in LEVELS:
        p.append(f"[node] log_level must be one of {', '.join(LEVELS)}, got {n.log_level!r}")
    if n.log_format not in FORMATS:
        p.append(f"[node] log_format must be one of {', '.join(FORMATS)}, got {n.log_format!r}")
    if n.store_map_size < 1 << 20:
        p.append("[node] store_map_size must be at least 1 MiB (1048576)")
    if c.rpc.max_connections < 1:
        p.append("[rpc] max_connections must be at least 1")
    if n.keep_blocks < 1:
        p.append("[node] keep_blocks must be at least 1")
    nat = c.native
    if nat.sequencer is not None:
        if not _ADDRESS.fullmatch(nat.sequencer):
            p.append(f"[native] sequencer must be 0x and 40 hex digits, got {nat.sequencer!r}")
        if n.keep_blocks <= 64:
            p.append("[native] needs [node] keep_blocks above 64 (transactions live 32 blocks)")
    if not 0 < nat.block_interval <= 10:
        p.append("[native] block_interval must be in (0, 10] seconds")
    if not 1 <= nat.max_block_txs <= 1024:
        p.append("[native] max_block_txs must be 1 to 1024")
    if not 0 <= nat.max_payload_bytes <= 1 << 19:
        p.append("[native] max_payload_bytes must be 0 to 524288")
    if nat.pool_size < 1:
        p.append("[native] pool_size must be at least 1")
    if nat.reforward_interval <= 0:
        p.append("[native] reforward_interval must be positive (seconds)")
    if not re.match(r"(https?|wss?)://", e.rpc_url):
        p.append(
            f"[ethereum] rpc_url must start with http://, https://, ws:// or wss://, got "
            f"{e.rpc_url!r}"
        )
    if e.router_address is not None and not _ADDRESS.fullmatch(e.router_address):
        p.append(
            f"[ethereum] router_address must be 0x and 40 hex digits, got {e.router_address!r}"
        )
    if e.confirmation_depth < 0:
        p.append("[ethereum] confirmation_depth must be 0 or more")
    if e.poll_interval <= 0:
        p.append("[ethereum] poll_interval must be positive (seconds)")
    if e.get_logs_max_range < 1:
        p.append("[ethereum] get_logs_max_range must be at least 1")
    if e.request_timeout <= 0:
        p.append("[ethereum] request_timeout must be positive (seconds)")
    if not _MULTIADDR.fullmatch(net.listen):
        p.append(
            f"[p2p] listen must be a TCP multiaddr like /ip4/127.0.0.1/tcp/0, got {net.listen!r}"
        )
    for b in net.bootnodes:
        if not _MULTIADDR.fullmatch(b) or "/p2p/" not in b:
            p.append(f"[p2p] bootnode {b!r} must be a multiaddr ending in /p2p/<peer id>")
    for name, sec in (("rpc", rpc), ("metrics", m)):
        if not 0 <= sec.port <= 65535:
            p.append(f"[{name}] port must be 0..65535, got {sec.port}")
        if not _is_loopback(sec.host) and not sec.allow_external:
            p.append(
                f"[{name}] host {sec.host!r} is reachable from other machines; set "
                f"allow_external = true in [{name}] if that is intended"
            )
    if rpc.max_request_bytes < 1024:
        p.append("[rpc] max_request_bytes must be at least 1024")
    if rpc.rate_limit < 0:
        p.append("[rpc] rate_limit must be 0 (unlimited) or more")
    if v.password_file is not None and v.password_env is not None:
        p.append("[validator] give password_file or password_env, not both")
    if v.address is not None and not _ADDRESS.fullmatch(v.address):
        p.append(f"[validator] address must be 0x and 40 hex digits, got {v.address!r}")
    if s.max_batch_latency < 0:
        p.append("[sequencer] max_batch_latency must be 0 or more (seconds)")
    if s.max_batch_transitions < 1 or s.max_injected_per_block < 0:
        p.append(
            "[sequencer] max_batch_transitions must be at least 1 and "
            "max_injected_per_block 0 or more"
        )
    if not 100_000 <= s.gas_cap <= 1 << 30:
        p.append("[sequencer] gas_cap must be between 100000 and 2**30 (gas)")
    if s.replace_after_blocks < 1:
        p.append("[sequencer] replace_after_blocks must be at least 1")
    if s.fee_bump_percent < 10:
        p.append(
            "[sequencer] fee_bump_percent must be at least 10 (nodes refuse smaller "
            "replacement bumps)"
        )
    if s.max_fee_gwei <= 0:
        p.append("[sequencer] max_fee_gwei must be positive")
    if s.request_interval <= 0:
        p.append("[sequencer] request_interval must be positive (seconds)")
    if s.proposal_timeout_blocks < 1:
        p.append("[sequencer] proposal_timeout_blocks must be at least 1")
    return p


# ------------------------------------------------------------------ loading


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found; check the path") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, expected a TOML config file") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the config file: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: invalid TOML: not UTF-8") from None


def _build(
    path: str | os.PathLike[str] | None, environ: Mapping[str, str] | None
) -> tuple[Config, list[str], str]:
    """The config, its problems, and how to name where it came from."""
    file = Path(path).expanduser().absolute() if path is not None else None
    doc = _read_file(file) if file is not None else {}
    values: dict[str, dict[str, Any]] = {}
    for name, table in doc.items():
        if name not in SECTIONS:
            raise _unknown("section", name, list(SECTIONS), str(file))
        values[name] = _section_values(name, table, file)
    env = _env_values(os.environ if environ is None else environ)
    for name, overrides in env.items():
        values.setdefault(name, {}).update(overrides)
    sections = {name: cls(**values.get(name, {})) for name, cls in SECTIONS.items()}
    config = _resolve(Config(**sections, source=file))
    where = str(file) if file else "default config"
    if env:
        where += " with GEXE_* environment overrides"
    return config, _problems(config), where


def _resolve(c: Config) -> Config:
    """Fill defaults that depend on other values (paths under the data directory)."""
    data = c.node.data_dir.expanduser()
    return dataclasses.replace(
        c,
        node=dataclasses.replace(c.node, data_dir=data),
        p2p=dataclasses.replace(c.p2p, key_file=c.p2p.key_file or data / "p2p.key"),
        validator=dataclasses.replace(
            c.validator, keystore=c.validator.keystore or data / "keystore"
        ),
    )


def load_config(
    path: str | os.PathLike[str] | None = None, *, environ: Mapping[str, str] | None = None
) -> Config:
    """Read, override from the environment, resolve and validate; raise `ConfigError`."""
    config, problems, where = _build(path, environ)
    if problems:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise ConfigError(f"{where}: {problems[0]}{more}")
    return config


def check_config(
    path: str | os.PathLike[str] | None = None, *, environ: Mapping[str, str] | None = None
) -> list[str]:
    """Every problem of a config (file plus environment) as one line each; [] when valid."""
    try:
        _, problems, where = _build(path, environ)
    except ConfigError as e:
        return [str(e)]
    return [f"{where}: {p}" for p in problems]

"""`gexe validator run --config FILE`: run a validator node until SIGINT/SIGTERM.

Config, store, keystore and service problems end as one line (`UserError`); the service
itself lives in `gexe.validator.service`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gexe.node.config import ConfigError, load_config
from gexe.node.store import StoreError

from ._errors import UserError


def _run(args: argparse.Namespace) -> int:
    from gexe.validator.service import ServiceError, run_validator

    try:
        cfg = load_config(args.config)
    except ConfigError as e:
        raise UserError(str(e)) from None
    try:
        run_validator(cfg)
    except (ServiceError, StoreError) as e:
        raise UserError(str(e)) from None
    except OSError as e:  # e.g. the RPC port is taken
        raise UserError(
            f"validator: {e.strerror or e}; check the ports and paths in the config"
        ) from None
    return 0


def add_validator_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("validator", help="run a validator node")
    vs = p.add_subparsers(dest="validator_command", required=True, metavar="COMMAND")
    r = vs.add_parser("run", help="follow Ethereum, execute programs, serve RPC")
    r.add_argument("--config", type=Path, required=True, metavar="FILE", help="node config (TOML)")
    r.set_defaults(func=_run)

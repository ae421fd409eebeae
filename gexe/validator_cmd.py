"""`gexe validator run --config FILE` / `gexe sequencer run --config FILE`.

A validator node runs until SIGINT/SIGTERM. With `[sequencer] enabled = true` (or through
`gexe sequencer run`, which turns it on) the node also runs the sequencer role with the
validator's key: the face is where the two roles meet, since neither imports the other.
Config, store, keystore and service problems end as one line (`UserError`); the service
itself lives in `gexe.validator.service`, the role in `gexe.sequencer`.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any

from gexe.node.config import ConfigError, load_config
from gexe.node.store import StoreError

from ._errors import UserError


def sequencer_role(service: Any) -> Any:
    """Build the sequencer role for a running validator service."""
    from gexe.sequencer.service import Sequencer
    from gexe.validator.service import ServiceError

    if service.signer is None:
        raise ServiceError(
            "[sequencer] enabled needs the validator key: set [validator] password_file "
            "or password_env"
        )
    return Sequencer(
        client=service.client,
        account=service.signer,
        router=service.router,
        chain_id=service.chain_id,
        source=service.book,
        publish=service.publish,
        current_era=lambda: service.era or 0,
        config=service.cfg.sequencer,
        metrics=service.metrics.registry,
    )


def ordering_role(service: Any) -> Any:
    """The native path's ordering role, on the node whose key is `[native] sequencer`."""
    native = service.native
    if native is None or not native.is_sequencer:
        return None
    from gexe.sequencer.ordering import Ordering

    c = service.cfg.native
    role = Ordering(native, c.block_interval, c.max_block_txs, c.pool_size)
    native.orderers.append(role)
    return role


def roles_for(cfg: Any) -> list[Any]:
    out: list[Any] = [sequencer_role] if cfg.sequencer.enabled else []
    if cfg.native.sequencer is not None:
        out.append(ordering_role)
    return out


def _run(args: argparse.Namespace, *, sequencer: bool = False) -> int:
    from gexe.validator.service import ServiceError, run_validator

    try:
        cfg = load_config(args.config)
    except ConfigError as e:
        raise UserError(str(e)) from None
    if sequencer and not cfg.sequencer.enabled:
        cfg = replace(cfg, sequencer=replace(cfg.sequencer, enabled=True))
    try:
        run_validator(cfg, roles_for(cfg))
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

    p = sub.add_parser("sequencer", help="run a validator node with the sequencer role")
    ss = p.add_subparsers(dest="sequencer_command", required=True, metavar="COMMAND")
    r = ss.add_parser("run", help="a validator that also proposes, aggregates and commits batches")
    r.add_argument("--config", type=Path, required=True, metavar="FILE", help="node config (TOML)")
    r.set_defaults(func=lambda a: _run(a, sequencer=True))

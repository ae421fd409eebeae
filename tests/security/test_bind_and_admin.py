"""Network exposure: RPC and metrics bind to loopback unless the operator says
otherwise, and the RPC has no method that changes node state (so no admin token)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import trio
from gexe.node.config import ConfigError, load_config
from gexe.node.metrics import Registry, serve_metrics
from gexe.validator.rpc import RpcDispatcher, RpcServer

EXTERNAL = ["0.0.0.0", "::", "192.168.1.5", "10.0.0.1", "example.com", "2001:db8::1"]
LOOPBACK = ["127.0.0.1", "127.0.0.2", "::1", "localhost"]


def test_defaults_bind_loopback():
    c = load_config(None, environ={})
    for sec in (c.rpc, c.metrics):
        assert sec.host == "127.0.0.1" and sec.allow_external is False


@pytest.mark.parametrize("section", ["rpc", "metrics"])
@pytest.mark.parametrize("host", EXTERNAL)
def test_external_host_needs_allow_external(tmp_path: Path, section: str, host: str):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[{section}]\nhost = "{host}"\n')
    with pytest.raises(ConfigError) as e:
        load_config(cfg, environ={})
    msg = str(e.value)
    assert "\n" not in msg and f"[{section}]" in msg and "allow_external = true" in msg
    # the same through the environment
    env = {f"GEXE_{section.upper()}_HOST": host}
    with pytest.raises(ConfigError, match="allow_external"):
        load_config(None, environ=env)
    # explicit consent is accepted
    cfg.write_text(f'[{section}]\nhost = "{host}"\nallow_external = true\n')
    assert getattr(load_config(cfg, environ={}), section).host == host


@pytest.mark.parametrize("host", LOOPBACK)
def test_loopback_hosts_need_nothing(host: str):
    c = load_config(None, environ={"GEXE_RPC_HOST": host, "GEXE_METRICS_HOST": host})
    assert c.rpc.host == host and c.metrics.host == host


def test_cli_refuses_external_host_in_one_line(tmp_path: Path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[node]\ndata_dir = "{tmp_path / "d"}"\n[ethereum]\n'
        f'router_address = "0x{"11" * 20}"\n[rpc]\nhost = "0.0.0.0"\n'
    )
    p = subprocess.run(
        [sys.executable, "-m", "gexe", "validator", "run", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode != 0 and "Traceback" not in p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "allow_external" in lines[0], p.stderr
    assert not (tmp_path / "d" / "store").exists()  # refused before touching anything


def _peer_address() -> str | None:
    """This machine's own non-loopback address, if it has one."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("10.255.255.255", 1))  # no packet is sent for UDP connect
        ip = s.getsockname()[0]
    except OSError:
        return None
    finally:
        s.close()
    return None if ip.startswith("127.") else ip


async def test_servers_listen_on_loopback_only():
    """The servers started with the configured default host: bound to 127.0.0.1, and
    unreachable through the machine's other address."""
    c = load_config(None, environ={})
    server = RpcServer(RpcDispatcher({}))
    async with trio.open_nursery() as n:
        rpc_port = await n.start(server.serve, c.rpc.host, 0)
        metrics_port = await n.start(serve_metrics, Registry(), c.metrics.host, 0)
        other = _peer_address()
        for port in (rpc_port, metrics_port):
            s = await trio.open_tcp_stream("127.0.0.1", port)
            await s.aclose()
            if other is not None:
                with pytest.raises(OSError):
                    await trio.open_tcp_stream(other, port)
        n.cancel_scope.cancel()


# The RPC's whole method table, and why none needs an admin token: every method reads
# committed data or runs a query in an aborted store transaction
# (tests/fuzz/test_fuzz_targets.py checks the head and state never move), and
# subscriptions belong to their own WebSocket connection.
READ_ONLY = {
    "program_calculateReplyForHandle": "query: runs in a block writer that is aborted",
    "program_state": "read",
    "program_ids": "read",
    "program_queue": "read",
    "block_result": "read",
    "code_get": "read",
    "node_status": "read",
    "subscribe": "per-connection subscription, dropped with the connection",
    "unsubscribe": "only this connection's subscriptions",
}


def test_rpc_has_no_state_changing_method():
    from fuzz.rpc_target import ApiFixture

    fx = ApiFixture()
    try:
        methods = set(fx.api(None).methods())  # type: ignore[arg-type]
    finally:
        fx.close()
    assert methods == set(READ_ONLY), (
        "the RPC method table changed: a method that changes node state needs an admin "
        "token (RELIABILITY.md, Security review) — then update READ_ONLY"
    )

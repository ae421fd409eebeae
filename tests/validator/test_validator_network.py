"""Validator processes on a real anvil chain: agreement, RPC, metrics, restart, reorg.

Each test gets its own anvil and network (port 0, stopped by PID) and its own validator
processes (stopped by PID). Loops are bounded in count and time; nothing asserts on time.
"""

from __future__ import annotations

import json
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from gexe.contracts import Anvil, start_anvil
from netkit import Net, ValidatorProc, make_validator, results, wait_all

COUNTER_GET = b"get"


@pytest.fixture
def anvil() -> Iterator[Anvil]:
    node = start_anvil(accounts=12)
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def net(anvil: Anvil) -> Net:
    n = Net.deploy(anvil.url, anvil.private_keys, 4)
    n.upload("ping")
    n.upload("counter")
    return n


@pytest.fixture
def validators(tmp_path: Path, net: Net) -> Iterator[list[ValidatorProc]]:
    started: list[ValidatorProc] = []
    try:
        yield started
    finally:
        for v in started:
            v.stop(
                signal.SIGKILL if v.proc and v.proc.poll() is None else signal.SIGTERM, timeout=5
            )


def start(tmp_path: Path, net: Net, started: list[ValidatorProc], n: int) -> list[ValidatorProc]:
    vals: list[ValidatorProc] = []
    for i in range(n):
        boot = vals[0].p2p if vals else []
        v = make_validator(tmp_path, i, net, net.validators[i], bootnodes=boot)
        v.start()
        started.append(v)
        vals.append(v)
    return vals


def assert_agree(vals: list[ValidatorProc], first: int, last: int) -> dict[int, tuple]:
    ref = results(vals[0], first, last)
    for v in vals[1:]:
        assert results(v, first, last) == ref, f"validator {v.index} diverges"
    return ref


def first_block(v: ValidatorProc) -> int:
    r = v.call("block_result", "latest")
    n = r["number"]
    # walk down to the first processed block (bounded)
    for _ in range(10_000):
        if n == 0 or v.call("block_result", n - 1) is None:
            return n
        n -= 1
    raise AssertionError("no first block")


def test_two_validators_agree_rpc_and_metrics(
    tmp_path: Path, net: Net, validators: list[ValidatorProc]
) -> None:
    ping = net.create("ping")
    counter = net.create("counter", b"5")
    vals = start(tmp_path, net, validators, 2)
    users = net.users[:3]
    mids = []
    for i in range(6):
        u = users[i % 3]
        mids.append(net.send(ping, u, b"PING"))
        net.send(counter, u, b"inc")
    net.send(counter, users[0], b"bogus")  # panics: error reply, count unchanged
    head = net.w3.eth.block_number
    wait_all(vals, head)
    ref = assert_agree(vals, first_block(vals[0]), head)
    assert len(ref) >= 15

    for v in vals:
        st = v.call("program_state", ping.address)
        assert st["status"] == "active"
        assert v.call("program_state", counter.address) == vals[0].call(
            "program_state", counter.address
        )
        ids = v.call("program_ids")
        assert ("0x" + "00" * 12 + ping.address[2:].lower()) in ids and len(ids) == 2
        code = v.call("code_get", "0x" + net.codes["ping"].hex())
        assert code["valid"] is True and bytes.fromhex(code["code"][2:]).startswith(b"\0asm")

    # replies to the users are in the block results (messages to Ethereum)
    replies = [
        m
        for n in range(first_block(vals[0]), head + 1)
        for t in vals[0].call("block_result", n)["transitions"]
        for m in t["messages"]
        if m["reply_to"] is not None
    ]
    pongs = [m for m in replies if bytes.fromhex(m["payload"][2:]) == b"PONG"]
    assert {m["reply_to"] for m in pongs} == {"0x" + mid.hex() for mid in mids}

    # a query runs against the head state without changing it
    before = vals[0].call("program_state", counter.address)
    r = vals[0].call(
        "program_calculateReplyForHandle",
        net.users[5].address,
        ping.address,
        "0x" + b"PING".hex(),
        0,
    )
    assert bytes.fromhex(r["payload"][2:]) == b"PONG" and r["code"].startswith("0x00")  # success
    r = vals[0].call(
        "program_calculateReplyForHandle",
        net.users[5].address,
        counter.address,
        "0x" + b"inc".hex(),
        0,
    )
    assert int.from_bytes(bytes.fromhex(r["payload"][2:]), "little") == 5 + 6 + 1
    assert vals[0].call("program_state", counter.address) == before

    # metrics
    text = httpx.get(f"http://127.0.0.1:{vals[0].metrics_port}/metrics", timeout=10).text
    assert "gexe_validator_blocks_processed_total" in text
    assert "gexe_validator_head_lag_blocks" in text
    st = vals[1].call("node_status")
    assert st["head"] == head and st["lag"] == 0 and st["validator"] == net.validators[1].address

    # gossip: the two validators find each other (batch signing over gossip is covered
    # by tests/validator/test_batch_network.py)
    for _ in range(600):
        if all(v.call("node_status")["peers"] >= 1 for v in vals):
            break
        time.sleep(0.05)
    assert all(v.call("node_status")["peers"] >= 1 for v in vals)
    text = httpx.get(f"http://127.0.0.1:{vals[1].metrics_port}/metrics", timeout=10).text
    assert "gexe_validator_gossip_in_total" in text


def raw_post(port: int, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(
        f"http://127.0.0.1:{port}/",
        content=body,
        headers=headers or {"content-type": "application/json"},
        timeout=10,
    )


def test_malformed_rpc_input_gets_errors(
    tmp_path: Path, net: Net, validators: list[ValidatorProc]
) -> None:
    ping = net.create("ping")
    (v,) = start(tmp_path, net, validators, 1)
    v.wait_head(net.w3.eth.block_number)
    port = v.rpc_port
    assert port is not None

    def err(body: bytes) -> int:
        return int(raw_post(port, body).json()["error"]["code"])

    assert err(b"{not json") == -32700
    assert err(b"\xff\xfe") == -32700
    assert err(b"[]") == -32600
    assert err(b'"x"') == -32600
    assert err(b'{"jsonrpc":"1.0","id":1,"method":"node_status"}') == -32600
    assert err(b'{"jsonrpc":"2.0","id":{},"method":"node_status"}') == -32600
    assert err(b'{"jsonrpc":"2.0","id":1,"method":"nope"}') == -32601
    assert err(b'{"jsonrpc":"2.0","id":1,"method":"program_state","params":["zz"]}') == -32602
    assert err(b'{"jsonrpc":"2.0","id":1,"method":"program_state","params":[]}') == -32602
    assert err(b'{"jsonrpc":"2.0","id":1,"method":"program_state","params":7}') == -32602
    bad_args = [1, ping.address, "0x00", 0]
    body = json.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": "program_calculateReplyForHandle", "params": bad_args}
    ).encode()
    assert err(body) == -32602
    batch = raw_post(port, b'[1, {"jsonrpc":"2.0","id":2,"method":"node_status"}]').json()
    assert batch[0]["error"]["code"] == -32600 and "result" in batch[1]
    assert raw_post(port, b"x" * (2 << 20)).status_code == 413
    assert httpx.get(f"http://127.0.0.1:{port}/", timeout=10).status_code == 405
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"garbage\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 400")
    assert v.call("node_status")["head"] is not None  # still serving


def chain_hash(net: Net, n: int) -> str:
    return "0x" + bytes(net.w3.eth.get_block(n)["hash"]).hex()


def test_sigkill_restart_resumes_and_reorg_is_rolled_back(
    tmp_path: Path, net: Net, validators: list[ValidatorProc]
) -> None:
    counter = net.create("counter")
    ping = net.create("ping")
    vals = start(tmp_path, net, validators, 2)
    for i in range(3):
        net.send(counter, net.users[i], b"inc")
    wait_all(vals, net.w3.eth.block_number)

    # SIGKILL one validator, let the chain move on, restart: it resumes from its store
    assert vals[1].stop(signal.SIGKILL) == -signal.SIGKILL
    for i in range(4):
        net.send(counter, net.users[i], b"add:10")
        net.send(ping, net.users[i], b"PING")
    net.mine(20)
    vals[1].start()
    head = net.w3.eth.block_number
    wait_all(vals, head)
    assert "resuming" in vals[1].tail(400)
    first = first_block(vals[0])
    assert first_block(vals[1]) == first
    assert_agree(vals, first, head)
    assert vals[1].call("node_status")["lag"] == 0

    # a reorg: snapshot, a branch with messages, revert, a different (longer) branch
    snap = net.rpc("evm_snapshot")
    base = net.w3.eth.block_number
    for i in range(3):
        net.send(counter, net.users[i], b"add:1000")
    old_tip = net.w3.eth.block_number
    wait_all(vals, old_tip)
    old = vals[0].call("block_result", old_tip)["hash"]
    assert net.rpc("evm_revert", snap) is True
    net.mine(1)
    for i in range(3):
        net.send(counter, net.users[i + 3], b"add:7")
    new_tip = net.w3.eth.block_number
    assert new_tip > old_tip
    wait_all(vals, new_tip)
    for v in vals:
        assert v.call("node_status")["reorgs"] >= 1
        assert v.call("block_result", old_tip)["hash"] != old
        for n in range(base, new_tip + 1):
            assert v.call("block_result", n)["hash"] == chain_hash(net, n)
    assert_agree(vals, first, new_tip)
    r = vals[0].call(
        "program_calculateReplyForHandle",
        net.users[0].address,
        counter.address,
        "0x" + COUNTER_GET.hex(),
        0,
    )
    assert int.from_bytes(bytes.fromhex(r["payload"][2:]), "little") == 3 + 40 + 21


def test_same_height_reorg_is_seen(
    tmp_path: Path, net: Net, validators: list[ValidatorProc]
) -> None:
    counter = net.create("counter")
    vals = start(tmp_path, net, validators, 1)
    snap = net.rpc("evm_snapshot")
    net.send(counter, net.users[0], b"add:5")
    net.send(counter, net.users[0], b"add:5")
    tip = net.w3.eth.block_number
    wait_all(vals, tip)
    net.rpc("evm_revert", snap)
    net.send(counter, net.users[1], b"inc")  # a shorter branch: tip - 1
    short = net.w3.eth.block_number
    assert short < tip
    deadline = time.monotonic() + 60  # the idle tip check notices the changed block
    while time.monotonic() < deadline:  # (bounded in time: CI machines can be slow)
        if vals[0].call("node_status")["reorgs"] >= 1 and vals[0].head() == short:
            break
        time.sleep(0.05)
    assert vals[0].call("node_status")["reorgs"] >= 1
    assert vals[0].call("block_result", short)["hash"] == chain_hash(net, short)


@pytest.mark.slow
def test_four_validators_agree_over_200_blocks(
    tmp_path: Path, net: Net, validators: list[ValidatorProc]
) -> None:
    """The must-show: 4 validator processes, 20 programs, >= 200 blocks, one validator
    SIGKILLed and restarted mid-way; every block's result is identical on all four."""
    mirrors = [net.create("ping") for _ in range(10)]
    mirrors += [net.create("counter", str(i).encode()) for i in range(10)]
    vals = start(tmp_path, net, validators, 4)
    start_block = net.w3.eth.block_number
    users = net.users[:6]
    sent = 0
    for rnd in range(6):
        for j, m in enumerate(mirrors):
            payload = b"PING" if j < 10 else (b"inc" if rnd % 2 else b"add:3")
            net.send(m, users[(rnd + j) % len(users)], payload)
            sent += 1
        net.mine(15)
        if rnd == 2:
            assert vals[3].stop(signal.SIGKILL) == -signal.SIGKILL
        if rnd == 4:
            vals[3].start()
    head = net.w3.eth.block_number
    assert head - start_block >= 200 and sent >= 120
    wait_all(vals, head, timeout=150)
    first = first_block(vals[0])
    ref = assert_agree(vals, first, head)
    assert len(ref) >= 200
    counts = [
        vals[0].call(
            "program_calculateReplyForHandle",
            users[0].address,
            m.address,
            "0x" + COUNTER_GET.hex(),
            0,
        )
        for m in mirrors[10:]
    ]
    assert [int.from_bytes(bytes.fromhex(c["payload"][2:]), "little") for c in counts] == [
        i + 3 * 3 + 3 for i in range(10)
    ]
    assert all(v.call("node_status")["lag"] == 0 for v in vals)


def test_websocket_subscription_and_rpc(
    tmp_path: Path, net: Net, validators: list[ValidatorProc]
) -> None:
    import trio
    import trio_websocket

    ping = net.create("ping")
    (v,) = start(tmp_path, net, validators, 1)
    v.wait_head(net.w3.eth.block_number)
    got: dict[str, object] = {}

    async def main() -> None:
        url = f"ws://127.0.0.1:{v.rpc_port}/"
        async with trio_websocket.open_websocket_url(url) as ws:
            await ws.send_message(
                json.dumps(
                    {
                        "jsonrpc": "2.0",
                        "id": 1,
                        "method": "subscribe",
                        "params": ["programReplies", {"program_id": ping.address}],
                    }
                )
            )
            sub = json.loads(await ws.get_message())["result"]
            await ws.send_message(json.dumps({"jsonrpc": "2.0", "id": 2, "method": "node_status"}))
            got["status"] = json.loads(await ws.get_message())["result"]
            mid = await trio.to_thread.run_sync(net.send, ping, net.users[1], b"PING")
            with trio.fail_after(60):
                while True:
                    note = json.loads(await ws.get_message())
                    if note.get("method") == "subscription":
                        assert note["params"]["subscription"] == sub
                        r = note["params"]["result"]
                        if r["reply_to"] == "0x" + mid.hex():
                            got["reply"] = r
                            return

    trio.run(main)
    assert got["status"]["head"] is not None  # type: ignore[index]
    assert bytes.fromhex(got["reply"]["payload"][2:]) == b"PONG"  # type: ignore[index]


def test_cli_bad_config_is_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    bad = tmp_path / "bad.toml"
    bad.write_text("[ethereum]\nrouter_adress = '0x00'\n")
    for args in (["--config", str(tmp_path / "missing.toml")], ["--config", str(bad)]):
        p = subprocess.run(
            [sys.executable, "-m", "gexe", "validator", "run", *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert p.returncode != 0
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("gexe: error:"), p.stderr
        assert "Traceback" not in p.stderr
    no_router = tmp_path / "norouter.toml"
    no_router.write_text(f"[node]\ndata_dir = '{tmp_path / 'd'}'\n")
    p = subprocess.run(
        [sys.executable, "-m", "gexe", "validator", "run", "--config", str(no_router)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode != 0 and "router_address" in p.stderr and "Traceback" not in p.stderr

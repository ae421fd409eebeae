"""The native path end to end (issue #8): one dev network for the module — anvil with
1-second blocks, the contracts, 4 validator processes over real libp2p (validator 0 also
the sequencer and the ordering role, `DevNet(native=True)`) — and ten ping programs.

Users sign injected transactions (`gexe.client`), submit them over the non-sequencer
validators' RPC and read receipts there; every validator's chain of sequencer blocks is
read back (`injected_sequencerBlock`) and compared height by height. The tests run in file
order: the equivocation test slashes the sequencer and so comes last.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx
import pytest
import trio
from eth_account import Account
from eth_utils import keccak, to_checksum_address
from gexe.contracts import Staking
from gexe.contracts.injected import (
    Domain,
    InjectedTransaction,
    SequencerBlockHeader,
    SignedTransaction,
    transactions_hash,
)
from gexe.validator.native import MIN_BALANCE

from gexe import programs
from gexe.client import Client, PromiseError, Receipt, Refused, RpcError, tx_json
from gexe.devnet import DevNet, Program

N_PROGRAMS = 10
SENDERS = [Account.from_key(keccak(b"gexe native sender %d" % i)) for i in range(10)]
FINAL = ("preconfirmed", "refused", "expired")
_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def hx(b: bytes) -> str:
    return "0x" + bytes(b).hex()


def wait_for(cond: Callable[[], Any], timeout: float, what: str, step: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(step)


class Rpc:
    """JSON-RPC to one validator, with batches (the server takes up to 100 calls)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(timeout=30)

    def batch(self, calls: Sequence[tuple[str, list[Any]]]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for i in range(0, len(calls), 100):
            chunk = calls[i : i + 100]
            body = [
                {"jsonrpc": "2.0", "id": j, "method": m, "params": p}
                for j, (m, p) in enumerate(chunk)
            ]
            r = self.http.post(self.url, json=body).json()
            assert isinstance(r, list), r
            by_id = {x["id"]: x for x in r}
            out.extend(by_id[j] for j in range(len(chunk)))
        return out

    def close(self) -> None:
        self.http.close()


# ------------------------------------------------------------------ sequencer chains


class Chains:
    """Every validator's chain of sequencer blocks, read incrementally (h = 1…) and checked
    to link up (each block's parent is the previous block's hash)."""

    def __init__(self, net: DevNet) -> None:
        self.net = net
        self.blocks: dict[int, list[dict[str, Any]]] = {i: [] for i in range(len(net.procs))}

    def height(self, i: int) -> int:
        return int(self.net.procs[i].status()["native"]["seq_height"])

    def sync(self, upto: int) -> None:
        """Read blocks up to `upto` on every validator (all must have run them)."""
        for i, p in enumerate(self.net.procs):
            have = self.blocks[i]
            if len(have) >= upto:
                continue
            rpc = Rpc(p.rpc_url)
            try:
                got = rpc.batch(
                    [("injected_sequencerBlock", [h]) for h in range(len(have) + 1, upto + 1)]
                )
            finally:
                rpc.close()
            for r in got:
                b = r.get("result")
                assert b is not None, f"validator {i} lacks a sequencer block: {r}"
                parent = have[-1]["hash"] if have else "0x" + "00" * 32
                assert b["height"] == len(have) + 1 and b["parent"] == parent, (
                    f"validator {i}: sequencer block {b['height']} does not link to its parent"
                )
                have.append(b)

    def wait_height(self, height: int, timeout: float = 60.0) -> None:
        wait_for(
            lambda: all(self.height(i) >= height for i in range(len(self.net.procs))),
            timeout,
            f"every validator to run sequencer block {height}",
            0.2,
        )

    def agree(self, upto: int) -> None:
        """Same blocks (hash, anchor, state root, verdicts) on every validator up to `upto`."""
        self.sync(upto)
        ref = [
            (b["hash"], b["anchor"], b["state_root"], [(t["hash"], t["status"]) for t in b["txs"]])
            for b in self.blocks[0][:upto]
        ]
        for i in range(1, len(self.net.procs)):
            mine = [
                (
                    b["hash"],
                    b["anchor"],
                    b["state_root"],
                    [(t["hash"], t["status"]) for t in b["txs"]],
                )
                for b in self.blocks[i][:upto]
            ]
            for h, (x, y) in enumerate(zip(ref, mine, strict=True), start=1):
                assert x == y, f"validator {i} differs from validator 0 at sequencer block {h}"

    def executed(self, i: int, upto: int) -> list[str]:
        """Hashes with status executed, in chain order, on validator `i`."""
        return [
            t["hash"] for b in self.blocks[i][:upto] for t in b["txs"] if t["status"] == "executed"
        ]

    def verdicts(self, upto: int) -> dict[str, list[tuple[int, str, str | None]]]:
        """tx hash → every (height, status, reason) it got on validator 0's chain."""
        out: dict[str, list[tuple[int, str, str | None]]] = {}
        for b in self.blocks[0][:upto]:
            for t in b["txs"]:
                out.setdefault(t["hash"], []).append((b["height"], t["status"], t["reason"]))
        return out


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevNet]:
    d = DevNet(tmp_path_factory.mktemp("native") / "net", validators=4, block_time=1, native=True)
    d.start()
    try:
        yield d
    finally:
        d.stop()
        for p in d.procs:
            assert p.proc is not None and p.proc.poll() is not None


@pytest.fixture(scope="module")
def ping_code(net: DevNet) -> bytes:
    (cid,) = net.upload_codes([programs.path("ping").read_bytes()])
    assert net.wait_code(cid).valid
    return cid


@pytest.fixture(scope="module")
def ping_programs(net: DevNet, ping_code: bytes) -> list[Program]:
    """Ten initialised ping programs, known to every validator."""
    created = net.create_programs([(ping_code, b"")] * N_PROGRAMS)
    answers = net.wait_answers([p.init_id for p in created], timeout=60)
    assert all(a[0].ok for a in answers.values())
    last = max(a[0].block for a in answers.values())
    wait_for(
        lambda: all((p.status().get("head") or 0) >= last for p in net.procs),
        30,
        "every validator to process the programs' creation",
    )
    return created


@pytest.fixture(scope="module")
def pings(ping_programs: list[Program]) -> list[str]:
    return [p.address for p in ping_programs]


@pytest.fixture(scope="module")
def chains(net: DevNet) -> Chains:
    return Chains(net)


@pytest.fixture(scope="module")
def domain(net: DevNet) -> Domain:
    return Domain(net.chain_id, net.deployment.router)


def head_hash(net: DevNet, i: int = 1) -> bytes:
    info = net.procs[i].call("injected_info")
    return bytes.fromhex(info["head"]["hash"][2:])


def sign(
    domain: Domain,
    account: Any,
    program: str,
    payload: bytes,
    ref: bytes,
    *,
    value: int = 0,
) -> SignedTransaction:
    t = InjectedTransaction(bytes.fromhex(program[2:]), payload, ref, os.urandom(32), value)
    return domain.sign_tx(account.key, t)


def receipts(rpc: Rpc, hashes: Sequence[str]) -> list[dict[str, Any] | None]:
    got = rpc.batch([("injected_getTransactionReceipt", [h]) for h in hashes])
    for r in got:
        assert "error" not in r, r
    return [r["result"] for r in got]


def wait_final(
    net: DevNet,
    by_node: dict[int, list[str]],
    timeout: float,
    settled: Callable[[str, dict[str, Any]], bool] | None = None,
) -> dict[str, dict]:
    """Poll receipts on the nodes that accepted the transactions until every one is final
    (or `settled(hash, receipt)`); returns the last receipt of each."""
    out: dict[str, dict[str, Any]] = {}
    rpcs = {i: Rpc(net.procs[i].rpc_url) for i in by_node}
    ok = settled or (lambda h, r: r["status"] in FINAL)
    try:

        def done() -> bool:
            for i, hashes in by_node.items():
                todo = [h for h in hashes if h not in out or out[h]["status"] not in FINAL]
                for h, r in zip(todo, receipts(rpcs[i], todo), strict=True):
                    assert r is not None, f"validator {i} lost the receipt of {h}"
                    out[h] = r
            return all(ok(h, r) for h, r in out.items())

        try:
            wait_for(done, timeout, "final receipts", 0.25)
        except AssertionError:
            left = Counter(r["status"] for r in out.values())
            raise AssertionError(f"receipts not final after {timeout:g} s: {dict(left)}") from None
    finally:
        for r in rpcs.values():
            r.close()
    return out


def max_height(rs: Sequence[dict[str, Any]]) -> int:
    return max((r["sequencer_block"] or {}).get("height", 0) for r in rs)


# ------------------------------------------------------------------ 1,000 transactions


def test_thousand_transactions_execute_once_in_order_everywhere(
    net: DevNet, pings: list[str], chains: Chains, domain: Domain
) -> None:
    """10 senders × 10 programs, 1,000 transactions spread over validators 1-3: all are
    pre-confirmed, and every validator's sequencer chain carries each exactly once, in
    the same order, with the same state roots."""
    before = {p: net.procs[1].call("program_state", p)["executable_balance"] for p in pings}
    ref = head_hash(net)
    txs = [
        sign(domain, SENDERS[i % 10], pings[(i // 10) % N_PROGRAMS], b"PING", ref)
        for i in range(1000)
    ]
    hashes = [hx(domain.tx_hash(t.tx)) for t in txs]
    assert len(set(hashes)) == 1000
    by_node: dict[int, list[str]] = {1: [], 2: [], 3: []}
    errors: list[str] = []

    def submit(node: int) -> None:
        rpc = Rpc(net.procs[node].rpc_url)
        try:
            mine = [i for i in range(1000) if 1 + i % 3 == node]
            for k in range(0, len(mine), 20):
                part = mine[k : k + 20]
                got = rpc.batch([("injected_sendTransaction", [tx_json(txs[i])]) for i in part])
                for i, r in zip(part, got, strict=True):
                    if r.get("result") != hashes[i]:
                        errors.append(f"validator {node}: {r}")
                    else:
                        by_node[node].append(hashes[i])
        finally:
            rpc.close()

    threads = [threading.Thread(target=submit, args=(n,)) for n in (1, 2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[:3]
    assert sorted(h for v in by_node.values() for h in v) == sorted(hashes)

    got = wait_final(net, by_node, timeout=120)
    statuses = Counter(r["status"] for r in got.values())
    assert statuses == {"preconfirmed": 1000}, statuses
    for h, r in got.items():
        assert r["hash"] == h and r["reason"] is None
        assert bytes.fromhex(r["reply"]["payload"][2:]) == b"PONG"
        assert r["reply"]["code"][:4] == "0x00"  # success
        assert len(r["promises"]) >= 3  # > 2/3 of 4 equal stakes
    senders = Counter(got[h]["sender"] for h in hashes)
    assert senders == {s.address.lower(): 100 for s in SENDERS}

    top = max_height(list(got.values()))
    chains.wait_height(top)
    chains.agree(top)
    seqs = [chains.executed(i, top) for i in range(4)]
    assert seqs[1] == seqs[0] and seqs[2] == seqs[0] and seqs[3] == seqs[0]
    ours = set(hashes)
    order = [h for h in seqs[0] if h in ours]
    assert Counter(order) == Counter(hashes)  # each of the 1,000 exactly once
    # a receipt names the block that carried its transaction
    carried = {
        t["hash"]: b["height"]
        for b in chains.blocks[0][:top]
        for t in b["txs"]
        if t["hash"] in ours
    }
    for h, r in got.items():
        assert r["sequencer_block"]["height"] == carried[h]
        assert r["sequencer_block"]["hash"] == chains.blocks[0][carried[h] - 1]["hash"]
    # the programs paid for it from their executable balance, and have plenty left
    head = net.procs[1].status()["head"]
    wait_for(lambda: all(p.status()["head"] > head for p in net.procs), 30, "the next block")
    for p in pings:
        after = net.procs[1].call("program_state", p)["executable_balance"]
        assert 0 < after < before[p]


# ------------------------------------------------------------------ refusals


def _one_line_refusal(fn: Callable[[], Any], *words: str) -> str:
    with pytest.raises(Refused) as e:
        fn()
    msg = str(e.value)
    assert msg and "\n" not in msg, msg
    for w in words:
        assert w in msg, msg
    return msg


def test_refusals_are_one_clear_line_and_nothing_runs(
    net: DevNet, pings: list[str], chains: Chains, domain: Domain
) -> None:
    user = SENDERS[0]
    c1, c2, c3 = (Client(net.procs[i].rpc_url, user) for i in (1, 2, 3))
    c0 = Client(net.procs[0].rpc_url, user)
    start = chains.height(0)
    refused: list[bytes] = []  # hashes the network must never execute
    try:
        # a replay, after the transaction executed
        good = c1.sign(pings[0], b"PING")
        h = c1.submit(good)
        r = c1.wait(h, timeout=30)
        assert r.status == "preconfirmed" and r.reply_payload == b"PONG"
        assert c1.submit(good) == h  # the node that holds it answers idempotently
        assert c1.receipt(h).status == "preconfirmed"
        # the quorum is 3 of 4: let the fourth node run the block too
        chains.wait_height(r.sequencer_block["height"], timeout=30)
        for c in (c2, c3, c0):
            _one_line_refusal(lambda c=c: c.submit(good), "already included")
            assert c.receipt(h) is None  # never kept
        # an expired reference block (> 32 blocks old)
        wait_for(lambda: net.procs[1].status()["head"] >= 45, 60, "block 45")
        old_n = net.procs[1].status()["head"] - 40
        old = bytes(net.w3.eth.get_block(old_n)["hash"])
        stx = c1.sign(pings[0], b"PING", reference_block=old)
        _one_line_refusal(lambda: c1.submit(stx), "expired", f"reference block {old_n}")
        refused.append(domain.tx_hash(stx.tx))
        # a reference block that is not on the chain
        stx = c1.sign(pings[0], b"PING", reference_block=os.urandom(32))
        _one_line_refusal(lambda: c1.submit(stx), "reference block", "not on this node's chain")
        refused.append(domain.tx_hash(stx.tx))
        # corrupted signatures: v outside {27, 28}, r = s = 0, the high-s twin
        base = c1.sign(pings[0], b"PING")
        s = base.signature
        twin = s[:32] + (_N - int.from_bytes(s[32:64], "big")).to_bytes(32, "big")
        for bad in (
            s[:64] + b"\x00",
            s[:64] + b"\x1d",
            bytes(64) + s[64:],
            twin + bytes([55 - s[64]]),
        ):
            stx = SignedTransaction(base.tx, bad)
            _one_line_refusal(lambda stx=stx: c2.submit(stx), "bad signature")
        refused.append(domain.tx_hash(base.tx))
        # unknown program, value, oversized payload
        stx = c1.sign(os.urandom(20), b"PING")
        _one_line_refusal(lambda: c1.submit(stx), "not a program of this network")
        refused.append(domain.tx_hash(stx.tx))
        stx = sign(domain, user, pings[0], b"PING", head_hash(net), value=1)
        _one_line_refusal(lambda: c3.submit(stx), "value must be 0")
        refused.append(domain.tx_hash(stx.tx))
        stx = c1.sign(pings[0], b"x" * 65_537)
        _one_line_refusal(lambda: c1.submit(stx), "65537 bytes", "limit 65536")
        refused.append(domain.tx_hash(stx.tx))
        # malformed parameters are JSON-RPC invalid params, one line each
        ok = tx_json(c1.sign(pings[0], b"PING"))
        bad_params: list[list[Any]] = [
            [],
            ["not an object"],
            [[ok]],
            [{k: v for k, v in ok.items() if k != "signature"}],
            [{**ok, "extra": 1}],
            [{**ok, "payload": "PING"}],
            [{**ok, "payload": "0xzz"}],
            [{**ok, "destination": ok["destination"][:-2]}],
            [{**ok, "salt": ok["salt"] + "00"}],
            [{**ok, "signature": ok["signature"][:-2]}],
            [{**ok, "value": -1}],
            [{**ok, "value": True}],
            [{**ok, "value": 2**128}],
            [ok, ok],
        ]
        for params in bad_params:
            with pytest.raises(RpcError) as e:
                c1.call("injected_sendTransaction", *params)
            assert e.value.code == -32602, (params, e.value)
            assert "\n" not in e.value.message
        for params in ([], ["0x1234"], [123]):
            with pytest.raises(RpcError) as e:
                c1.call("injected_getTransactionReceipt", *params)
            assert e.value.code == -32602
        with pytest.raises(RpcError) as e:
            c1.call("injected_sequencerBlock", "many")
        assert e.value.code == -32602
        assert c1.call("injected_sequencerBlock", 10**12) is None
        assert c1.call("injected_getTransactionReceipt", hx(os.urandom(32))) is None

        # nothing refused ever runs: let the sequencer seal two more Ethereum blocks
        n = net.procs[0].status()["head"]
        wait_for(
            lambda: all(
                (p.status()["native"]["seq_height"] or 0) > 0 and p.status()["head"] >= n + 2
                for p in net.procs
            ),
            30,
            "two more blocks",
        )
        top = min(chains.height(i) for i in range(4))
        chains.agree(top)
        seen = chains.verdicts(top)
        for x in refused:
            assert hx(x) not in seen, f"refused transaction {hx(x)} reached a sequencer block"
        runs = [v for v in seen[hx(h)] if v[1] == "executed"]
        assert len(runs) == 1 and runs[0][0] > start  # the replay ran once
        for i in range(4):
            assert chains.executed(i, top).count(hx(h)) == 1
    finally:
        for c in (c0, c1, c2, c3):
            c.close()


def test_another_networks_signature_is_another_sender(
    net: DevNet, pings: list[str], domain: Domain
) -> None:
    """A signature made under another chain id or Router is over another digest: on this
    network it recovers to an unrelated address. The node cannot tell this from a
    different user, so it accepts the transaction as that address's — the signer's
    identity is never used, and the reply goes to the recovered address."""
    user = SENDERS[1]
    me = user.address.lower()
    with Client(net.procs[2].rpc_url, user) as c:
        ref = head_hash(net, 2)
        for other in (
            Domain(net.chain_id + 1, net.deployment.router),
            Domain(net.chain_id, "0x" + "ee" * 20),
        ):
            t = InjectedTransaction(bytes.fromhex(pings[1][2:]), b"PING", ref, os.urandom(32))
            stx = other.sign_tx(user.key, t)
            h = c.submit(stx)
            assert h == domain.tx_hash(t) != other.tx_hash(t)
            r = c.wait(h, timeout=30)
            assert r.sender != bytes.fromhex(me[2:])
            assert r.sender == domain.tx_sender(stx)
            assert r.reply_payload == b"PONG"
        # a flipped bit in r: either it no longer recovers, or it is yet another sender
        good = c.sign(pings[1], b"PING")
        flipped = SignedTransaction(
            good.tx, good.signature[:5] + bytes([good.signature[5] ^ 1]) + good.signature[6:]
        )
        try:
            h = c.submit(flipped)
        except Refused as e:
            assert "bad signature" in str(e)
        else:
            assert c.receipt(h).sender != bytes.fromhex(me[2:])


def test_executable_balance_runs_out_and_top_up_restores(
    net: DevNet, ping_code: bytes, ping_programs: list[Program], pings: list[str]
) -> None:
    """A program pays for injected transactions from its executable balance: once spent,
    the node refuses new ones (top it up); after a top-up they run again."""
    # what an init and a PING cost (deterministic: same code, same payloads)
    with Client(net.procs[1].rpc_url, SENDERS[2]) as c:
        r = c.send_injected(pings[2], b"PING", timeout=30)
        blk = net.procs[1].call("injected_sequencerBlock", r.sequencer_block["height"])
    ping_gas = next(d["gas_burned"] for d in blk["dispatches"] if d["message_id"] == hx(r.tx_hash))
    p0 = ping_programs[0]
    init_gas = net.find_dispatch(p0.init_id, p0.block, validator=1).gas_burned
    assert ping_gas > 0 and init_gas > 0
    # room for the init, a PING, and then a little more than the least balance the RPC
    # accepts a transaction with (one dispatch's base cost), but less than a PING burns
    # (a program's first PING costs a little more than a later one: pages)
    spare = MIN_BALANCE + ping_gas * 100 // 4
    assert ping_gas * 100 > spare
    (prog,) = net.create_programs(
        [(ping_code, b"")], executable_balance=(init_gas + ping_gas) * 100 + spare
    )
    assert net.wait_answer(prog.init_id).ok
    wait_for(
        lambda: all((p.status()["head"] or 0) >= prog.block + 1 for p in net.procs),
        30,
        "every validator to see the program",
    )
    with Client(net.procs[3].rpc_url, SENDERS[3]) as c:
        first = c.send_injected(prog.address, b"PING", timeout=30)
        assert first.reply_payload == b"PONG"
        # the next one runs out of gas: an error reply, promised like any other
        second = c.send_injected(prog.address, b"PING", timeout=30)
        assert second.reply_code is not None and second.reply_code[0] != 0
        msg = _one_line_refusal(
            lambda: c.submit(c.sign(prog.address, b"PING")),
            "executable balance, less than",
            "top it up",
        )
        assert prog.address.lower()[2:] in msg.lower()
        net.top_up(prog.address, 10**15)

        # once the node has seen the top-up, the program answers again
        def accepted() -> bytes | None:
            try:
                return c.submit(c.sign(prog.address, b"PING"))
            except Refused as e:
                assert "executable balance, less than" in str(e)
                return None

        h = wait_for(accepted, 30, "the top-up to reach validator 3", 0.5)
        assert c.wait(h, timeout=30).reply_payload == b"PONG"


async def test_send_and_watch_over_websocket(net: DevNet, pings: list[str]) -> None:
    """injected_sendTransactionAndWatch: notifications end with the final receipt."""
    with Client(net.procs[2].rpc_url, SENDERS[4]) as c:
        r = await c.send_injected_watch(pings[4], b"hello over ws", timeout=30)
        assert r.status == "preconfirmed" and r.reply_payload == b"hello over ws"
        assert r.promise().reply_hash == keccak(b"hello over ws")
        with pytest.raises(Refused, match="not a program"):
            await c.send_injected_watch(os.urandom(20), b"PING", timeout=30)


# ------------------------------------------------------------------ promises vs the chain


def test_promises_match_the_committed_replies(
    net: DevNet, pings: list[str], domain: Domain
) -> None:
    """The reply every validator promised is the reply the batch committed to Ethereum:
    same payload hash, same reply code, delivered to the sender as a Mirror Reply event."""
    payloads = [b"PING", b"", b"\x00\xff" * 50, os.urandom(300), b"x" * 9000]
    sent: list[tuple[Client, bytes, bytes]] = []
    clients = [Client(net.procs[1 + i % 3].rpc_url, SENDERS[5 + i % 3]) for i in range(3)]
    try:
        for i in range(12):
            c = clients[i % 3]
            payload = payloads[i % len(payloads)]
            sent.append((c, c.submit(c.sign(pings[i % 4], payload)), payload))
        rs: list[Receipt] = [c.wait(h, timeout=60) for c, h, _ in sent]
        answers = net.wait_answers([r.tx_hash for r in rs], timeout=90, settle_blocks=2)
        era = net.router.era_index()
        on_chain = {bytes.fromhex(a[2:]): w for a, w in net.router.era_validators(era)}
        assert len(on_chain) == 4
        for (c, _h, payload), r in zip(sent, rs, strict=True):
            want = b"PONG" if payload == b"PING" else payload
            assert r.reply_payload == want
            p = r.promise()
            (a,) = answers[r.tx_hash]  # exactly one on-chain answer
            assert a.kind == "reply"
            assert a.program.lower() == hx(r.destination)
            assert keccak(a.payload) == p.reply_hash and a.payload == want
            assert a.code == p.reply_code
            signers = c.verify(r)  # the node's view of the validator set
            assert 3 * sum(signers.values()) > 2 * sum(on_chain.values())
            assert c.verify(r, on_chain) == {v: on_chain[v] for v in signers}
            # promises for another reply do not verify, nor does too little stake
            with pytest.raises(PromiseError):
                c.verify(dataclasses.replace(r, reply_payload=want + b"!"), on_chain)
            with pytest.raises(PromiseError):
                c.verify(r, {**on_chain, b"\x01" * 20: 10 * sum(on_chain.values())})
    finally:
        for c in clients:
            c.close()


# ------------------------------------------------------------------ sequencer crash


def test_sequencer_crash_loses_no_accepted_transaction(
    net: DevNet, pings: list[str], chains: Chains, domain: Domain
) -> None:
    """100 transactions over ~3 s through validators 1-3; the sequencer is SIGKILLed in
    the middle and restarted. Every accepted transaction ends final on the node that
    accepted it, none twice, and the validators' sequencer chains still agree."""
    start = min(chains.height(i) for i in range(4))
    chains.agree(start)
    by_node: dict[int, list[str]] = {1: [], 2: [], 3: []}
    refusals: list[str] = []
    after_kill: list[str] = []
    sent = threading.Event()
    killed = threading.Event()

    def stream() -> None:
        rpcs = {n: Rpc(net.procs[n].rpc_url) for n in (1, 2, 3)}
        refs = {n: head_hash(net, n) for n in (1, 2, 3)}
        try:
            for i in range(100):
                n = 1 + i % 3
                if i % 30 == 0:
                    refs[n] = head_hash(net, n)
                t = sign(domain, SENDERS[i % 10], pings[i % N_PROGRAMS], b"PING", refs[n])
                (r,) = rpcs[n].batch([("injected_sendTransaction", [tx_json(t)])])
                if "result" in r:
                    assert r["result"] == hx(domain.tx_hash(t.tx))
                    by_node[n].append(r["result"])
                    if killed.is_set() and net.procs[0].proc.poll() is not None:
                        after_kill.append(r["result"])
                else:
                    refusals.append(str(r["error"]))
                if i == 33:
                    sent.set()
                time.sleep(0.03)
        finally:
            sent.set()
            for r in rpcs.values():
                r.close()

    th = threading.Thread(target=stream)
    th.start()
    try:
        assert sent.wait(60)
        net.kill_validator(0)  # SIGKILL
        killed.set()
        th.join(60)
        assert not th.is_alive()
    finally:
        if not killed.is_set():
            th.join(60)
        if not net.procs[0].alive():
            net.restart_validator(0)
    assert not refusals, refusals[:3]
    accepted = [h for hs in by_node.values() for h in hs]
    assert len(accepted) == 100

    # Transactions accepted while the sequencer was down must all end pre-confirmed. One
    # accepted before the kill may stay "executed" (warned below): executed exactly once
    # everywhere, but the validators' promises for it were in flight through the killed
    # node (when validators 1-3 reach each other only through validator 0, as the dev
    # network's star of bootnodes did) and nothing re-sends promises.
    down = set(after_kill)
    got = wait_final(
        net,
        by_node,
        timeout=150,
        settled=lambda h, r: r["status"] in FINAL or (h not in down and r["status"] == "executed"),
    )
    try:  # give those a little longer: their promises may still come
        got = wait_final(net, by_node, timeout=10)
    except AssertionError:
        pass
    for r in got.values():
        assert r["status"] != "pending", r  # none lost before it was ordered
        if r["status"] in ("refused", "expired"):
            assert r["reason"], r  # refused / expired say why
    top = max(max_height(list(got.values())), start + 1)
    chains.wait_height(top, timeout=90)
    chains.agree(top)
    seen = chains.verdicts(top)
    for h, r in got.items():
        runs = [v for v in seen.get(h, []) if v[1] == "executed"]
        assert len(runs) <= 1, f"{h} executed {len(runs)} times"
        if r["status"] in ("preconfirmed", "executed"):
            assert len(runs) == 1 and runs[0][0] == r["sequencer_block"]["height"]
            assert r["reply"] is not None
        elif r["status"] == "refused":
            assert not runs and r["sequencer_block"] is not None
        else:  # expired: never ordered
            assert h not in seen
    for i in range(4):
        ex = chains.executed(i, top)
        assert len(ex) == len(set(ex)), f"validator {i} executed a transaction twice"
    # the restarted sequencer continued its own chain: no second block at any height
    for i in (1, 2, 3):
        assert net.procs[i].status()["native"]["equivocations"] == []
    # what the sequencer's down time held back ran after its restart, every one of it
    assert down
    assert all(got[h]["status"] == "preconfirmed" for h in down), Counter(
        got[h]["status"] for h in down
    )
    # and what ran just before the crash, whose promises went down with it, was promised
    # again on request (PromiseRequest): nothing stays merely "executed"
    got = wait_final(net, by_node, timeout=60)
    assert not [h for h, r in got.items() if r["status"] == "executed"]


def test_sequencer_that_lost_its_last_blocks_catches_up_before_signing(
    net: DevNet, pings: list[str], tmp_path: Any
) -> None:
    """An OS crash can undo a store's last commit, and the sequencer gossips a block
    before committing it: a restarted sequencer may lack blocks it signed. Here its
    store is rolled back by hand (SIGKILL, the data directory restored from a copy
    taken a few blocks earlier): it must take those blocks from its peers before it
    signs again — no second block at any height, and the network goes on."""
    chains = Chains(net)
    seq = net.procs[0]
    net.kill_validator(0)
    backup = tmp_path / "seq-store"
    shutil.copytree(seq.data_dir, backup)
    old_height = chains.height(1)
    net.restart_validator(0)
    with Client(net.procs[1].rpc_url, SENDERS[7]) as c:
        for i in range(5):
            assert c.send_injected(pings[i], b"PING", timeout=60).reply_payload == b"PONG"
    lost_top = chains.height(0)
    assert lost_top > old_height  # blocks the restored store will not have
    net.kill_validator(0)
    shutil.rmtree(seq.data_dir)
    shutil.copytree(backup, seq.data_dir)
    net.restart_validator(0)
    with Client(net.procs[2].rpc_url, SENDERS[8]) as c:
        for i in range(5):
            assert c.send_injected(pings[i], b"PING", timeout=60).reply_payload == b"PONG"
    top = max(chains.height(i) for i in range(4))
    assert top > lost_top
    chains.wait_height(top, timeout=60)
    chains.agree(top)
    for p in net.procs:
        assert p.status()["native"]["equivocations"] == []
    assert "sequencer caught up" in seq.log.read_text()


# ------------------------------------------------------------------ equivocation (last)


def test_sequencer_equivocation_is_detected_and_slashed(
    net: DevNet, pings: list[str], chains: Chains, domain: Domain
) -> None:
    """A second, different sequencer block for an (anchor, height) the network already
    ran, signed with the sequencer's key and gossiped by an outside peer: validators keep
    the proof, report it to the Slasher, and the sequencer's stake is slashed. The
    validators do not run the second block."""
    seq_key = net.validator_keys[0]
    staking = Staking(net.w3, net.deployment.staking)
    stake_before = staking.operator(seq_key.address).stake
    assert stake_before > 0
    height = min(chains.height(i) for i in range(4))
    chains.agree(height)
    real = chains.blocks[0][height - 1]
    t = sign(domain, SENDERS[9], pings[9], b"PING", bytes.fromhex(real["anchor"][2:]))
    header = SequencerBlockHeader(
        bytes.fromhex(real["anchor"][2:]),
        real["number"],
        height,
        bytes.fromhex(real["parent"][2:]),
        transactions_hash([domain.tx_hash(t.tx)]),
    )
    forged_hash = domain.block_hash(header)
    assert hx(forged_hash) != real["hash"]
    era = int(net.procs[1].status()["era"])
    validators = {bytes.fromhex(p.address[2:].lower()) for p in net.procs}

    def detected() -> bool:
        for i in (1, 2, 3):
            eq = net.procs[i].status()["native"]["equivocations"]
            if not any(e["height"] == height and e["second"] == hx(forged_hash) for e in eq):
                return False
        return True

    async def publish() -> None:
        from gexe.node.gossip import GossipConfig, open_gossip
        from gexe.node.gossip_injected import SequencerBlockMsg
        from gexe.node.gossip_messages import EthSigner

        cfg = GossipConfig(
            chain_id=net.chain_id,
            router_address=net.deployment.router,
            bootnodes=(net.procs[1].p2p[0],),
        )
        signer = EthSigner(bytes(seq_key.key))
        async with open_gossip(
            cfg, signer, current_era=lambda: era, validators=lambda e: validators
        ) as svc:
            with trio.fail_after(30):
                while not svc.mesh_peers():
                    await trio.sleep(0.05)
            for resend in range(20):  # new bytes each time, the same header
                msg = SequencerBlockMsg(
                    era, header, domain.sign_block(seq_key.key, header), (t,), resend=resend
                )
                await svc.publish(msg)
                for _ in range(10):
                    if await trio.to_thread.run_sync(detected):
                        return
                    await trio.sleep(0.1)
            raise AssertionError("no validator reported the equivocation")

    trio.run(publish)
    for i in (1, 2, 3):
        eq = net.procs[i].status()["native"]["equivocations"]
        (e,) = [e for e in eq if e["second"] == hx(forged_hash)]
        assert e["first"] == real["hash"] and e["anchor"] == real["anchor"]
    # the forged block never ran
    for i in range(4):
        b = net.procs[i].call("injected_sequencerBlock", height)
        assert b["hash"] == real["hash"]

    op = wait_for(
        lambda: (o := staking.operator(seq_key.address)).stake < stake_before and o,
        60,
        "the Slasher to slash the sequencer",
        0.5,
    )
    assert op.excluded
    reported = wait_for(
        lambda: [
            e.get("reported")
            for i in (1, 2, 3)
            for e in net.procs[i].status()["native"]["equivocations"]
            if e.get("reported")
        ],
        30,
        "a validator to record its report",
    )
    assert reported
    assert to_checksum_address(seq_key.address) == op.signer

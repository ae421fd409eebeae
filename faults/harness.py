"""`FaultNet`: a dev network wired for fault injection, a request stream, trials and checks.

The network is a `gexe.devnet.DevNet` (anvil with 1-second blocks, 4 validator processes,
validator 0 also the sequencer) with:

- one `chaos.RpcProxy` per validator between it and anvil (its `[ethereum] rpc_url`), and
  the validators' RPC timeout lowered to `rpc_timeout` seconds so a hang becomes a timeout;
- `[node] keep_blocks` raised so every block of the run stays comparable across
  validators (and with a validator synced from scratch at the end);
- optionally `replayer.py`, a gossip peer re-publishing everything it hears;
- 3 counter and 3 ping programs, and users (anvil dev accounts) sending to them;
- with `native=True` the native path: validator 0 also orders injected transactions
  (`DevNet(native=True)`), and each trial sends `injected_per_trial` of them
  (`faults.injected`) to the validators the fault does not kill or freeze.

A **trial** (`trial(kind, rng)`) streams `Mirror.sendMessage` requests (counter `inc`,
ping `PING`) for a few seconds while a fault of `kind` is injected at a random moment from
a thread (and recovered: the killed process restarted, the proxy healed), then checks:

1. every request transaction is on the canonical chain (those dropped by a reorg are
   re-broadcast, as a wallet would) and its message has exactly one answer on chain —
   read from a fresh `eth_getLogs` over the canonical chain, never from a cache;
2. the counters' replies are exactly previous+1 … previous+k (no message applied twice or
   skipped) and every validator's counter state equals what the chain says;
3. every validator reaches the chain head and its `block_result` (block hash, state root,
   batch commitment) equals validator 0's and the chain's block hash, for every block
   since the trial started;
4. a killed validator's store verifies (`Store.verify`: every CAS blob hashes to its key,
   block pointers resolve) before it is restarted;
5. with the native path on: every injected transaction a node accepted is final on that
   node (or executed exactly once everywhere, its promises lost), none runs twice in any
   validator's chain of sequencer blocks, those chains are equal, and refusals and
   expiries have an excuse (`faults.injected.InjectedLane.check`).

Every wait is bounded. Randomness comes from the `random.Random` handed in (its seed is
printed by the callers), so a failing trial can be replayed.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from gexe.devnet import DevNet, DevNetError, ValidatorProc

from .chaos import RpcProxy
from .injected import COUNTS as INJ_COUNTS
from .injected import Injected, InjectedLane, add_counts, empty_counts, latency_ms

SEQUENCER = 0
STORE_MAP_SIZE = 1 << 30
COUNTERS, PINGS, USERS = 3, 3, 6

# trial kinds, grouped as the issue groups them
CRASH_KINDS = ("kill_validator", "kill_sequencer", "kill_two", "cut_rpc")
CHAIN_KINDS = ("reorg", "rpc_errors", "rpc_timeouts", "rpc_truncate")
NETWORK_KINDS = ("partition_one", "partition_two", "pause_sequencer", "stutter")
KEEP_BLOCKS = 100_000
FINAL = 64  # blocks below the head that no fault here reorganises (reorgs are ≤ 5 deep)
KINDS = CRASH_KINDS + CHAIN_KINDS + NETWORK_KINDS


class TrialFailed(AssertionError):
    pass


def _hx(b: bytes) -> str:
    return "0x" + bytes(b).hex()


def _b(v: Any) -> bytes:
    if isinstance(v, str):
        return bytes.fromhex(v.removeprefix("0x"))
    return bytes(v)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    s = sorted(values)
    rank = max(1, -(-len(s) * q // 100))
    return s[int(rank) - 1]


def rss_kib(pid: int | None, field: str = "VmRSS") -> int | None:
    """Resident memory of a process from /proc/PID/status (Linux), KiB: `VmRSS` (all of
    it) or `RssAnon` (heap and stacks — what a leak grows; `RssFile` is mostly the
    memory-mapped LMDB store, which grows with the store)."""
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def disk_bytes(path: Path) -> int:
    """Bytes allocated on disk under `path` (sparse-aware)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.stat(os.path.join(root, f)).st_blocks * 512
            except OSError:
                pass
    return total


# ------------------------------------------------------------------ records


@dataclass
class Request:
    """One `Mirror.sendMessage` transaction, kept raw so it can be re-broadcast."""

    tx_hash: bytes
    raw: bytes
    sender: str
    nonce: int
    program: str
    kind: str  # "inc" | "ping"
    sent_at: float
    sent_head: int
    last_sent: float
    resent: int = 0


@dataclass
class Scan:
    """What the canonical chain says, from one `eth_getLogs`."""

    first: int
    last: int
    queued: dict[bytes, tuple[bytes, int]]  # request tx hash → (message id, block)
    answers: dict[bytes, list[tuple[str, int, bytes, bytes]]]  # id → [(kind, block, payload, code)]
    batches: int


@dataclass
class Outcome:
    """One trial's result."""

    kind: str
    detail: str
    requests: int = 0
    answered: int = 0
    lost: int = 0
    duplicated: int = 0
    divergences: int = 0
    counter_errors: int = 0
    store_problems: int = 0
    resent: int = 0
    first_block: int = 0
    last_block: int = 0
    seconds: float = 0.0
    latencies: list[int] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    injected: dict[str, Any] = field(default_factory=dict)  # `faults.injected` counts

    @property
    def ok(self) -> bool:
        return not (
            self.lost
            or self.duplicated
            or self.injected.get("lost")
            or self.injected.get("duplicated")
            or self.divergences
            or self.counter_errors
            or self.store_problems
            or self.errors
        )

    @property
    def word(self) -> str:
        """`ok` or `FAIL` (a `reverted` injected transaction is an error since b36158c)."""
        return "ok" if self.ok else "FAIL"

    def line(self) -> str:
        lat = percentile(self.latencies, 50)
        return (
            f"{self.kind:<15} {self.detail:<44} {self.requests:>3} req, lost {self.lost}, "
            f"dup {self.duplicated}, div {self.divergences}, resent {self.resent}, "
            f"p50 {lat} blk, blocks {self.first_block}-{self.last_block}, {self.seconds:.1f}s"
            + (
                f"; injected {i['sent']} sent, {i['preconfirmed']} preconf, "
                f"{i['executed_not_preconfirmed']} exec-only, {i['refused']} refused, "
                f"{i['expired']} expired, lost {i['lost']}, dup {i['duplicated']}"
                + (f", REVERTED {i['reverted']}" if i.get("reverted") else "")
                if (i := self.injected).get("sent")
                else ""
            )
            + (f"  ERRORS: {'; '.join(self.errors)}" if self.errors else "")
        )


@dataclass
class Totals:
    outcomes: list[Outcome] = field(default_factory=list)
    final: dict[str, Any] = field(default_factory=dict)  # whole-run checks

    def add(self, o: Outcome) -> None:
        self.outcomes.append(o)

    def figures(self) -> dict[str, Any]:
        os_ = self.outcomes
        lat = [x for o in os_ for x in o.latencies]
        lost = sum(o.lost for o in os_)
        dup = sum(o.duplicated for o in os_)
        div = sum(o.divergences + o.counter_errors + o.store_problems for o in os_)
        inj = empty_counts()
        for o in os_:
            add_counts(inj, o.injected)
        if self.final:  # the whole-run recount is authoritative where it exists
            lost = max(lost, self.final.get("lost_requests", 0))
            dup = max(dup, self.final.get("duplicated_requests", 0))
            div += sum(
                self.final.get(k, 0)
                for k in (
                    "fresh_sync_mismatches",
                    "store_problems",
                    "load_divergences",
                    "seq_mismatches",
                )
            )
            inj["lost"] = max(inj["lost"], self.final.get("injected_lost", 0))
            inj["duplicated"] = max(inj["duplicated"], self.final.get("injected_duplicated", 0))
        return {
            "fault_trials": len(os_),
            # a `reverted` injected transaction (faults.injected) is an error: not survived
            "faults_survived": sum(1 for o in os_ if o.ok and not o.injected.get("reverted")),
            "lost_requests": lost,
            "duplicated_requests": dup,
            "divergences": div,
            "requests": sum(o.requests for o in os_),
            "resent_after_reorg": sum(o.resent for o in os_),
            "trials_by_kind": dict(Counter(o.kind for o in os_)),
            "latency_blocks_p50": percentile(lat, 50),
            "latency_blocks_p95": percentile(lat, 95),
            "latency_blocks_max": max(lat) if lat else None,
            **{f"injected_{k}": inj[k] for k in INJ_COUNTS},
            "injected_refusals": inj["refusals"],
            **{
                k: v
                for k, v in self.final.items()
                if k
                not in (
                    "lost_requests",
                    "duplicated_requests",
                    "divergences",
                    "injected_lost",
                    "injected_duplicated",
                )
            },
        }

    def to_json(self) -> dict[str, Any]:
        return {
            **self.figures(),
            "trials": [
                {k: v for k, v in asdict(o).items() if k != "latencies"} for o in self.outcomes
            ],
        }


# ------------------------------------------------------------------ the network


class FaultNet:
    def __init__(
        self,
        directory: Path,
        *,
        seed: int,
        validators: int = 4,
        progress: Callable[[str], None] | None = None,
        rpc_timeout: float = 3.0,
        replayer: bool = False,
        replay_after: float = 125.0,
        native: bool = False,
        injected_per_trial: int = 6,
    ) -> None:
        self.dir = Path(directory)
        self.seed = seed
        self.n = validators
        self.say = progress or (lambda m: None)
        self.rpc_timeout = rpc_timeout
        self.use_replayer = replayer
        self.replay_after = replay_after
        self.rpc_proxies: dict[int, RpcProxy] = {}
        self.net: DevNet | None = None
        self.counters: list[str] = []
        self.pings: list[str] = []
        self.count: dict[str, int] = {}
        self.requests: list[Request] = []  # every request of the run
        self.totals = Totals()
        self.first_block = 0
        self.nonces: dict[str, int] = {}
        self._gas: dict[str, int] = {}
        self._data: dict[tuple[str, str], bytes] = {}
        self._rr = 0
        self._replayer: subprocess.Popen[bytes] | None = None
        self.stores_verified = 0
        self.stopped = False
        self.loads: list[dict[str, Any]] = []  # figures of each `load` run
        self._http: httpx.Client | None = None
        self._cache: dict[int, list[tuple[Any, ...]]] = {}  # block → our events (final)
        self._cached_upto = 0
        self.request_gas = 0  # eth_estimateGas of one request (the largest)
        # the native path: validator 0 also orders injected transactions; each trial sends
        # `injected_per_trial` of them (`faults.injected`)
        self.native = native
        self.injected_per_trial = injected_per_trial if native else 0
        self.inj: InjectedLane | None = None

    # -- lifecycle

    def _eth_url(self, i: int, anvil_url: str) -> str:
        if i not in self.rpc_proxies:
            self.rpc_proxies[i] = RpcProxy(anvil_url, seed=self.seed * 101 + i)
        return self.rpc_proxies[i].url

    def start(self) -> FaultNet:
        self.net = DevNet(
            self.dir,
            validators=self.n,
            block_time=1,
            users=8,
            progress=self.say,
            eth_rpc_url=self._eth_url,
            validator_env={
                "GEXE_ETHEREUM_REQUEST_TIMEOUT": f"{self.rpc_timeout:g}",
                "GEXE_NODE_KEEP_BLOCKS": str(KEEP_BLOCKS),
            },
            native=self.native,
        )
        try:
            self.net.start()
            net = self.net
            ex = net.setup_examples(("ping", "counter"), timeout=90)
            progs = net.create_programs(
                [(ex.codes["counter"].code_id, b"")] * COUNTERS
                + [(ex.codes["ping"].code_id, b"")] * PINGS
            )
            net.wait_answers([p.init_id for p in progs], 90)
            self.counters = [p.address for p in progs[:COUNTERS]]
            self.pings = [p.address for p in progs[COUNTERS:]]
            self.count = dict.fromkeys(self.counters, 0)
            self.first_block = int(net.w3.eth.block_number) + 1
            for prog in self.counters + self.pings:
                payload = b"inc" if prog in self.counters else b"PING"
                data = net.mirror(prog).contract.encode_abi("sendMessage", args=[payload, False])
                self._data[(prog, "x")] = _b(data)
                est = net.w3.eth.estimate_gas(
                    {"from": net.user(0).address, "to": prog, "data": self._data[(prog, "x")]}
                )
                self._gas[prog] = int(est * 1.5) + 20_000
                self.request_gas = max(self.request_gas, int(est))
            if self.native:
                self.inj = InjectedLane(self)
            if self.use_replayer:
                self._start_replayer()
            self.say(
                f"fault network ready: {self.n} validators behind RPC proxies "
                f"{', '.join(p.url for p in self.rpc_proxies.values())}; programs live from "
                f"block {self.first_block}"
                + (" ; gossip replayer on" if self.use_replayer else "")
                + (" ; native path on (validator 0 sequences injected txs)" if self.native else "")
            )
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        self.stopped = True
        if self._replayer is not None:
            self.totals.final.update(
                {f"gossip_{k}": v for k, v in self.replayer_stats().items() if k != "pid"}
            )
            self._replayer.send_signal(signal.SIGTERM)
            try:
                self._replayer.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._replayer.kill()
                self._replayer.wait(timeout=10)
        if self.net is not None:
            for p in self.net.procs:  # a frozen process cannot act on SIGTERM
                p.signal(signal.SIGCONT)
            self.net.stop()
        for p in self.rpc_proxies.values():
            p.close()

    @property
    def procs(self) -> list[ValidatorProc]:
        assert self.net is not None
        return self.net.procs

    @property
    def w3(self) -> Any:
        assert self.net is not None
        return self.net.w3

    def head(self) -> int:
        return int(self.w3.eth.block_number)

    # -- replayer (gossip duplicates)

    def _start_replayer(self) -> None:
        assert self.net is not None
        v0 = self.procs[0]
        cfg = {
            "chain_id": self.net.chain_id,
            "router": self.net.deployment.router,
            "bootnode": v0.p2p[0],
            "validators": [p.address for p in self.procs],
            "era": v0.status().get("era") or 0,
            "replay_after": self.replay_after,
            "status": str(self.dir / "replayer.json"),
        }
        (self.dir / "replayer-config.json").write_text(json.dumps(cfg))
        log = (self.dir / "replayer.log").open("ab")
        root = Path(__file__).resolve().parents[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("GEXE_")}
        env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")])
        self._replayer = subprocess.Popen(
            [sys.executable, "-m", "faults.replayer", str(self.dir / "replayer-config.json")],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=root,
            start_new_session=True,
        )
        log.close()

    def replayer_stats(self) -> dict[str, Any]:
        try:
            return dict(json.loads((self.dir / "replayer.json").read_text()))
        except (OSError, ValueError):
            return {}

    # -- requests

    def _sync_nonces(self) -> None:
        assert self.net is not None
        for u in self.net.users[:USERS]:
            self.nonces[u.address] = int(self.w3.eth.get_transaction_count(u.address, "pending"))

    def send(self, k: int, *, head: int | None = None) -> list[Request]:
        """Send `k` requests round-robin over programs and users, in one JSON-RPC batch of
        `eth_sendRawTransaction` (not waiting for receipts)."""
        assert self.net is not None
        net = self.net
        if not self.nonces:
            self._sync_nonces()
        progs = self.counters + self.pings
        head = self.head() if head is None else head
        out = []
        for _ in range(k):
            i = self._rr
            self._rr += 1
            prog = progs[i % len(progs)]
            user = net.users[(i // len(progs) + i) % USERS]
            nonce = self.nonces[user.address]
            tx = {
                "to": prog,
                "data": self._data[(prog, "x")],
                "value": 0,
                "gas": self._gas[prog],
                "maxFeePerGas": 200 * 10**9,
                "maxPriorityFeePerGas": 10**9,
                "nonce": nonce,
                "chainId": net.chain_id,
                "type": 2,
            }
            signed = user.sign_transaction(tx)
            self.nonces[user.address] = nonce + 1
            now = time.monotonic()
            kind = "inc" if prog in self.counters else "ping"
            raw, txh = bytes(signed.raw_transaction), bytes(signed.hash)
            out.append(Request(txh, raw, user.address, nonce, prog, kind, now, head, now))
        if out:
            body = [
                {
                    "jsonrpc": "2.0",
                    "id": n,
                    "method": "eth_sendRawTransaction",
                    "params": [_hx(r.raw)],
                }
                for n, r in enumerate(out)
            ]
            if self._http is None:
                self._http = httpx.Client(timeout=60)
            answers = self._http.post(net.url, json=body).json()
            errors = [a["error"] for a in answers if "error" in a]
            if errors:
                raise DevNetError(f"eth_sendRawTransaction: {errors[0]} ({len(errors)} failed)")
        self.requests += out
        return out

    def stream(
        self, seconds: float, rate: float, *, stop: threading.Event | None = None
    ) -> list[Request]:
        """`rate` requests per second for `seconds` (sent in 0.25-second ticks)."""
        out: list[Request] = []
        t0 = time.monotonic()
        owed = 0.0
        tick = 0.25
        while time.monotonic() - t0 < seconds and not (stop and stop.is_set()):
            owed += rate * tick
            k = int(owed)
            owed -= k
            if k:
                out += self.send(k)
            nxt = t0 + tick * (1 + int((time.monotonic() - t0) / tick))
            time.sleep(max(0.0, nxt - time.monotonic()))
        return out

    # -- reading the chain

    def _logs(self, first: int, last: int) -> dict[int, list[tuple[Any, ...]]]:
        """Our events of blocks first..last, decoded: block → [(name, key, value)]."""
        from gexe.contracts import LogDecoder

        dec = getattr(self, "_decoder", None) or LogDecoder(("Router", "Mirror"))
        self._decoder = dec
        out: dict[int, list[tuple[Any, ...]]] = {}
        for lo in range(first, last + 1, 200):
            hi = min(last, lo + 199)
            raw = self.w3.provider.make_request(
                "eth_getLogs", [{"fromBlock": hex(lo), "toBlock": hex(hi)}]
            )
            if "error" in raw:
                raise DevNetError(f"eth_getLogs: {raw['error']}")
            for d in dec.decode_all(raw["result"]):
                a = d.args
                blk = int(d.block_number or 0)
                if d.name == "MessageQueueingRequested":
                    e: tuple[Any, ...] = ("q", bytes(d.transaction_hash or b""), bytes(a["id"]))
                elif d.name == "Reply":
                    e = (
                        "a",
                        bytes(a["replyTo"]),
                        "reply",
                        bytes(a["payload"]),
                        bytes(a["replyCode"]),
                    )
                elif d.name == "ReplyCallFailed":
                    e = ("a", bytes(a["replyTo"]), "callback_failed", b"", bytes(a["replyCode"]))
                elif d.name == "BatchCommitted":
                    e = ("b",)
                else:
                    continue
                out.setdefault(blk, []).append(e)
        return out

    def scan(self, first: int, last: int | None = None) -> Scan:
        """Request → message id and message id → answers, read from the canonical chain
        (eth_getLogs). Blocks more than `FINAL` below the head are cached (no fault here
        reorganises deeper than 5); the rest is read again on every call, so a reorg
        never leaves stale entries."""
        last = self.head() if last is None else last
        final = last - FINAL
        if final > self._cached_upto:
            got = self._logs(self._cached_upto + 1, final)
            for n in range(self._cached_upto + 1, final + 1):
                if n in got:
                    self._cache[n] = got[n]
            self._cached_upto = final
        fresh = self._logs(max(first, self._cached_upto + 1), last)
        queued: dict[bytes, tuple[bytes, int]] = {}
        answers: dict[bytes, list[tuple[str, int, bytes, bytes]]] = {}
        batches = 0
        for n in range(first, last + 1):
            for e in self._cache.get(n, ()) if n <= self._cached_upto else fresh.get(n, ()):
                if e[0] == "q":
                    queued[e[1]] = (e[2], n)
                elif e[0] == "a":
                    answers.setdefault(e[1], []).append((e[2], n, e[3], e[4]))
                else:
                    batches += 1
        return Scan(first, last, queued, answers, batches)

    def _rebroadcast(self, reqs: Sequence[Request]) -> int:
        """Re-send the raw transactions anvil no longer knows (dropped by a reorg)."""
        n = 0
        now = time.monotonic()
        for r in reqs:
            if now - r.last_sent < 2.0:
                continue
            r.last_sent = now
            if self._known(r.tx_hash):
                continue
            try:
                self.w3.eth.send_raw_transaction(r.raw)
                r.resent += 1
                n += 1
            except Exception as e:  # "already known" after all, or the nonce was used
                if "already" not in str(e).lower():
                    raise
        return n

    def _known(self, txh: bytes) -> bool:
        out = self.w3.provider.make_request("eth_getTransactionByHash", [_hx(txh)])
        return bool(out.get("result"))

    def settle(
        self, reqs: Sequence[Request], first: int, timeout: float = 120.0, settle_blocks: int = 1
    ) -> Scan:
        """Wait until every request is on chain and answered (re-broadcasting dropped ones),
        then `settle_blocks` more blocks for duplicates; the final canonical scan."""
        deadline = time.monotonic() + timeout
        while True:
            sc = self.scan(first)
            missing = [r for r in reqs if r.tx_hash not in sc.queued]
            if missing:
                self._rebroadcast(missing)
            unanswered = [
                r
                for r in reqs
                if r.tx_hash in sc.queued and not sc.answers.get(sc.queued[r.tx_hash][0])
            ]
            if not missing and not unanswered:
                break
            if time.monotonic() > deadline:
                return sc
            time.sleep(0.3)
        target = self.head() + settle_blocks
        while self.head() < target and time.monotonic() < deadline + 30:
            time.sleep(0.2)
        return self.scan(first)

    # -- validators

    def call(self, i: int, method: str, *params: Any, timeout: float = 20.0) -> Any:
        return self.procs[i].call(method, *params, timeout=timeout)

    def batch_call(self, i: int, calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
        body = [
            {"jsonrpc": "2.0", "id": k, "method": m, "params": p} for k, (m, p) in enumerate(calls)
        ]
        r = httpx.post(self.procs[i].rpc_url + "/", json=body, timeout=60)
        by_id = {x["id"]: x for x in r.json()}
        out = []
        for k in range(len(calls)):
            x = by_id[k]
            if "error" in x:
                raise DevNetError(f"validator {i} {calls[k][0]}: {x['error']}")
            out.append(x["result"])
        return out

    def results(self, i: int, first: int, last: int) -> dict[int, tuple[str, str, str] | None]:
        out: dict[int, tuple[str, str, str] | None] = {}
        for lo in range(first, last + 1, 50):
            hi = min(last, lo + 49)
            got = self.batch_call(i, [("block_result", [n]) for n in range(lo, hi + 1)])
            for n, r in zip(range(lo, hi + 1), got, strict=True):
                out[n] = (r["hash"], r["state_root"], r["commitment"]) if r else None
        return out

    def wait_heads(
        self, target: int, timeout: float = 90.0, who: Sequence[int] | None = None
    ) -> None:
        idx = list(range(self.n)) if who is None else list(who)
        deadline = time.monotonic() + timeout
        while True:
            behind = []
            for i in idx:
                p = self.procs[i]
                if not p.alive():
                    raise TrialFailed(f"validator {i} is not running: {p.last_line()}")
                try:
                    h = p.status().get("head")
                except (httpx.HTTPError, ValueError, DevNetError):
                    h = None
                if h is None or h < target:
                    behind.append((i, h))
            if not behind:
                return
            if time.monotonic() > deadline:
                raise TrialFailed(f"validators stuck below block {target}: {behind}")
            time.sleep(0.2)

    def agreement(self, first: int, timeout: float = 90.0) -> tuple[int, int, list[str]]:
        """(mismatches, last block, what differed) over blocks first..now across all
        validators, and against the chain's block hashes."""
        last = self.head()
        self.wait_heads(last, timeout)
        ref = self.results(0, first, last)
        chain = {}
        for n in range(first, last + 1):
            chain[n] = _hx(self.w3.eth.get_block(n)["hash"])
        bad: list[str] = []
        for n, r in ref.items():
            if r is None or r[0] != chain[n]:
                bad.append(f"validator 0 block {n}: {r and r[0][:12]} vs chain {chain[n][:12]}")
        for i in range(1, self.n):
            got = self.results(i, first, last)
            for n in range(first, last + 1):
                if got[n] != ref[n]:
                    bad.append(f"validator {i} block {n}: {got[n]} vs validator 0 {ref[n]}")
        return len(bad), last, bad[:10]

    def counter_values(self) -> dict[int, list[int]]:
        """Each validator's `get` on every counter (head state, not written)."""
        src = self.procs[0].address
        out = {}
        for i in range(self.n):
            vals = []
            for c in self.counters:
                r = self.call(i, "program_calculateReplyForHandle", src, c, "0x" + b"get".hex(), 0)
                vals.append(int.from_bytes(_b(r["payload"]), "little"))
            out[i] = vals
        return out

    def store_path(self, i: int) -> Path:
        return self.procs[i].data_dir / "store"

    def verify_store(self, path: Path) -> list[str]:
        """Open a store (its process is stopped) and verify it; the problems found."""
        from gexe.node.store import Store

        with Store(path, map_size=STORE_MAP_SIZE, readonly=True) as s:
            rep = s.verify()
        self.stores_verified += 1
        probs = [f"{path}: CAS blob {k.hex()} does not hash to its key" for k in rep.mismatched]
        return probs + [f"{path}: {p}" for p in rep.problems]

    def kill(self, i: int) -> list[str]:
        """SIGKILL validator i and verify its store while it is down."""
        assert self.net is not None
        self.net.kill_validator(i, signal.SIGKILL)
        return self.verify_store(self.store_path(i))

    def restart(self, i: int) -> None:
        assert self.net is not None
        self.net.restart_validator(i)

    def peers(self, i: int) -> int:
        try:
            return int(self.procs[i].status().get("peers") or 0)
        except (httpx.HTTPError, ValueError, DevNetError):
            return 0

    def wait_peers(self, i: int, timeout: float = 45.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.peers(i) >= 1:
                return True
            time.sleep(0.25)
        return False

    def ensure_healthy(self) -> None:
        """Before a trial: every validator running (resumed, or restarted if it died),
        proxies clear."""
        for p in self.rpc_proxies.values():
            p.clear()
        for p in self.procs:
            p.signal(signal.SIGCONT)
        for i, p in enumerate(self.procs):
            if not p.alive():
                self.say(f"validator {i} was down before the trial ({p.last_line()}); restarting")
                self.restart(i)

    # -- trials

    def trial(
        self,
        kind: str,
        rng: random.Random,
        *,
        seconds: float = 3.0,
        rate: float = 6.0,
        settle_timeout: float = 150.0,
        **opts: Any,
    ) -> Outcome:
        """Stream requests for `seconds` at `rate`/s with a fault of `kind` injected at a
        random moment; recover; check. Returns the outcome (also added to `totals`)."""
        if kind not in KINDS:
            raise ValueError(f"unknown trial kind {kind!r}")
        self.ensure_healthy()
        self._sync_nonces()
        t0 = time.monotonic()
        first = self.head() + 1
        o = Outcome(kind, "", first_block=first)
        inj = _INJECTORS[kind](self, rng, o, seconds, opts)
        done = threading.Event()
        failure: list[BaseException] = []

        def run_injector() -> None:
            try:
                inj.run(done)
            except BaseException as e:  # reported by the main thread
                failure.append(e)

        inj_txs: list[Injected] = []
        inj_th, seq_from = self._injected_start(kind, inj, seconds, inj_txs)
        th = threading.Thread(target=run_injector, name=f"inject-{kind}", daemon=True)
        th.start()
        reqs = self.stream(seconds, rate)
        done.set()
        if inj_th is not None:
            inj_th.join(timeout=seconds + 60)
        th.join(timeout=180)
        if th.is_alive():
            o.errors.append("the injector did not finish in 180 s")
        if failure:
            o.errors.append(f"injector: {type(failure[0]).__name__}: {failure[0]}")
        self.ensure_healthy()  # whatever the injector did, everything runs again now
        reqs += inj.after(reqs)
        o.requests = len(reqs)
        # a reorg may re-include a request in a block before the trial's first (≤ 5 deep)
        sc = self.settle(reqs, max(self.first_block, first - 8), timeout=settle_timeout)
        self._account(o, reqs, sc)
        o.errors += inj.check(reqs, sc)
        if inj_th is not None:
            self._injected_check(
                o,
                inj_txs,
                seq_from,
                stalled_sequencer=inj.stalls_sequencer,
                reorg=kind == "reorg",
            )
        self._record_agreement(o, first)
        o.seconds = time.monotonic() - t0
        self.totals.add(o)
        self.say(f"{o.word:<5}" + o.line())
        return o

    # -- injected transactions (the native path)

    def injected_targets(self, victims: Sequence[int] = ()) -> list[int]:
        """Validators injected transactions go to: all but the fault's victims (a killed
        node's pool is in memory: its receipts die with it; a frozen node answers late)."""
        return [i for i in range(self.n) if i not in set(victims)]

    def _seq_from(self) -> int:
        """A sequencer height at or below every block this trial's transactions can land
        in (a reorg can revert a few; margin)."""
        assert self.inj is not None
        hs = [h for i in range(self.n) if (h := self.inj.seq_height(i)) is not None]
        return max(1, min(hs, default=1) - 30)

    def _injected_start(
        self, kind: str, inj: Injector, seconds: float, out: list[Injected]
    ) -> tuple[threading.Thread | None, int]:
        """Start sending this trial's injected transactions (a thread, evenly over the
        stream), to validators other than the fault's victims."""
        if self.inj is None or self.injected_per_trial <= 0:
            return None, 0
        seq_from = self._seq_from()
        lane = self.inj
        targets = self.injected_targets(inj.victims)

        def run() -> None:
            try:
                lane.stream(self.injected_per_trial, seconds, targets, kind, out=out)
            except Exception as e:  # noqa: BLE001 - reported on the outcome
                inj.o.errors.append(f"injected stream: {type(e).__name__}: {e}"[:200])

        th = threading.Thread(target=run, name=f"injected-{kind}", daemon=True)
        th.start()
        return th, seq_from

    def _injected_check(
        self,
        o: Outcome,
        txs: Sequence[Injected],
        seq_from: int,
        *,
        stalled_sequencer: bool,
        reorg: bool,
        settle_timeout: float = 90.0,
    ) -> None:
        """Settle `txs` (their receipts final on the accepting node), then check them
        against every validator's chain of sequencer blocks from `seq_from`; the counts go
        to `o.injected`, problems to `o.errors`, differing sequencer blocks to
        `o.divergences`."""
        assert self.inj is not None
        lane = self.inj
        try:
            lane.settle(txs, timeout=settle_timeout)
            top = lane.wait_heights(60)
            runs, bad, compared = lane.chains(seq_from, top)
        except Exception as e:  # noqa: BLE001 - a check that could not run fails the trial
            o.errors.append(f"injected check: {type(e).__name__}: {e}"[:300])
            o.injected = empty_counts()
            o.injected["lost"] = sum(1 for t in txs if t.accepted)
            return
        counts, errs = lane.check(txs, runs, stalled_sequencer=stalled_sequencer, reorg=reorg)
        o.injected = counts
        o.errors += errs
        o.notes["seq_blocks_compared"] = compared
        if bad:
            o.divergences += len(bad)
            o.errors.append("sequencer blocks differ: " + " | ".join(bad[:3]))
        if counts["executed_not_preconfirmed"]:
            o.notes["executed_not_preconfirmed"] = [
                t.tx_hash for t in txs if t.verdict == "executed_not_preconfirmed"
            ][:5]

    def _record_agreement(self, o: Outcome, first: int) -> None:
        """Every validator against validator 0 and the chain from block `first` on: the
        divergences and any failure to compare go into `o`."""
        try:
            div, last, bad = self.agreement(first)
            o.divergences, o.last_block = div, last
            if bad:
                o.errors.append("divergence: " + " | ".join(bad[:3]))
        except TrialFailed as e:
            o.divergences += 1
            o.errors.append(str(e))

    def _account(self, o: Outcome, reqs: Sequence[Request], sc: Scan) -> None:
        o.resent = sum(1 for r in reqs if r.resent)
        inc_values: dict[str, list[int]] = {c: [] for c in self.counters}
        for r in reqs:
            q = sc.queued.get(r.tx_hash)
            if q is None:
                o.lost += 1
                self._why_lost(o, r, None)
                continue
            mid, blk = q
            ans = sc.answers.get(mid, [])
            if not ans:
                o.lost += 1
                self._why_lost(o, r, q)
                continue
            o.answered += 1
            if len(ans) > 1:
                o.duplicated += 1
            o.latencies.append(ans[0][1] - blk)
            kind, _, payload, code = ans[0]
            if code[:1] != b"\x00":
                o.errors.append(f"request {_hx(r.tx_hash)[:12]}: error reply 0x{code.hex()}")
            elif r.kind == "inc" and len(payload) == 8:
                inc_values[r.program].append(int.from_bytes(payload, "little"))
        if o.lost:
            o.errors.append(f"{o.lost} of {len(reqs)} requests not answered")
        if o.duplicated:
            o.errors.append(f"{o.duplicated} requests answered more than once")
        # exactly once in the programs: each counter's replies are prev+1 … prev+k
        for c, vals in inc_values.items():
            prev = self.count[c]
            want = list(range(prev + 1, prev + len(vals) + 1))
            if sorted(vals) != want:
                o.counter_errors += 1
                o.errors.append(f"counter {c[:10]}: replies {sorted(vals)[:8]}… want {want[:8]}…")
            self.count[c] = max([prev, *vals])
        try:
            self.wait_heads(self.head(), 60)
            got = self.counter_values()
            want = [self.count[c] for c in self.counters]
            for i, vals in got.items():
                if vals != want:
                    o.counter_errors += 1
                    o.errors.append(f"validator {i} counters {vals}, chain says {want}")
        except TrialFailed as e:
            o.errors.append(str(e))

    # -- sustained load

    def processes(self) -> dict[str, int | None]:
        """name → pid of every process of the network."""
        assert self.net is not None
        out: dict[str, int | None] = {f"validator{i}": p.pid for i, p in enumerate(self.procs)}
        out["anvil"] = self.net.anvil.pid if self.net.anvil else None
        if self._replayer is not None:
            out["replayer"] = self._replayer.pid
        return out

    def load(
        self,
        rate: float,
        seconds: float,
        *,
        sample_every: float = 10.0,
        max_latency: int = 5,
        settle_timeout: float = 300.0,
        injected_rate: float = 0.0,
    ) -> tuple[Outcome, dict[str, Any]]:
        """Requests at `rate`/s for `seconds` with no fault: the checks of a trial, and the
        figures — rates sent and answered, latency percentiles in blocks (overall, first
        and last minute), RSS of every process (start, end, peak; and its anonymous part,
        without the mapped store; /proc), each store's size
        on disk (start, end). `held`: everything answered, p95 latency and the drain after
        the stream within `max_latency` blocks. With the native path on and
        `injected_rate` > 0, injected transactions at that rate alongside (round robin over
        every validator), their receipts polled every 0.25 s while the stream lasts: the
        `injected_*` figures (sent, preconfirmed, rate, latency to preconfirmed in ms — to
        the poll that saw it — lost, duplicated); `held` then also needs every injected
        transaction pre-confirmed and sent at ≥ 90 % of the rate."""
        self.ensure_healthy()
        self._sync_nonces()
        first = self.head() + 1
        o = Outcome("load", f"{rate:g} req/s for {seconds:g}s", first_block=first)
        inj_txs: list[Injected] = []
        inj_stop = threading.Event()
        inj_threads: list[threading.Thread] = []
        seq_from = 0
        lane = self.inj
        if lane is not None and injected_rate > 0:
            o.detail += f" + {injected_rate:g} injected/s"
            seq_from = self._seq_from()
            targets = self.injected_targets()

            def send() -> None:
                try:
                    lane.stream(None, seconds, targets, "load", rate=injected_rate, out=inj_txs)
                except Exception as e:  # noqa: BLE001 - reported on the outcome
                    o.errors.append(f"injected stream: {type(e).__name__}: {e}"[:200])

            def poll() -> None:
                with httpx.Client() as http:
                    deadline = time.monotonic() + seconds + 600
                    while not inj_stop.is_set() and time.monotonic() < deadline:
                        try:
                            lane.poll(http, list(inj_txs))
                        except Exception:  # noqa: BLE001 - the settle after re-reads all
                            pass
                        inj_stop.wait(0.25)

            inj_threads = [
                threading.Thread(target=send, name="injected-load", daemon=True),
                threading.Thread(target=poll, name="injected-poll", daemon=True),
            ]
            for th in inj_threads:
                th.start()
        pids = self.processes()
        rss0 = {k: rss_kib(v) for k, v in pids.items()}
        anon0 = {k: rss_kib(v, "RssAnon") for k, v in pids.items()}
        peak = {k: v or 0 for k, v in rss0.items()}
        store0 = {i: disk_bytes(self.store_path(i)) for i in range(self.n)}
        t0 = time.monotonic()
        reqs: list[Request] = []
        samples = []
        while (el := time.monotonic() - t0) < seconds:
            reqs += self.stream(min(sample_every, seconds - el), rate)
            now = {k: rss_kib(v) for k, v in pids.items()}
            for k, v in now.items():
                peak[k] = max(peak[k], v or 0)
            samples.append(
                {
                    "t": round(time.monotonic() - t0, 1),
                    "sent": len(reqs),
                    "head": self.head(),
                    "rss_kib": now,
                    "rss_anon_kib": {k: rss_kib(v, "RssAnon") for k, v in pids.items()},
                }
            )
        sent_s = time.monotonic() - t0
        end_head = self.head()
        o.requests = len(reqs)
        if inj_threads:
            inj_threads[0].join(timeout=120)
        sc = self.settle(reqs, first, timeout=settle_timeout)
        self._account(o, reqs, sc)
        inj_fig: dict[str, Any] = {}
        if inj_threads:
            inj_stop.set()
            inj_threads[1].join(timeout=60)
            self._injected_check(
                o, inj_txs, seq_from, stalled_sequencer=False, reorg=False, settle_timeout=120
            )
            c = o.injected
            sent_at = [t.sent_at for t in inj_txs]
            span = (max(sent_at) - min(sent_at)) if len(sent_at) > 1 else 0.0
            span = span * len(sent_at) / (len(sent_at) - 1) if len(sent_at) > 1 else sent_s
            inj_fig = {
                "injected_rate_target": injected_rate,
                "injected_sent": c["sent"],
                "injected_accepted": c["accepted"],
                "injected_preconfirmed": c["preconfirmed"],
                "injected_executed_not_preconfirmed": c["executed_not_preconfirmed"],
                "injected_refused": c["refused"],
                "injected_expired": c["expired"],
                "injected_lost": c["lost"],
                "injected_duplicated": c["duplicated"],
                "injected_refusals": c["refusals"],
                "injected_rate_sent": round(c["sent"] / max(span, 1e-9), 2),
                "injected_rate_preconfirmed": round(c["preconfirmed"] / max(span, 1e-9), 2),
                "injected_latency_ms_p50": latency_ms(inj_txs, 50),
                "injected_latency_ms_p99": latency_ms(inj_txs, 99),
                "injected_latency_ms_max": latency_ms(inj_txs, 100),
                "injected_held": (
                    c["sent"] > 0
                    and c["preconfirmed"] == c["sent"]
                    and c["sent"] / max(span, 1e-9) >= 0.9 * injected_rate
                ),
            }
        self._record_agreement(o, first)
        o.seconds = time.monotonic() - t0
        rss1 = {k: rss_kib(v) for k, v in pids.items()}
        anon1 = {k: rss_kib(v, "RssAnon") for k, v in pids.items()}
        for k, v in rss1.items():
            peak[k] = max(peak[k], v or 0)
        store1 = {i: disk_bytes(self.store_path(i)) for i in range(self.n)}
        answer_blocks = [
            sc.answers[sc.queued[r.tx_hash][0]][0][1]
            for r in reqs
            if r.tx_hash in sc.queued and sc.answers.get(sc.queued[r.tx_hash][0])
        ]
        drain = (max(answer_blocks) - end_head) if answer_blocks else None
        per_min = max(1, int(60 / max(sent_s / max(1, len(reqs)), 1e-9)))  # requests a minute
        lat = o.latencies
        p95 = percentile(lat, 95)
        held = o.ok and p95 is not None and p95 <= max_latency and (drain or 0) <= max_latency
        if inj_fig:
            held = held and bool(inj_fig["injected_held"])
        fig = {
            "rate_target": rate,
            "seconds": round(sent_s, 1),
            "requests": len(reqs),
            "rate_sent": round(len(reqs) / sent_s, 2),
            "rate_answered": round(o.answered / sent_s, 2),
            "held": held,
            "lost": o.lost,
            "duplicated": o.duplicated,
            "divergences": o.divergences + o.counter_errors,
            "latency_blocks_p50": percentile(lat, 50),
            "latency_blocks_p95": p95,
            "latency_blocks_p99": percentile(lat, 99),
            "latency_blocks_max": max(lat) if lat else None,
            "latency_blocks_p95_first_minute": percentile(lat[:per_min], 95),
            "latency_blocks_p95_last_minute": percentile(lat[-per_min:], 95),
            "drain_blocks_after_stream": drain,
            "blocks": (o.last_block or end_head) - first + 1,
            "rss_kib_start": rss0,
            "rss_kib_end": rss1,
            "rss_kib_peak": peak,
            "rss_growth_kib": {
                k: (rss1[k] - rss0[k]) if rss1[k] is not None and rss0[k] is not None else None
                for k in pids
            },
            "rss_anon_kib_start": anon0,
            "rss_anon_kib_end": anon1,
            "rss_anon_growth_kib": {
                k: (anon1[k] - anon0[k]) if anon1[k] is not None and anon0[k] is not None else None
                for k in pids
            },
            "store_bytes_start": {f"validator{i}": v for i, v in store0.items()},
            "store_bytes_end": {f"validator{i}": v for i, v in store1.items()},
            "store_growth_bytes_per_request": round(
                sum(store1[i] - store0[i] for i in range(self.n)) / self.n / max(1, len(reqs)), 1
            ),
            **inj_fig,
            "samples": samples,
        }
        self.loads.append(fig)
        self.totals.final["load_divergences"] = (
            self.totals.final.get("load_divergences", 0) + fig["divergences"]
        )
        self.say(
            ("ok   " if o.ok else "FAIL ")
            + f"load {rate:g}/s for {sent_s:.0f}s: sent {fig['rate_sent']}/s, answered "
            f"{fig['rate_answered']}/s, p50/p95 {fig['latency_blocks_p50']}/{p95} blocks, "
            f"drain {drain} blocks, held {held}"
            + (
                f"; injected {inj_fig['injected_sent']} sent at {inj_fig['injected_rate_sent']}/s, "
                f"{inj_fig['injected_preconfirmed']} preconfirmed, p50/p99 "
                f"{inj_fig['injected_latency_ms_p50']}/{inj_fig['injected_latency_ms_p99']} ms, "
                f"lost {inj_fig['injected_lost']}, dup {inj_fig['injected_duplicated']}"
                if inj_fig
                else ""
            )
            + (f"  ERRORS: {'; '.join(o.errors)}" if o.errors else "")
        )
        return o, fig

    def find_rate(
        self,
        *,
        start: float = 4.0,
        factor: float = 1.5,
        step_seconds: float = 30.0,
        max_latency: int = 5,
        limit: float = 500.0,
        injected_rate: float = 0.0,
    ) -> tuple[float | None, list[dict[str, Any]]]:
        """Raise the request rate by `factor` from `start` (each step `step_seconds`) until
        the network no longer holds it (or the sender cannot send it); the highest held."""
        best = None
        steps = []
        rate = min(start, limit)
        while True:
            o, fig = self.load(
                rate, step_seconds, max_latency=max_latency, injected_rate=injected_rate
            )
            steps.append({k: v for k, v in fig.items() if k != "samples"})
            if not fig["held"] or fig["rate_sent"] < 0.9 * rate:
                break
            best = rate
            if rate >= limit:
                break
            rate = min(round(rate * factor, 1), limit)  # the limit itself is the last step
        return best, steps

    def _why_lost(self, o: Outcome, r: Request, q: tuple[bytes, int] | None) -> None:
        """What is known of a request that got no answer (for the report)."""
        lost = o.notes.setdefault("lost", [])
        if len(lost) >= 5:
            return
        d: dict[str, Any] = {"tx": _hx(r.tx_hash), "sender": r.sender, "nonce": r.nonce}
        d["resent"] = r.resent
        try:
            tx = self.w3.provider.make_request("eth_getTransactionByHash", [_hx(r.tx_hash)])
            d["tx_block"] = (tx.get("result") or {}).get("blockNumber")
            d["sender_nonce_now"] = int(self.w3.eth.get_transaction_count(r.sender))
            if q is not None:
                mid, blk = q
                d["message"], d["block"] = _hx(mid), blk
                ran = []
                for n in range(blk, min(self.head(), blk + 30) + 1):
                    res = self.call(0, "block_result", n) or {}
                    for x in res.get("dispatches", []):
                        if x.get("message_id") == _hx(mid):
                            ran.append((n, x.get("status")))
                d["executed_by_v0"] = ran
        except Exception as e:  # noqa: BLE001 - diagnostics only
            d["diag_error"] = f"{type(e).__name__}: {e}"[:200]
        lost.append(d)

    # -- whole run

    def final_check(self) -> dict[str, Any]:
        """Every request of the run, recounted from the canonical chain from the first
        block: lost, duplicated; and answers to messages nobody sent."""
        sc = self.scan(self.first_block)
        lost = dup = 0
        ids = set()
        for r in self.requests:
            q = sc.queued.get(r.tx_hash)
            if q is None or not sc.answers.get(q[0]):
                lost += 1
                continue
            ids.add(q[0])
            if len(sc.answers[q[0]]) > 1:
                dup += 1
        out = {
            "requests_total": len(self.requests),
            "lost_requests": lost,
            "duplicated_requests": dup,
            "blocks": sc.last - self.first_block + 1,
            "batches_committed": sc.batches,
        }
        if self.inj is not None:
            out.update(self.injected_final_check())
        self.totals.final.update(out)
        return out

    def injected_final_check(self) -> dict[str, Any]:
        """Every injected transaction of the run against every validator's whole chain of
        sequencer blocks (from height 1): executed at most once anywhere; those counted
        pre-confirmed or executed executed exactly once on every validator, the others
        nowhere; every validator's sequencer blocks equal validator 0's."""
        assert self.inj is not None
        lane = self.inj
        top = lane.wait_heights(90)
        runs, bad, compared = lane.chains(1, top)
        dup = lost = wrong = 0
        for t in lane.all:
            r = runs.get(t.tx_hash, [0] * self.n)
            if max(r) > 1:
                dup += 1
            if t.verdict in ("preconfirmed", "executed_not_preconfirmed"):
                lost += not all(x == 1 for x in r)
            elif t.verdict and t.verdict != "reverted" and max(r):  # refused, expired, unsent
                wrong += 1
        return {
            "injected_total": len(lane.all),
            "injected_reverted_then_ran": sum(
                1 for t in lane.all if t.verdict == "reverted" and max(runs.get(t.tx_hash, [0]))
            ),
            "injected_lost": lost,
            "injected_duplicated": dup,
            "injected_ran_though_not_accepted": wrong,
            "seq_blocks_compared": compared,
            "seq_mismatches": len(bad),
            "seq_mismatch_examples": bad[:5],
        }

    def fresh_sync(self, timeout: float | None = None) -> tuple[int, list[str]]:
        """Start a validator with an empty store after the fact (no key: it only follows
        the chain, straight from anvil), let it sync from the Router's deployment block,
        and compare its block results with every validator's; then stop it and verify its
        store. Returns (mismatches, what differed).

        With the native path on, a node without a key cannot follow: sequencer blocks come
        only over gossip, and a node joins gossip only with a key
        (`validator/service.py::_run_gossip`). So the fresh node stands in for the last
        validator: that one is stopped (SIGTERM), the fresh node gets a copy of its
        keystore (never two live nodes with one key), follows the sequencer from height 1
        (asking peers for the blocks it lacks) and is compared with the others; the
        validator is restarted afterwards."""
        assert self.net is not None
        home = self.dir / "fresh"
        p = ValidatorProc(self.n, "", home)
        p.data_dir.mkdir(parents=True, exist_ok=True)
        stand_in = self.n - 1 if self.native else None
        if stand_in is not None:
            import shutil

            self.net.kill_validator(stand_in, signal.SIGTERM)
            src = self.procs[stand_in]
            shutil.copytree(src.data_dir / "keystore", p.data_dir / "keystore")
            shutil.copy2(src.home / "password.txt", home / "password.txt")
        others = [i for i in range(self.n) if i != stand_in]
        p.config.write_text(
            f"""# gexe fault suite: a validator synced from scratch after the faults
[node]
data_dir = "data"
log_level = "info"
store_map_size = {STORE_MAP_SIZE}
keep_blocks = {KEEP_BLOCKS}

[ethereum]
rpc_url = "{self.net.url}"
router_address = "{self.net.deployment.router}"
confirmation_depth = 0
poll_interval = 0.1

[rpc]
host = "127.0.0.1"
port = 0
rate_limit = 0

[metrics]
enabled = false
"""
            + self._fresh_native_text()
        )
        p.launch()
        bad: list[str] = []
        try:
            deadline = time.monotonic() + 60
            while not p.poll_started():
                if time.monotonic() > deadline:
                    raise TrialFailed(f"the fresh validator did not start: {p.last_line()}")
                time.sleep(0.1)
            last = self.head()
            if timeout is None:  # ~1,000 messages/s when replaying; generous
                timeout = 240.0 + len(self.requests) / 200
            deadline = time.monotonic() + timeout

            def head() -> int:
                try:  # busy replaying, it may answer slowly
                    return int(p.call("node_status", timeout=30).get("head") or 0)
                except (httpx.HTTPError, ValueError, DevNetError):
                    return 0

            while head() < last:
                if time.monotonic() > deadline:
                    raise TrialFailed(f"the fresh validator did not reach block {last}")
                if not p.alive():
                    raise TrialFailed(f"the fresh validator exited: {p.last_line()}")
                time.sleep(0.5)
            self.wait_heads(last, 90, who=others)
            first = self.first_block
            mine: dict[int, Any] = {}
            for lo in range(first, last + 1, 50):
                hi = min(last, lo + 49)
                body = [
                    {"jsonrpc": "2.0", "id": n, "method": "block_result", "params": [n]}
                    for n in range(lo, hi + 1)
                ]
                for x in httpx.post(p.rpc_url + "/", json=body, timeout=60).json():
                    r = x.get("result")
                    mine[x["id"]] = (r["hash"], r["state_root"], r["commitment"]) if r else None
            for i in others:
                got = self.results(i, first, last)
                for n in range(first, last + 1):
                    if got[n] != mine[n]:
                        bad.append(f"validator {i} block {n}: {got[n]} vs fresh {mine[n]}")
        finally:
            if p.proc is not None:
                p.signal(signal.SIGTERM)
                try:
                    p.proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.signal(signal.SIGKILL)
                    p.proc.wait(timeout=10)
            if stand_in is not None and not self.procs[stand_in].alive():
                self.restart(stand_in)
        bad += self.verify_store(p.data_dir / "store")
        self.totals.final["fresh_sync_blocks"] = self.head() - self.first_block + 1
        self.totals.final["fresh_sync_mismatches"] = len(bad)
        return len(bad), bad[:10]

    def _fresh_native_text(self) -> str:
        """With the native path on, the fresh validator follows the sequencer too: its
        state roots fold in the sequencer blocks' effects, which it fetches over gossip
        (`SequencerBlockRequest`, answered from every validator's store)."""
        if not self.native:
            return ""
        boot = [a for q in self.procs[: self.n - 1] for a in q.p2p[:1]]
        return (
            f'\n[p2p]\nlisten = "/ip4/127.0.0.1/tcp/0"\nbootnodes = {json.dumps(boot)}\n'
            '\n[validator]\npassword_file = "password.txt"\n'
            f'\n[native]\nsequencer = "{self.procs[SEQUENCER].address}"\n'
        )

    def stop_and_verify(self) -> list[str]:
        """Stop the network and verify every validator's store."""
        self.stop()
        probs: list[str] = []
        for i in range(self.n):
            probs += self.verify_store(self.store_path(i))
        self.totals.final["stores_verified"] = self.stores_verified
        self.totals.final["store_problems"] = len(probs)
        return probs


# ------------------------------------------------------------------ injectors


class Injector:
    """One fault: `run(done)` in a thread while requests stream (`done` is set when the
    stream ends), then `after(reqs)` may send more requests, `check` adds errors."""

    def __init__(
        self, fn: FaultNet, rng: random.Random, o: Outcome, seconds: float, opts: dict[str, Any]
    ) -> None:
        self.fn, self.rng, self.o, self.seconds, self.opts = fn, rng, o, seconds, opts
        self.at = rng.uniform(0.2, max(0.3, seconds - 0.8))  # when, into the stream
        self.victims: list[int] = []  # validators killed or frozen (no injected tx to them)

    @property
    def stalls_sequencer(self) -> bool:
        """Whether the fault stops the sequencer (SIGKILL or SIGSTOP of validator 0): then
        an injected transaction may legitimately expire before it is ordered."""
        return SEQUENCER in self.victims

    def wait_until(self, t: float, t0: float) -> None:
        time.sleep(max(0.0, t0 + t - time.monotonic()))

    def run(self, done: threading.Event) -> None:
        raise NotImplementedError

    def after(self, reqs: list[Request]) -> list[Request]:
        return []

    def check(self, reqs: list[Request], sc: Scan) -> list[str]:
        return []


class KillValidators(Injector):
    """SIGKILL validators (random ones among 1…n-1, or the sequencer), verify their stores
    while they are down, restart them after a random 0.3–3 s."""

    def __init__(
        self,
        fn: FaultNet,
        rng: random.Random,
        o: Outcome,
        seconds: float,
        opts: dict[str, Any],
        *,
        which: str,
    ) -> None:
        super().__init__(fn, rng, o, seconds, opts)
        others = list(range(1, fn.n))
        if which == "sequencer":
            self.victims = [SEQUENCER]
        elif which == "two":
            self.victims = sorted(rng.sample(others, 2))
        else:
            self.victims = [rng.choice(others)]
        self.down = rng.uniform(0.3, 3.0)
        o.detail = (
            f"SIGKILL v{','.join(map(str, self.victims))} at +{self.at:.1f}s, down {self.down:.1f}s"
        )

    def run(self, done: threading.Event) -> None:
        t0 = time.monotonic()
        self.wait_until(self.at, t0)
        t_kill = time.monotonic()
        probs = []
        for v in self.victims:
            probs += self.fn.kill(v)
        self.o.notes["killed_at_head"] = self.fn.head()
        self.o.store_problems += len(probs)
        self.o.errors += probs[:3]
        time.sleep(max(0.0, t_kill + self.down - time.monotonic()))
        for v in self.victims:
            self.fn.restart(v)
        self.o.notes["restarted_after_s"] = round(time.monotonic() - t_kill, 2)


class CutRpc(Injector):
    """Every validator's connection to anvil reset and refused for 1–4 s."""

    def __init__(self, *a: Any) -> None:
        super().__init__(*a)
        self.dur = self.rng.uniform(1.0, 4.0)
        self.o.detail = f"anvil RPC cut for all at +{self.at:.1f}s for {self.dur:.1f}s"

    def run(self, done: threading.Event) -> None:
        self.wait_until(self.at, time.monotonic())
        for p in self.fn.rpc_proxies.values():
            p.set_fault("cut", seconds=self.dur)
        time.sleep(self.dur)


class RpcFaults(Injector):
    """JSON-RPC faults on one validator's or every validator's anvil connection."""

    MODES: tuple[str, ...] = ()

    def __init__(self, *a: Any) -> None:
        super().__init__(*a)
        fn, rng = self.fn, self.rng
        self.targets = list(range(fn.n)) if rng.random() < 0.5 else [rng.randrange(fn.n)]
        self.mode = {i: rng.choice(self.MODES) for i in self.targets}
        self.dur = rng.uniform(2.0, 5.0)
        self.prob = rng.uniform(0.3, 0.8)
        self.hang = rng.uniform(fn.rpc_timeout + 0.5, fn.rpc_timeout + 2.0)
        modes = ",".join(sorted(set(self.mode.values())))
        who = "all" if len(self.targets) == fn.n else f"v{self.targets[0]}"
        self.o.detail = f"{modes} p={self.prob:.2f} on {who} for {self.dur:.1f}s"

    def run(self, done: threading.Event) -> None:
        self.wait_until(self.at, time.monotonic())
        for i in self.targets:
            self.fn.rpc_proxies[i].set_fault(
                self.mode[i], seconds=self.dur, prob=self.prob, hang_seconds=self.hang
            )
        time.sleep(self.dur)


class RpcErrors(RpcFaults):
    MODES = ("http_error", "rpc_error", "drop")


class RpcTimeouts(RpcFaults):
    MODES = ("hang", "slow")


class RpcTruncate(RpcFaults):
    MODES = ("truncate",)


class Reorg(Injector):
    """`anvil_reorg` of depth 1–5 during the stream: the last blocks are replaced by as many
    new ones; some of our dropped transactions are re-included in the new blocks (a
    per-sender prefix, so nonces stay in order), the others are re-broadcast by `settle`.
    The sequencer's dropped commits are left for it to notice."""

    def __init__(self, *a: Any) -> None:
        super().__init__(*a)
        self.depth = int(self.opts.get("depth") or self.rng.randint(1, 5))
        self.at = max(self.at, self.seconds * 0.5)  # so the reorged blocks hold requests
        self.o.detail = f"anvil_reorg depth {self.depth} at +{self.at:.1f}s"

    def run(self, done: threading.Event) -> None:
        from web3 import Web3

        assert self.fn.net is not None
        net = self.fn.net
        w3 = Web3(Web3.HTTPProvider(net.url, request_kwargs={"timeout": 60}))
        users = {u.address for u in net.users}
        self.wait_until(self.at, time.monotonic())
        self.before = {i: self._reorgs(i) for i in range(self.fn.n)}
        w3.provider.make_request("evm_setIntervalMining", [0])
        try:
            head = int(w3.eth.block_number)
            dropped = []
            for n in range(head - self.depth + 1, head + 1):
                b = w3.eth.get_block(n, full_transactions=True)
                dropped += [tx for tx in b["transactions"] if tx["from"] in users]
            by_sender: dict[str, list[Any]] = {}
            for tx in dropped:
                by_sender.setdefault(tx["from"], []).append(tx)
            keep = []
            for txs in by_sender.values():
                keep += txs[: self.rng.randint(0, len(txs))]
            keep.sort(key=lambda t: (t["blockNumber"], t["transactionIndex"]))
            offsets = sorted(self.rng.randrange(self.depth) for _ in keep)
            pairs = []
            for tx, off in zip(keep, offsets, strict=True):
                raw = w3.provider.make_request("eth_getRawTransactionByHash", [_hx(tx["hash"])])
                pairs.append([raw["result"], off])
            out = w3.provider.make_request("anvil_reorg", [self.depth, pairs])
            if "error" in out:
                raise TrialFailed(f"anvil_reorg: {out['error']}")
            self.o.notes.update(
                reorg_head=head, dropped=len(dropped), reincluded=len(keep), depth=self.depth
            )
        finally:
            w3.provider.make_request("evm_setIntervalMining", [1])

    def _reorgs(self, i: int) -> int:
        return int(self.fn.procs[i].status().get("reorgs") or 0)

    def check(self, reqs: list[Request], sc: Scan) -> list[str]:
        # diagnostic only: a validator that had not reached the replaced blocks yet never
        # saw the old branch, so it has nothing to roll back
        self.o.notes["validators_rolled_back"] = sum(
            1 for i in range(self.fn.n) if self._reorgs(i) > self.before.get(i, 0)
        )
        return []


class Partition(Injector):
    """Cut `k` validators among 1…n-1 off the network by freezing them (SIGSTOP: a black
    hole — no FIN or RST, their peers keep the connections; see `chaos` for why not a
    proxy), for the stream and beyond, then SIGCONT. With k = 1, 3 of 4 equal stakes
    (> 2/3) stay connected: every request sent during the partition must be answered
    before it heals. With k = 2 (half the stake) nothing may be committed: 4 blocks pass
    with no answer to a request sent during the partition; all are answered once it
    heals. The frozen validators must then catch up and sign batches again."""

    def __init__(self, *a: Any, k: int) -> None:
        super().__init__(*a)
        self.k = k
        self.victims = sorted(self.rng.sample(range(1, self.fn.n), k))
        self.at = self.rng.uniform(0.2, 0.6)
        self.o.detail = f"SIGSTOP v{','.join(map(str, self.victims))} at +{self.at:.1f}s"
        self.cut_at = 0.0
        self.signed_before: dict[int, int] = {}

    def run(self, done: threading.Event) -> None:
        fn = self.fn
        self.wait_until(self.at, time.monotonic())
        for v in self.victims:
            self.signed_before[v] = int(fn.procs[v].status().get("batches_signed") or 0)
        for v in self.victims:
            fn.procs[v].signal(signal.SIGSTOP)
        self.cut_at = time.monotonic()
        cut_head = fn.head()
        try:
            done.wait(timeout=self.seconds + 5)
            during = [r for r in fn.requests if r.sent_at > self.cut_at + 1.0]
            if self.k == 1:
                ok = self._wait_answered(during, 60)
                self.o.notes["answered_while_partitioned"] = f"{ok}/{len(during)}"
                if ok < len(during):
                    self.o.errors.append(
                        f"only {ok}/{len(during)} requests answered while 3/4 were connected"
                    )
            else:
                t_end = fn.head() + 4
                while fn.head() < t_end:
                    time.sleep(0.2)
                sc = fn.scan(cut_head)
                early = sum(
                    1
                    for r in during
                    if r.tx_hash in sc.queued and sc.answers.get(sc.queued[r.tx_hash][0])
                )
                self.o.notes["answered_while_partitioned"] = f"{early}/{len(during)}"
                if early:
                    self.o.errors.append(
                        f"{early} requests answered while only half the stake was connected"
                    )
        finally:
            for v in self.victims:
                fn.procs[v].signal(signal.SIGCONT)
        self.o.notes["partition_s"] = round(time.monotonic() - self.cut_at, 1)

    def _wait_answered(self, reqs: list[Request], timeout: float) -> int:
        fn = self.fn
        deadline = time.monotonic() + timeout
        first = min((r.sent_head for r in reqs), default=fn.head())
        while True:
            sc = fn.scan(first)
            ok = sum(
                1
                for r in reqs
                if r.tx_hash in sc.queued and sc.answers.get(sc.queued[r.tx_hash][0])
            )
            if ok == len(reqs) or time.monotonic() > deadline:
                return ok
            time.sleep(0.5)

    def after(self, reqs: list[Request]) -> list[Request]:
        # after the heal, a few more requests: the healed validators must sign again
        return self.fn.stream(2.0, 3.0)

    def check(self, reqs: list[Request], sc: Scan) -> list[str]:
        errs = []
        deadline = time.monotonic() + 30
        for v in self.victims:
            while int(self.fn.procs[v].status().get("batches_signed") or 0) <= (
                self.signed_before.get(v, 0)
            ):
                if time.monotonic() > deadline:
                    errs.append(f"validator {v} signed no batch after the partition healed")
                    break
                time.sleep(0.3)
        return errs


class PauseSequencer(Injector):
    """Freeze the sequencer (validator 0, also the gossip hub) for 1–5 s at a random moment:
    commits stop, its in-flight proposal and transaction go stale; after SIGCONT it must
    resume from the chain and answer everything."""

    def __init__(self, *a: Any) -> None:
        super().__init__(*a)
        self.dur = self.rng.uniform(1.0, 5.0)
        self.o.detail = f"SIGSTOP v0 at +{self.at:.1f}s for {self.dur:.1f}s"
        self.victims = [SEQUENCER]

    def run(self, done: threading.Event) -> None:
        self.wait_until(self.at, time.monotonic())
        p = self.fn.procs[SEQUENCER]
        p.signal(signal.SIGSTOP)
        try:
            time.sleep(self.dur)
        finally:
            p.signal(signal.SIGCONT)


class Stutter(Injector):
    """One validator (any, the sequencer included) stutters through the stream: frozen for
    0.2–1.0 s, running for 0.2–1.0 s, again and again — its gossip messages, signatures
    and chain following arrive late and in bursts (a stalled process, a congested link)."""

    def __init__(self, *a: Any) -> None:
        super().__init__(*a)
        self.victim = self.rng.randrange(self.fn.n)
        self.victims = [self.victim]
        self.o.detail = f"v{self.victim} frozen/thawed 0.2-1.0s at a time"
        self.at = self.rng.uniform(0.1, 0.5)

    def run(self, done: threading.Event) -> None:
        p = self.fn.procs[self.victim]
        self.wait_until(self.at, time.monotonic())
        frozen = 0.0
        try:
            while not done.is_set():
                d = self.rng.uniform(0.2, 1.0)
                p.signal(signal.SIGSTOP)
                time.sleep(d)
                frozen += d
                p.signal(signal.SIGCONT)
                done.wait(self.rng.uniform(0.2, 1.0))
        finally:
            p.signal(signal.SIGCONT)
        self.o.notes["frozen_s"] = round(frozen, 1)


_INJECTORS: dict[str, Callable[..., Injector]] = {
    "kill_validator": lambda *a: KillValidators(*a, which="one"),
    "kill_sequencer": lambda *a: KillValidators(*a, which="sequencer"),
    "kill_two": lambda *a: KillValidators(*a, which="two"),
    "cut_rpc": CutRpc,
    "reorg": Reorg,
    "rpc_errors": RpcErrors,
    "rpc_timeouts": RpcTimeouts,
    "rpc_truncate": RpcTruncate,
    "partition_one": lambda *a: Partition(*a, k=1),
    "partition_two": lambda *a: Partition(*a, k=2),
    "pause_sequencer": PauseSequencer,
    "stutter": Stutter,
}

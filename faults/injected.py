"""Injected transactions (the native path) in the fault suite and the soak.

`InjectedLane` signs ping transactions (EIP-712, `gexe.contracts.injected`) with keys
derived from the run's seed, submits them to validators over JSON-RPC
(`injected_sendTransaction`), follows their receipts on the node that accepted each
(`injected_getTransactionReceipt`), and checks them against every validator's chain of
sequencer blocks (`injected_sequencerBlock`, read height by height):

- **at most once**: no transaction is `executed` twice in any validator's chain;
- **no loss**: every transaction a node accepted ends, on that node, `preconfirmed`,
  `refused` (with a reason) or `expired` by the deadline — or stays `executed` while it
  ran exactly once in every validator's chain (`executed_not_preconfirmed`: its promises
  were in flight through a node that died, and nothing re-publishes promises; counted
  apart, not lost);
- **receipts match the chains**: `preconfirmed` / `executed` ⇒ executed exactly once on
  every validator; `refused` / `expired` ⇒ executed nowhere;
- **same chain everywhere**: every validator's sequencer block at each height has the
  same hash, anchor, state root and verdicts as validator 0's;
- **reverted** (counted apart from lost, and an error): in a reorg trial, a transaction
  whose receipt is `preconfirmed` or `executed` but which ran in no validator's chain —
  the reorg took the sequencer blocks that ran it and nothing ordered it again (the bug
  this suite found; since b36158c `NativeLane.on_revert` sends such transactions back to
  pending and to the sequencer);
- **only the legitimate refusals** (see RELIABILITY.md, "Crash faults"): `expired` (or a
  sequencer-block refusal "expired") only when the trial stalled the sequencer (SIGKILL or
  SIGSTOP of validator 0), a refusal for an unknown reference block only in a reorg
  trial; any other refusal or expiry is an error.

Nothing here waits unboundedly; every loop has a deadline.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from eth_utils import keccak

FINAL = ("preconfirmed", "refused", "expired")
KEYS = 8  # signing keys (users of the native path)
PAYLOAD = b"PING"
REFUSED = -32001
COUNTS = (
    "sent",
    "accepted",
    "preconfirmed",
    "executed_not_preconfirmed",
    "refused",
    "expired",
    "lost",
    "duplicated",
    "unsent",
    "reverted",
)


def _hx(b: bytes) -> str:
    return "0x" + bytes(b).hex()


def _reason_key(reason: str | None) -> str:
    """A refusal reason without its hashes and numbers (a key to count by)."""
    return re.sub(r"0x[0-9a-fA-F]+|\d+", "…", reason or "?").split(";")[0][:70]


@dataclass
class Injected:
    """One injected transaction and what became of it."""

    tx_hash: str
    node: int  # the validator it was sent to (and, if accepted, whose receipt counts)
    program: str
    trial: str
    sent_at: float  # monotonic, just before the submission
    status: str = "sending"  # refused_at_submit | unsent | pending | executed | + FINAL
    reason: str | None = None
    seq_height: int | None = None
    done_at: float | None = None  # first seen preconfirmed (monotonic)
    executed_at: float | None = None  # first seen executed or preconfirmed
    verdict: str = ""  # after the check: the category it is counted in

    @property
    def accepted(self) -> bool:
        return self.status not in ("sending", "refused_at_submit", "unsent")


def empty_counts() -> dict[str, Any]:
    d: dict[str, Any] = dict.fromkeys(COUNTS, 0)
    d["refusals"] = {}
    return d


def add_counts(into: dict[str, Any], c: dict[str, Any]) -> None:
    for k in COUNTS:
        into[k] = into.get(k, 0) + c.get(k, 0)
    r = into.setdefault("refusals", {})
    for k, v in c.get("refusals", {}).items():
        r[k] = r.get(k, 0) + v


class InjectedLane:
    """Injected transactions for one `FaultNet` (which must run with `native=True`)."""

    def __init__(self, fn: Any) -> None:
        from gexe.contracts.injected import Domain

        self.fn = fn
        assert fn.net is not None
        self.domain = Domain(fn.net.chain_id, fn.net.deployment.router)
        self.keys = [keccak(f"gexe-faults/{fn.seed}/injected/{i}".encode()) for i in range(KEYS)]
        self.rng = random.Random(f"{fn.seed}/injected")
        self.all: list[Injected] = []  # every injected transaction of the run
        self._k = 0
        self._lock = threading.Lock()
        self._heads: dict[int, tuple[float, bytes]] = {}  # node → (when read, head hash)

    # -- plumbing

    def _post(self, http: httpx.Client, i: int, body: Any, timeout: float = 10.0) -> Any:
        return http.post(self.fn.procs[i].rpc_url + "/", json=body, timeout=timeout).json()

    def _head(self, http: httpx.Client, i: int) -> bytes:
        """The node's head hash (the reference block: valid on its chain), cached 2 s."""
        now = time.monotonic()
        got = self._heads.get(i)
        if got is None or now - got[0] > 2.0:
            r = self._post(
                http, i, {"jsonrpc": "2.0", "id": 1, "method": "injected_info", "params": []}
            )
            head = (r.get("result") or {}).get("head") or {}
            got = (now, bytes.fromhex(head["hash"][2:]))
            self._heads[i] = got
        return got[1]

    def seq_height(self, i: int) -> int | None:
        try:
            return int(self.fn.procs[i].status()["native"]["seq_height"])
        except Exception:  # noqa: BLE001 - down, frozen or busy: unknown
            return None

    # -- sending

    def send_one(self, http: httpx.Client, node: int, program: str, trial: str) -> Injected:
        from gexe.contracts.injected import InjectedTransaction

        from gexe.client import tx_json

        with self._lock:
            k = self._k
            self._k += 1
            salt = self.rng.randbytes(32)
        key = self.keys[k % len(self.keys)]
        t = Injected("", node, program, trial, time.monotonic())
        try:
            ref = self._head(http, node)
            tx = InjectedTransaction(bytes.fromhex(program[2:]), PAYLOAD, ref, salt)
            t.tx_hash = _hx(self.domain.tx_hash(tx))
            stx = self.domain.sign_tx(key, tx)
            t.sent_at = time.monotonic()
            r = self._post(
                http,
                node,
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "injected_sendTransaction",
                    "params": [tx_json(stx)],
                },
            )
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as e:
            t.status, t.reason = "unsent", f"{type(e).__name__}: {e}"[:160]
        else:
            if "error" in r:
                err = r["error"]
                t.status = "refused_at_submit" if err.get("code") == REFUSED else "unsent"
                t.reason = str(err.get("message"))[:160]
            elif r.get("result") != t.tx_hash:
                t.status, t.reason = "unsent", f"unexpected answer {r}"[:160]
            else:
                t.status = "pending"
        with self._lock:
            self.all.append(t)
        return t

    def send_everywhere(
        self, nodes: Sequence[int], program: str, trial: str, times: int = 2
    ) -> list[Injected]:
        """One signed transaction submitted to every node of `nodes` at once (a thread
        each), then again `times - 1` rounds, one node after the other. A node accepts it
        (its own receipt) or — when the sequencer already ran it — refuses it as already
        included; the network must run it once. Returns the first round's entries (one
        per node; only the accepted ones join `all`) plus any later submission that was
        neither accepted again nor refused as already included."""
        from gexe.contracts.injected import InjectedTransaction

        from gexe.client import tx_json

        with self._lock:
            salt = self.rng.randbytes(32)
            key = self.keys[self._k % len(self.keys)]
            self._k += 1
        with httpx.Client() as http:
            tx = InjectedTransaction(
                bytes.fromhex(program[2:]), PAYLOAD, self._head(http, nodes[0]), salt
            )
        h = _hx(self.domain.tx_hash(tx))
        body = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "injected_sendTransaction",
            "params": [tx_json(self.domain.sign_tx(key, tx))],
        }

        def submit(node: int) -> Injected:
            t = Injected(h, node, program, trial, time.monotonic())
            try:
                with httpx.Client() as http:
                    r = self._post(http, node, body)
            except (httpx.HTTPError, ValueError) as e:
                t.status, t.reason = "unsent", f"{type(e).__name__}: {e}"[:160]
                return t
            if r.get("result") == h:
                t.status = "pending"
            else:
                err = r.get("error") or {}
                t.status = "refused_at_submit" if err.get("code") == REFUSED else "unsent"
                t.reason = str(err.get("message") or r)[:160]
            return t

        first: dict[int, Injected] = {}
        gate = threading.Barrier(len(nodes), timeout=30)

        def one(node: int) -> None:
            try:
                gate.wait()
            except threading.BrokenBarrierError:
                pass
            first[node] = submit(node)

        ths = [threading.Thread(target=one, args=(i,), daemon=True) for i in nodes]
        for th in ths:
            th.start()
        for th in ths:
            th.join(timeout=60)
        out = [first[i] for i in nodes if i in first]
        with self._lock:
            self.all += [t for t in out if t.accepted]
        for _ in range(times - 1):
            time.sleep(1.0)
            for node in nodes:
                t = submit(node)
                if t.status != "pending" and "already included" not in (t.reason or ""):
                    out.append(t)
        return out

    def stream(
        self,
        count: int | None,
        seconds: float,
        targets: Sequence[int],
        trial: str,
        *,
        rate: float | None = None,
        stop: threading.Event | None = None,
        out: list[Injected] | None = None,
    ) -> list[Injected]:
        """`count` transactions spread evenly over `seconds` (or `rate`/s for `seconds`),
        round robin over `targets` and the ping programs."""
        out = [] if out is None else out
        n = count if count is not None else int(round((rate or 0) * seconds))
        if n <= 0 or not targets:
            return out
        gap = seconds / n
        t0 = time.monotonic()
        with httpx.Client() as http:
            for k in range(n):
                if stop is not None and stop.is_set():
                    break
                when = t0 + (k + 0.5) * gap
                delay = when - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                if time.monotonic() > t0 + seconds + 30:  # bounded even if submissions hang
                    break
                prog = self.fn.pings[(self._k + k) % len(self.fn.pings)]
                out.append(self.send_one(http, targets[k % len(targets)], prog, trial))
        return out

    # -- receipts

    def poll(self, http: httpx.Client, txs: Sequence[Injected]) -> None:
        """Read the receipt of every accepted, not yet final transaction (batches of 100
        per node) and record what changed."""
        by_node: dict[int, list[Injected]] = {}
        for t in txs:
            if t.accepted and t.status not in FINAL:
                by_node.setdefault(t.node, []).append(t)
        for node, ts in by_node.items():
            for lo in range(0, len(ts), 100):
                chunk = ts[lo : lo + 100]
                body = [
                    {
                        "jsonrpc": "2.0",
                        "id": j,
                        "method": "injected_getTransactionReceipt",
                        "params": [t.tx_hash],
                    }
                    for j, t in enumerate(chunk)
                ]
                try:
                    ans = self._post(http, node, body, timeout=15.0)
                except (httpx.HTTPError, ValueError):
                    continue  # down or busy: next round
                now = time.monotonic()
                for a in ans if isinstance(ans, list) else ():
                    j = a.get("id")
                    if not isinstance(j, int) or not 0 <= j < len(chunk):
                        continue
                    t, r = chunk[j], a.get("result")
                    if r is None:
                        t.status = "no_receipt"
                        continue
                    t.status = str(r.get("status"))
                    t.reason = r.get("reason")
                    seq = r.get("sequencer_block") or {}
                    t.seq_height = seq.get("height")
                    if t.status in ("executed", "preconfirmed") and t.executed_at is None:
                        t.executed_at = now
                    if t.status == "preconfirmed" and t.done_at is None:
                        t.done_at = now

    def settle(self, txs: Sequence[Injected], timeout: float = 90.0, grace: float = 10.0) -> None:
        """Poll until every accepted transaction is final, or only `executed` ones remain
        and have been so for `grace` seconds, or `timeout`."""
        deadline = time.monotonic() + timeout
        with httpx.Client() as http:
            while True:
                self.poll(http, txs)
                now = time.monotonic()
                open_ = [t for t in txs if t.accepted and t.status not in FINAL]
                if not open_:
                    return
                if all(
                    t.status == "executed" and t.executed_at and now - t.executed_at > grace
                    for t in open_
                ):
                    return
                if now > deadline:
                    return
                time.sleep(0.3)

    # -- the chains of sequencer blocks

    def wait_heights(self, timeout: float = 60.0) -> int:
        """Wait until every validator has run the sequencer's tip (as read now); that
        height (the common tip reached)."""
        deadline = time.monotonic() + timeout
        top = None
        while top is None and time.monotonic() < deadline:
            top = self.seq_height(0)
            if top is None:
                time.sleep(0.3)
        top = top or 0
        while True:
            hs = [self.seq_height(i) for i in range(self.fn.n)]
            if all(h is not None and h >= top for h in hs) or time.monotonic() > deadline:
                return min([top, *[h for h in hs if h is not None]])
            time.sleep(0.3)

    def blocks(self, i: int, first: int, last: int) -> dict[int, dict[str, Any] | None]:
        out: dict[int, dict[str, Any] | None] = {}
        with httpx.Client() as http:
            for lo in range(first, last + 1, 100):
                hi = min(last, lo + 99)
                body = [
                    {"jsonrpc": "2.0", "id": n, "method": "injected_sequencerBlock", "params": [n]}
                    for n in range(lo, hi + 1)
                ]
                ans = self._post(http, i, body, timeout=60.0)
                for a in ans:
                    out[int(a["id"])] = a.get("result")
        return out

    def chains(self, first: int, last: int) -> tuple[dict[str, list[int]], list[str], int]:
        """Sequencer blocks first..last on every validator: tx hash → executions per
        validator; what differed from validator 0; blocks compared."""
        runs: dict[str, list[int]] = {}
        bad: list[str] = []
        if last < first:
            return runs, bad, 0

        def key(b: dict[str, Any] | None) -> Any:
            if b is None:
                return None
            return (
                b.get("hash"),
                b.get("anchor"),
                b.get("state_root"),
                tuple((t["hash"], t["status"]) for t in b.get("txs") or ()),
            )

        ref: dict[int, Any] = {}
        for i in range(self.fn.n):
            got = self.blocks(i, first, last)
            for n in range(first, last + 1):
                b = got.get(n)
                if i == 0:
                    ref[n] = key(b)
                elif key(b) != ref[n]:
                    bad.append(
                        f"validator {i} sequencer block {n}: "
                        f"{(key(b) or ('none',))[0]} vs validator 0 {(ref[n] or ('none',))[0]}"
                    )
                for t in (b or {}).get("txs") or ():
                    if t.get("status") == "executed":
                        runs.setdefault(t["hash"], [0] * self.fn.n)[i] += 1
        return runs, bad, last - first + 1

    # -- the verdict

    def check(
        self,
        txs: Sequence[Injected],
        runs: dict[str, list[int]],
        *,
        stalled_sequencer: bool,
        reorg: bool,
    ) -> tuple[dict[str, Any], list[str]]:
        """Count `txs` (after `settle`) against the executions in every validator's chain;
        the counts and the errors (unexpected refusals, receipts that contradict the
        chains, lost or duplicated transactions)."""
        c = empty_counts()
        errors: list[str] = []
        ref_reasons = ("not on this node's chain", "unknown reference block")
        reverted: list[str] = []

        def note(t: Injected, what: str) -> None:
            if len(errors) < 8:
                errors.append(f"injected {t.tx_hash[:12]} via v{t.node}: {what}")

        for t in txs:
            c["sent"] += 1
            r = runs.get(t.tx_hash, [0] * self.fn.n)
            if max(r) > 1:
                c["duplicated"] += 1
                t.verdict = "duplicated"
                note(t, f"executed {r} times (per validator)")
            if t.status == "unsent":
                c["unsent"] += 1
                t.verdict = t.verdict or "unsent"
                note(t, f"not submitted: {t.reason}")
                continue
            if t.status == "refused_at_submit":
                c["refused"] += 1
                k = f"at submission: {_reason_key(t.reason)}"
                c["refusals"][k] = c["refusals"].get(k, 0) + 1
                t.verdict = t.verdict or "refused"
                if not (reorg and any(x in (t.reason or "") for x in ref_reasons)):
                    note(t, f"refused at submission: {t.reason}")
                if max(r):
                    note(t, f"refused at submission but executed {r}")
                continue
            c["accepted"] += 1
            once_everywhere = all(x == 1 for x in r)
            if t.status in ("preconfirmed", "executed") and reorg and not max(r):
                # final (or executed) on its node, but the Ethereum reorg took the
                # sequencer blocks that ran it and nothing ran it again: the bug fixed in
                # b36158c (`NativeLane.on_revert`), counted apart from lost and an error
                c["reverted"] += 1
                t.verdict = "reverted"
                reverted.append(t.tx_hash)
                note(t, f"{t.status} before the reorg, then run in no validator's chain")
            elif t.status == "preconfirmed":
                c["preconfirmed"] += 1
                if not once_everywhere:
                    if not max(r):
                        c["lost"] += 1
                        t.verdict = "lost"
                    note(t, f"preconfirmed but executed {r} times (per validator)")
                t.verdict = t.verdict or "preconfirmed"
            elif t.status == "executed":
                if once_everywhere:
                    c["executed_not_preconfirmed"] += 1
                    t.verdict = t.verdict or "executed_not_preconfirmed"
                else:
                    c["lost"] += 1
                    t.verdict = "lost"
                    note(t, f"executed by its node, but executions per validator {r}")
            elif t.status in ("refused", "expired"):
                c[t.status] += 1
                k = f"{t.status}: {_reason_key(t.reason)}"
                c["refusals"][k] = c["refusals"].get(k, 0) + 1
                t.verdict = t.verdict or t.status
                if max(r):
                    note(t, f"{t.status} ({t.reason}) but executed {r} times (per validator)")
                is_expiry = t.status == "expired" or (t.reason or "").startswith("expired")
                ok = (is_expiry and stalled_sequencer) or (
                    reorg and any(x in (t.reason or "") for x in ref_reasons)
                )
                if not t.reason:
                    note(t, f"{t.status} without a reason")
                elif not ok:
                    note(t, f"{t.status} ({t.reason}) in a trial where that is not legitimate")
            else:  # pending, no receipt, or never read: lost
                c["lost"] += 1
                t.verdict = "lost"
                note(t, f"no final status on its node by the deadline (status {t.status})")
        if c["lost"]:
            errors.append(f"{c['lost']} accepted injected transactions lost")
        if c["duplicated"]:
            errors.append(f"{c['duplicated']} injected transactions executed more than once")
        if reverted:
            c["reverted_txs"] = reverted[:5]
            errors.append(
                f"{len(reverted)} injected transactions undone by the reorg and not run again"
            )
        return c, errors


def latency_ms(txs: Sequence[Injected], q: float) -> float | None:
    from .harness import percentile

    v = [(t.done_at - t.sent_at) * 1000 for t in txs if t.done_at is not None]
    p = percentile(v, q)
    return None if p is None else round(p, 1)


def status_counts(txs: Sequence[Injected]) -> dict[str, int]:
    return dict(Counter(t.status for t in txs))

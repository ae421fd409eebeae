"""Byzantine validators and hostile gossip peers for a `FaultNet` (issue #9, item 4).

- `make_byzantine(fn, i, env)`: restart validator `i` of a running `FaultNet` as a test
  build (same data, keys and p2p port), e.g. `GEXE_TEST_WRONG_BATCH=1`: for every batch
  request it signs and gossips an `ApproveBatch` for a *different* batch (a reply's
  payload, a state hash or `burned` changed; `validator/service.py::_wrong_result`)
  instead of the one asked — a wrong result, validly signed, one digest per pair.
- `GossipPeer`: an outsider libp2p peer (`python -m faults.byzantine CONFIG.json`) that
  dials every validator and joins the topic. It *witnesses* — records every
  `RequestBatchValidation` and `ApproveBatch` it hears (gossip-verified, by validator) —
  and, with `flood_rate` > 0, *floods* once told to go: junk at a bounded rate for a
  bounded time (`JUNK_KINDS`: garbage, truncated and trailing-byte envelopes, envelopes
  from a non-validator, forged senders, random and malformed signatures, a far era; a
  few over-size ones), re-dialling every validator that dropped it. Its status file (JSON,
  rewritten every half second) holds what it heard, sent, and when each validator
  disconnected it.
- Readers of what the network did: `committed_batches` (BatchCommitted on the chain),
  and of the validators' logs: `approved_digests`, `wrong_approvals`,
  `threshold_signers`, `bans`.

Every wait is bounded in time and every loop in count.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

# every kind of junk the flooder sends, in rotation; each message is distinct (a counter
# in it) so the validators' duplicate filter cannot drop it unchecked
JUNK_KINDS = (
    "garbage",  # not an envelope at all (unknown type tag)
    "truncated",  # a well-formed envelope cut short
    "trailing",  # a well-formed envelope with bytes after it
    "not_a_validator",  # properly signed, by a key outside the validator set
    "forged",  # claims a validator as sender, signed by the outsider
    "bad_signature",  # claims a validator, a random (well-encoded) signature
    "malformed_signature",  # claims a validator, high-s signature (not canonical)
    "wrong_era",  # properly signed, for an era far from the current one
)
# plus, as every OVERSIZED_EVERY-th message and at most MAX_OVERSIZED times, an envelope
# over the 1 MiB bound (a megabyte each: the flood stays a flood of messages, not bytes)
OVERSIZED_EVERY, MAX_OVERSIZED = 100, 3


def _hx(b: bytes) -> str:
    return "0x" + bytes(b).hex()


# ------------------------------------------------------------------ the network side


def make_byzantine(fn: Any, i: int, env: dict[str, str], timeout: float = 90.0) -> None:
    """Restart validator `i` of the running FaultNet `fn` with `env` added (a test build),
    and wait until it is back at the chain head with a peer."""
    assert fn.net is not None
    p = fn.procs[i]
    fn.net.kill_validator(i, signal.SIGTERM)
    p.env.update(env)
    fn.restart(i)
    fn.wait_heads(fn.head(), timeout, who=[i])
    if not fn.wait_peers(i, timeout):
        raise AssertionError(f"validator {i} found no peer after its restart: {p.last_line()}")


def stream_trial(
    fn: Any, kind: str, detail: str, *, seconds: float, rate: float, settle_timeout: float = 150.0
) -> tuple[Any, Any]:
    """A `FaultNet.trial` without an injector (the fault is already in place, or runs
    beside it): stream `rate` requests/s for `seconds`, wait for every answer, then the
    trial's checks — every request answered exactly once, counters exact, every validator
    agreeing block by block with the chain. Returns (Outcome, the final Scan)."""
    from .harness import Outcome

    fn.ensure_healthy()
    fn._sync_nonces()
    t0 = time.monotonic()
    first = fn.head() + 1
    o = Outcome(kind, detail, first_block=first)
    reqs = fn.stream(seconds, rate)
    o.requests = len(reqs)
    sc = fn.settle(reqs, first, timeout=settle_timeout)
    fn._account(o, reqs, sc)
    fn._record_agreement(o, first)
    o.seconds = time.monotonic() - t0
    fn.totals.add(o)
    fn.say(("ok   " if o.ok else "FAIL ") + o.line())
    return o, sc


def committed_batches(fn: Any, first: int, last: int | None = None) -> list[tuple[int, bytes]]:
    """(block, batch hash) of every BatchCommitted of the Router in blocks first..last."""
    from gexe.contracts import topics_of

    assert fn.net is not None
    last = fn.head() if last is None else last
    topic = _hx(topics_of("Router")["BatchCommitted"])
    out = []
    for lo in range(first, last + 1, 500):
        logs = fn.w3.eth.get_logs(
            {
                "address": fn.net.deployment.router,
                "fromBlock": lo,
                "toBlock": min(last, lo + 499),
                "topics": [topic],
            }
        )
        out += [(int(lg["blockNumber"]), bytes(lg["data"])[:32]) for lg in logs]
    return out


def _lines(log: Path, needle: str, since: int = 0) -> list[str]:
    """Lines of `log` from byte offset `since` that contain `needle`."""
    try:
        with log.open("rb") as f:
            f.seek(since)
            text = f.read().decode(errors="replace")
    except OSError:
        return []
    return [ln for ln in text.splitlines() if needle in ln]


def log_size(log: Path) -> int:
    try:
        return log.stat().st_size
    except OSError:
        return 0


def _field(line: str, name: str) -> str | None:
    m = re.search(rf"\b{name}=(\"(?:[^\"\\]|\\.)*\"|\S+)", line)
    if m is None:
        return None
    v = m.group(1)
    return json.loads(v) if v.startswith('"') else v


def approved_digests(log: Path, since: int = 0) -> set[str]:
    """Digest prefixes (0x + 16 hex) a validator logged as approved ("batch approved":
    the batch it rebuilt itself matched the request)."""
    return {
        d.lower() for ln in _lines(log, '"batch approved"', since) if (d := _field(ln, "digest"))
    }


def wrong_approvals(log: Path, since: int = 0) -> dict[str, dict[str, str]]:
    """The test build's wrong approvals: digest → {block, changed, batch, ours}."""
    out = {}
    for ln in _lines(log, "TEST BUILD: approving a wrong batch", since):
        d = _field(ln, "digest")
        if d:
            out[d.lower()] = {
                k: str(_field(ln, k) or "").lower() for k in ("block", "changed", "batch", "ours")
            }
    return out


def threshold_signers(log: Path, since: int = 0) -> list[tuple[str, list[str]]]:
    """The sequencer's "threshold reached" lines: (batch hash, signers counted)."""
    out = []
    for ln in _lines(log, '"threshold reached"', since):
        signers = _field(ln, "signers")
        if isinstance(signers, str):
            signers = json.loads(signers)
        out.append((str(_field(ln, "batch") or "").lower(), [s.lower() for s in signers or []]))
    return out


_BAN = re.compile(r"gossip: peer (\S+) sent too much junk \((\{.*?\})\); banned")


def bans(log: Path, since: int = 0) -> list[tuple[float | None, str, dict[str, int]]]:
    """(time, peer id, junk counts by reason at the ban) of every gossip ban a validator
    logged; the time is the log line's (Unix seconds)."""
    import ast
    from datetime import datetime

    out = []
    for ln in _lines(log, "sent too much junk", since):
        m = _BAN.search(ln.replace('\\"', '"'))
        if m:
            try:
                counts = dict(ast.literal_eval(m.group(2)))
            except (ValueError, SyntaxError):
                counts = {}
            try:
                ts: float | None = datetime.fromisoformat(ln.split()[0]).timestamp()
            except (ValueError, IndexError):
                ts = None
            out.append((ts, m.group(1), counts))
    return out


class GossipPeer:
    """The outsider gossip peer as a subprocess (see the module docstring)."""

    def __init__(
        self,
        fn: Any,
        directory: Path,
        *,
        flood_rate: float = 0.0,
        flood_seconds: float = 0.0,
        max_messages: int = 0,
        redial_every: float = 0.5,
    ) -> None:
        assert fn.net is not None
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.status_path = self.dir / "peer.json"
        self.go_path = self.dir / "go"
        self.log = self.dir / "peer.log"
        procs = fn.procs
        self.validator_peers = {p.p2p[0].split("/p2p/")[1]: i for i, p in enumerate(procs)}
        self.cfg = {
            "chain_id": fn.net.chain_id,
            "router": fn.net.deployment.router,
            "peers": [p.p2p[0] for p in procs],
            "validators": [p.address for p in procs],
            "era": procs[0].status().get("era") or 0,
            "flood_rate": flood_rate,
            "flood_seconds": flood_seconds,
            "max_messages": max_messages,
            "redial_every": redial_every,
            "status": str(self.status_path),
            "go": str(self.go_path),
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, ready_timeout: float = 90.0) -> dict[str, Any]:
        """Start it; return its status once it is connected to every validator and in
        their mesh."""
        cfg_path = self.dir / "peer-config.json"
        cfg_path.write_text(json.dumps(self.cfg))
        root = Path(__file__).resolve().parents[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("GEXE_")}
        env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")])
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "faults.byzantine", str(cfg_path)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=root,
                start_new_session=True,
            )
        deadline = time.monotonic() + ready_timeout
        while True:
            st = self.status()
            if st.get("ready"):
                return st
            if st.get("error") or self.proc.poll() is not None:
                raise AssertionError(f"gossip peer failed: {st.get('error')}\n{self.tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"gossip peer not ready in {ready_timeout:g}s: {st}")
            time.sleep(0.2)

    def go(self) -> None:
        """Start the flood."""
        self.go_path.write_text("go")

    def status(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.status_path.read_text()))
        except (OSError, ValueError):
            return {}

    def wait_done(self, timeout: float) -> dict[str, Any]:
        """Wait (bounded) until the flood is over; the status."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.status()
            if st.get("flood_done") or time.monotonic() > deadline:
                return st
            time.sleep(0.2)

    def tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> dict[str, Any]:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.status()


# ------------------------------------------------------------------ the peer process


class Junk:
    """Junk envelopes of every kind, each one distinct."""

    def __init__(self, cfg: dict[str, Any], outsider: Any) -> None:
        from gexe.node.gossip_messages import GossipDomain, to_address

        self.domain = GossipDomain(int(cfg["chain_id"]), to_address(cfg["router"]))
        self.era = int(cfg.get("era") or 0)
        self.validators = [to_address(a) for a in cfg["validators"]]
        self.outsider = outsider
        self.n = 0
        self.oversized = 0

    def _approval(self, era: int) -> Any:
        from eth_utils import keccak
        from gexe.node.gossip_messages import ApproveBatch

        digest = keccak(b"gexe junk" + self.n.to_bytes(8, "big"))
        return ApproveBatch(digest, era, self.outsider.address, self.outsider.sign_digest(digest))

    def _sealed(self, era: int | None = None) -> Any:
        from gexe.node.gossip_messages import seal

        era = self.era if era is None else era
        return seal(self._approval(era), era=era, domain=self.domain, signer=self.outsider)

    def next(self) -> tuple[str, bytes]:
        from gexe.node.gossip_messages import SignedEnvelope

        kind = JUNK_KINDS[self.n % len(JUNK_KINDS)]
        if self.n % OVERSIZED_EVERY == OVERSIZED_EVERY - 1 and self.oversized < MAX_OVERSIZED:
            kind = "oversized"
        self.n += 1
        tag = self.n.to_bytes(8, "big")
        victim = self.validators[self.n % len(self.validators)]
        if kind == "garbage":
            return kind, b"\x07" + tag + os.urandom(40)
        if kind == "oversized":
            self.oversized += 1
            return kind, b"\x01" + tag + os.urandom((1 << 20) + 1024)
        env = self._sealed(self.era + 7 if kind == "wrong_era" else None)
        data = env.encode()
        if kind == "truncated":
            return kind, data[: len(data) // 2]
        if kind == "trailing":
            return kind, data + b"\x00"
        if kind in ("not_a_validator", "wrong_era"):
            return kind, data
        if kind == "forged":
            sig = env.signature
        elif kind == "bad_signature":  # in range, low s: decodes, but is nobody's
            r = int.from_bytes(os.urandom(31), "big") + 1
            s = int.from_bytes(os.urandom(31), "big") + 1
            sig = r.to_bytes(32, "big") + s.to_bytes(32, "big") + b"\x1b"
        else:  # malformed_signature: s above n/2 (not canonical)
            n_ = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
            sig = env.signature[:32] + (n_ - 1).to_bytes(32, "big") + b"\x1b"
        forged = SignedEnvelope(env.era, victim, env.payload_type, env.payload, sig)
        return kind, forged.encode()


async def run(cfg: dict[str, Any]) -> None:  # noqa: C901 - one process's whole life
    import trio
    from eth_account import Account
    from gexe.node.gossip import GossipConfig, open_gossip
    from gexe.node.gossip_messages import (
        ApproveBatch,
        EthSigner,
        RequestBatchValidation,
        to_address,
    )

    validators = {to_address(a) for a in cfg["validators"]}
    era = int(cfg.get("era") or 0)
    status = Path(cfg["status"])
    go = Path(cfg["go"])
    rate = float(cfg.get("flood_rate") or 0)
    flood_s = float(cfg.get("flood_seconds") or 0)
    max_msgs = int(cfg.get("max_messages") or 0)
    redial_every = float(cfg.get("redial_every") or 0.5)
    addrs = {a.split("/p2p/")[1]: a for a in cfg["peers"]}
    outsider = EthSigner.from_account(Account.create())
    gcfg = GossipConfig(chain_id=int(cfg["chain_id"]), router_address=cfg["router"])
    st: dict[str, Any] = {
        "pid": os.getpid(),
        "outsider": _hx(outsider.address),
        "ready": False,
        "heard": 0,
        "requests": {},  # digest → block hash
        "approvals": {},  # validator → [digests]
        "sent": Counter(),
        "sent_total": 0,
        "flood_started": None,
        "flood_seconds": None,
        "flood_done": False,
        "connected": [],
        "ever_connected": [],
        "disconnected_after_s": {},  # validator peer → seconds into the flood
        "sent_before_disconnect": {},
        "redials": 0,  # dials of validators that had dropped us
        "redials_connected": 0,  # ... that connected (and were then dropped again)
        "publish_errors": 0,
    }

    def write() -> None:
        tmp = status.with_suffix(".tmp")
        tmp.write_text(json.dumps(st, default=list))
        tmp.replace(status)

    async with open_gossip(
        gcfg, outsider, current_era=lambda: era, validators=lambda e: validators
    ) as svc:
        st["peer_id"] = svc.peer_id

        async def listen() -> None:
            async for rec in svc:
                st["heard"] += 1
                m = rec.message
                if isinstance(m, RequestBatchValidation) and len(st["requests"]) < 10_000:
                    st["requests"][_hx(m.batch_digest)] = _hx(m.block_hash)
                elif isinstance(m, ApproveBatch):
                    lst = st["approvals"].setdefault(_hx(m.validator), [])
                    if len(lst) < 10_000:
                        lst.append(_hx(m.batch_digest))

        async def dial(peer: str) -> bool:
            with trio.move_on_after(5.0):
                try:
                    await svc.connect(addrs[peer])
                    return True
                except Exception:  # noqa: BLE001 - refused or reset: counted by the caller
                    return False
            return False

        async def report() -> None:
            while True:
                st["connected"] = sorted(svc.connected_peers() & set(addrs))
                write()
                await trio.sleep(0.5)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(listen)
            nursery.start_soon(report)
            try:
                with trio.fail_after(60):
                    for peer in addrs:
                        for _ in range(5):
                            if await dial(peer):
                                break
                            await trio.sleep(1.0)
                    await svc.wait_for_mesh(addrs, timeout=45)
            except Exception as e:  # noqa: BLE001 - reported in the status file
                st["error"] = f"could not join every validator: {type(e).__name__}: {e}"[:300]
                write()
                await trio.sleep_forever()
            st["ever_connected"] = sorted(svc.connected_peers() & set(addrs))
            st["ready"] = True
            write()
            if rate <= 0:
                await trio.sleep_forever()

            with trio.move_on_after(120):  # the go signal
                while not go.exists():
                    await trio.sleep(0.05)
            junk = Junk(cfg, outsider)
            t0 = trio.current_time()
            st["flood_started"] = time.time()
            was = svc.connected_peers() & set(addrs)

            async def knock() -> None:  # re-dial every validator that dropped us
                while True:
                    await trio.sleep(redial_every)
                    for peer in set(addrs) - (svc.connected_peers() & set(addrs)):
                        st["redials"] += 1
                        if await dial(peer):
                            st["redials_connected"] += 1

            async with trio.open_nursery() as flood:
                flood.start_soon(knock)
                while (el := trio.current_time() - t0) < flood_s and st["sent_total"] < max_msgs:
                    # paced by elapsed time: a slow turn is made up, in bounded bursts
                    due = min(int(rate * el) - st["sent_total"], int(rate * 0.1) + 1)
                    for _ in range(max(0, min(due, max_msgs - st["sent_total"]))):
                        kind, data = junk.next()
                        try:
                            await svc.publish_raw(data)
                        except Exception:  # noqa: BLE001 - counted
                            st["publish_errors"] += 1
                        st["sent"][kind] += 1
                        st["sent_total"] += 1
                    now = svc.connected_peers() & set(addrs)
                    for peer in was - now:  # a validator dropped us
                        st["disconnected_after_s"].setdefault(peer, round(el, 2))
                        st["sent_before_disconnect"].setdefault(peer, st["sent_total"])
                    was = now
                    await trio.sleep(0.01)
                flood.cancel_scope.cancel()
            st["flood_seconds"] = round(trio.current_time() - t0, 2)
            now = svc.connected_peers() & set(addrs)
            for peer in was - now:
                st["disconnected_after_s"].setdefault(peer, st["flood_seconds"])
                st["sent_before_disconnect"].setdefault(peer, st["sent_total"])
            with trio.move_on_after(15):  # a kicked redial settles before the last look
                await trio.sleep(1.0)
                while svc.connected_peers() & set(addrs):
                    await trio.sleep(0.2)
            st["connected"] = sorted(svc.connected_peers() & set(addrs))
            st["flood_done"] = True
            write()
            await trio.sleep_forever()


def main() -> int:
    import trio

    cfg = json.loads(Path(sys.argv[1]).read_text())

    async def until_signal() -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as sigs:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(run, cfg)
                async for _ in sigs:
                    nursery.cancel_scope.cancel()
                    break

    trio.run(until_signal)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Pre-confirmed reply latency and injected-transaction throughput on the dev network
(issue #8: p99 ≤ 250 ms and median ≤ 100 ms with 4 validators on loopback).

A `gexe.devnet.DevNet(native=True)` in a temp dir — anvil with 1-second blocks, 4
validator processes over libp2p on 127.0.0.1, validator 0 the sequencer (it orders
injected transactions into sequencer blocks) — gets 8 ping programs. Then:

- **Latency** (the figures the targets apply to). N requests (400; `--quick` 100) at a
  constant offered rate (`--rate`, 10 tx/s: about 40% of what this dev network
  sustains on 2 cores — see the saturation phase), open loop (as wrk2: request k is due
  at t0 + k/rate whatever the earlier ones are doing, and its latency counts from when
  it was *due*, so a client or network that falls behind shows instead of hiding),
  from 4 senders (trio tasks in this process, each with its own fresh eth-account key
  and its own WebSocket to one of validators 1–3, round robin, open for the whole
  phase as a dApp's would be), programs round robin, payload `PING`. The clock stops
  at the notification whose status is `preconfirmed` (validators with > 2/3 of the
  stake promised the reply); the first notification carrying a reply (the RPC node's
  own execution) is timed as well. The first 4 requests are a warm-up (`warmup`).
  Transactions are signed here (no RPC on the hot path) with the head of the node they
  go to as reference block (refreshed every 2 s): another node may not have processed
  that block yet and would refuse it.
- **Saturation.** N more requests, closed loop: each of the 4 senders sends its next
  request when the previous one is pre-confirmed, so the network runs as fast as the
  machine lets it. Reported with a `saturated_` prefix, with the rate reached
  (`saturated_tx_s`): on 2 shared cores running 4 validators, anvil and this client,
  the cores are then busy nearly all the time and the latency is mostly queueing.
- **Throughput.** M transactions (2,000; `--quick` 500), all signed beforehand, sent
  as fast as possible over HTTP `injected_sendTransaction` (one transaction per request)
  by 24 concurrent tasks to validators 1–3 round robin, while a poller reads the
  receipts still open from the node that accepted each, in JSON-RPC batches of 100
  (`injected_getTransactionReceipt`), every 100 ms. `injected_tps` = preconfirmed ÷
  (last preconfirmed seen − first submit); `injected_accept_tps` = accepted ÷ (last
  accept − first submit). The poller's period bounds the resolution (≈ 0.1 s).

Every request must end `preconfirmed` with reply `PONG`: `lost` (no final receipt before
the deadline, or no receipt at all), `refused` (refused at submission, or a `refused` /
`expired` receipt; `expired` counts the latter apart: not ordered within the 32 blocks
after the reference block) and `wrong_reply` must all be 0 (exit 1 otherwise). Every loop is
bounded in count and time. The targets are reported, not enforced (a shared machine).

Keys: `preconf_ms_median`, `preconf_ms_p95`, `preconf_ms_p99`, `preconf_ms_max`,
`preconf_ms_min`, `reply_ms_median`, `reply_ms_p99` (to the first notification with a
reply), `latency_rate_tx_s`, `latency_requests`, `latency_preconfirmed`, the same
`saturated_…` figures and `saturated_tx_s`, `injected_tps`,
`injected_accept_tps`, `throughput_txs`, `throughput_preconfirmed`,
`throughput_seconds`, `throughput_timeline` (preconfirmed per second of the burst),
`idle_cpu_cores` (cores each process uses over 5 s with no transaction),
`latency_cpu` / `saturated_cpu` / `throughput_cpu` (CPU ms per transaction of each process over the phase,
their total, and `cores_busy`: the share of all cores in use — near 1.0 the latency is
queueing for a core), `lost`, `refused`, `expired`, `wrong_reply`, `failures` (the first
few, one line each),
`target_preconf_ms_median`
(100), `target_preconf_ms_p99` (250), `targets_met`, `load_average` (before, after),
`sequencer_blocks` (per validator: sequencer blocks run and pre-confirmations made).
`--keep DIR` runs the network in DIR and leaves its logs there; `--samples FILE` writes
every latency sample (wall-clock send time, node, sequencer block height) to compare with
the validators' "sequencer block" log lines.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import trio
import trio_websocket
from _common import emit, parser, progress
from eth_account import Account
from gexe.contracts.injected import Domain, InjectedTransaction, SignedTransaction

from gexe.client import tx_json
from gexe.devnet import DevNet

PROGRAMS = 8
SENDERS = 4
SUBMITTERS = 24
RPC_VALIDATORS = (1, 2, 3)
PAYLOAD = b"PING"
PONG = b"PONG"
POLL_PERIOD = 0.1
POLL_BATCH = 100
REQUEST_TIMEOUT = 10.0  # seconds one latency request may take before it counts as lost
HTTP_TRIES = 3
RATE = 10.0  # tx/s offered in the latency phase (about 40% of what 2 cores sustain)
IDLE_WINDOW = 5.0  # seconds of an idle network measured before the latency phase


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    s = sorted(values)
    rank = max(1, -(-len(s) * q // 100))  # ceil(n * q / 100), at least 1
    return s[int(rank) - 1]


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def cpu_seconds(pid: int | None) -> float:
    """CPU time (user + system) a process has used so far, from /proc (0 if unknown)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_snapshot(net: DevNet) -> dict[str, float]:
    out = {f"validator{p.index}": cpu_seconds(p.pid) for p in net.procs}
    out["anvil"] = cpu_seconds(net.anvil.pid if net.anvil else None)
    out["client"] = cpu_seconds(os.getpid())
    return out


def cpu_report(before: dict[str, float], after: dict[str, float], txs: int, wall: float) -> dict:
    """CPU milliseconds per transaction for each process over a phase, and how busy the
    machine's cores were (1.0 = every core all the time: latency is then queueing)."""
    used = {k: after[k] - before[k] for k in before}
    total = sum(used.values())
    return {
        "ms_per_tx": {k: round(1000 * v / max(1, txs), 2) for k, v in used.items()},
        "ms_per_tx_total": round(1000 * total / max(1, txs), 2),
        "cores_busy": round(total / max(1e-9, wall * (os.cpu_count() or 1)), 2),
    }


class Signer:
    """Signs injected transactions locally (no RPC on the hot path). The reference block
    is the head of the node the transaction goes to (another node may not have processed
    that block yet and would refuse it), refreshed by `refresh_heads` in the background."""

    def __init__(self, domain: Domain, heads: dict[str, bytes]) -> None:
        self.domain = domain
        self.heads = heads  # RPC URL → head hash

    def sign(
        self, key: bytes, program: bytes, payload: bytes, url: str
    ) -> tuple[bytes, SignedTransaction]:
        tx = InjectedTransaction(program, payload, self.heads[url], os.urandom(32))
        return self.domain.tx_hash(tx), self.domain.sign_tx(key, tx)


async def rpc(client: httpx.AsyncClient, url: str, method: str, *params: Any) -> Any:
    r = await client.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    out = r.json()
    if "error" in out:
        raise RuntimeError(f"{method} at {url}: {out['error']}")
    return out["result"]


async def node_head(client: httpx.AsyncClient, url: str) -> bytes:
    info = await rpc(client, url, "injected_info")
    return bytes.fromhex(info["head"]["hash"][2:])


async def refresh_heads(client: httpx.AsyncClient, signer: Signer) -> None:
    while True:
        await trio.sleep(2.0)
        for url in signer.heads:
            try:
                signer.heads[url] = await node_head(client, url)
            except (httpx.HTTPError, RuntimeError, ValueError, KeyError, TypeError):
                pass  # keep the previous one: it stays valid for 32 blocks


class Tally:
    def __init__(self) -> None:
        self.lost = 0
        self.refused = 0
        self.expired = 0  # among `refused`: receipts that expired before being ordered
        self.wrong_reply = 0
        self.notes: list[str] = []  # the first few failures, for the report

    def note(self, what: str) -> None:
        if len(self.notes) < 10:
            self.notes.append(what)


def reply_ok(receipt: dict[str, Any]) -> bool:
    rep = receipt.get("reply") or {}
    return rep.get("payload") == "0x" + PONG.hex() and (rep.get("code") or "0x").startswith("0x00")


# ------------------------------------------------------------------ latency


def record(
    final: dict[str, Any],
    t0: float,
    t_reply: float | None,
    now: float,
    sender: int,
    samples: list[dict[str, Any]],
    tally: Tally,
) -> None:
    """One request's final receipt (`now`, against its start `t0`): a sample, or a
    refusal / wrong reply in the tally."""
    if final["status"] != "preconfirmed":
        tally.refused += 1
        tally.expired += final["status"] == "expired"
        tally.note(f"{final.get('hash')}: {final['status']}: {final.get('reason')}")
        return
    if not reply_ok(final):
        tally.wrong_reply += 1
        tally.note(f"{final.get('hash')}: reply {final.get('reply')}")
    seq = final.get("sequencer_block") or {}
    samples.append(
        {
            "preconf_ms": (now - t0) * 1000,
            "reply_ms": (t_reply - t0) * 1000 if t_reply is not None else None,
            "promises": len(final.get("promises") or ()),
            "seq_height": seq.get("height"),
            "sender": sender,
            "node": RPC_VALIDATORS[sender % len(RPC_VALIDATORS)],
            "sent_unix": round(time.time() - (now - t0), 4),
        }
    )


async def latency_sender(
    i: int,
    url: str,
    signer: Signer,
    programs: list[bytes],
    count: int,
    warmup: int,
    deadline: float,
    samples: list[dict[str, Any]],
    tally: Tally,
) -> None:
    key = bytes(Account.create().key)
    async with trio_websocket.open_websocket_url("ws" + url[4:]) as ws:
        for k in range(warmup + count):
            if time.monotonic() > deadline:
                tally.lost += count - max(0, k - warmup)
                tally.note(f"sender {i}: phase deadline reached after {k} requests")
                return
            prog = programs[(i + k * SENDERS) % len(programs)]
            h, stx = signer.sign(key, prog, PAYLOAD, url)
            hx = "0x" + h.hex()
            req = {
                "jsonrpc": "2.0",
                "id": k + 1,
                "method": "injected_sendTransactionAndWatch",
                "params": [tx_json(stx)],
            }
            t_reply = None
            final: dict[str, Any] | None = None
            t0 = time.perf_counter()
            await ws.send_message(json.dumps(req))
            with trio.move_on_after(REQUEST_TIMEOUT):
                while final is None:
                    msg = json.loads(await ws.get_message())
                    now = time.perf_counter()
                    if msg.get("id") == k + 1:
                        if "error" in msg:
                            final = {
                                "status": "refused",
                                "reason": msg["error"].get("message"),
                                "hash": hx,
                            }
                        continue
                    if msg.get("method") != "subscription":
                        continue
                    r = msg["params"]["result"]
                    if r.get("hash") != hx:
                        continue  # a late notification of an earlier request
                    if t_reply is None and r.get("reply"):
                        t_reply = now
                    if r["status"] in ("preconfirmed", "refused", "expired"):
                        final = r
            if k < warmup:
                continue
            if final is None:
                tally.lost += 1
                tally.note(f"{hx}: no final notification in {REQUEST_TIMEOUT} s")
                continue
            record(final, t0, t_reply, now, i, samples, tally)


async def latency_phase(
    urls: list[str], signer: Signer, programs: list[bytes], n: int, budget: float
) -> tuple[list[dict[str, Any]], Tally, float]:
    samples: list[dict[str, Any]] = []
    tally = Tally()
    per = [n // SENDERS + (1 if i < n % SENDERS else 0) for i in range(SENDERS)]
    t0 = time.perf_counter()
    deadline = time.monotonic() + budget
    async with trio.open_nursery() as nursery:
        for i in range(SENDERS):
            nursery.start_soon(
                latency_sender,
                i,
                urls[i % len(urls)],
                signer,
                programs,
                per[i],
                1,
                deadline,
                samples,
                tally,
            )
    return samples, tally, time.perf_counter() - t0


async def rate_phase(
    urls: list[str],
    signer: Signer,
    programs: list[bytes],
    n: int,
    rate: float,
    budget: float,
) -> tuple[list[dict[str, Any]], Tally, float]:
    """Open loop: request k is due at t0 + k / rate whatever the earlier ones are doing
    (constant throughput, as wrk2), from `SENDERS` WebSockets round robin; its latency
    counts from when it was *due*, so a client or network that falls behind shows in
    the figures instead of hiding (coordinated omission). The first `SENDERS` requests
    are a warm-up."""
    samples: list[dict[str, Any]] = []
    tally = Tally()
    total = n + SENDERS
    done = trio.Event()
    finished = 0
    t_start = time.perf_counter()
    deadline = time.monotonic() + budget

    def finish() -> None:
        nonlocal finished
        finished += 1
        if finished == total:
            done.set()

    async def sender(i: int, url: str) -> None:
        key = bytes(Account.create().key)
        open_: dict[str, tuple[int, float, list[float | None]]] = {}  # hash → (k, due, reply)
        async with trio_websocket.open_websocket_url("ws" + url[4:]) as ws:

            async def reader() -> None:
                while True:
                    msg = json.loads(await ws.get_message())
                    now = time.perf_counter()
                    if "error" in msg and msg.get("id") is not None:
                        tally.refused += 1
                        tally.note(f"request {msg['id']}: {msg['error'].get('message')}")
                        finish()
                        continue
                    if msg.get("method") != "subscription":
                        continue
                    r = msg["params"]["result"]
                    entry = open_.get(r.get("hash"))
                    if entry is None:
                        continue
                    k, due, reply = entry
                    if reply[0] is None and r.get("reply"):
                        reply[0] = now
                    if r["status"] not in ("preconfirmed", "refused", "expired"):
                        continue
                    del open_[r["hash"]]
                    finish()
                    if k < SENDERS:
                        continue
                    record(r, due, reply[0], now, i, samples, tally)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(reader)
                for k in range(i, total, SENDERS):
                    due = t_start + k / rate
                    await trio.sleep(max(0.0, due - time.perf_counter()))
                    if time.monotonic() > deadline:
                        break
                    h, stx = signer.sign(key, programs[k % len(programs)], PAYLOAD, url)
                    open_["0x" + h.hex()] = (k, due, [None])
                    req = {
                        "jsonrpc": "2.0",
                        "id": k + 1,
                        "method": "injected_sendTransactionAndWatch",
                        "params": [tx_json(stx)],
                    }
                    await ws.send_message(json.dumps(req))
                # the last ones: wait for them, each at most REQUEST_TIMEOUT after it was due
                with trio.move_on_after(REQUEST_TIMEOUT):
                    await done.wait()
                nursery.cancel_scope.cancel()
        for h, (k, _, _) in open_.items():
            if k >= SENDERS:
                tally.lost += 1
                tally.note(f"{h}: no final notification in time")

    async with trio.open_nursery() as nursery:
        for i in range(SENDERS):
            nursery.start_soon(sender, i, urls[i % len(urls)])
    return samples, tally, time.perf_counter() - t_start


def latency_figures(samples: list[dict[str, Any]], prefix: str = "") -> dict[str, Any]:
    pre = [s["preconf_ms"] for s in samples]
    rep = [s["reply_ms"] for s in samples if s["reply_ms"] is not None]
    out: dict[str, Any] = {}
    if pre:
        out.update(
            {
                f"{prefix}preconf_ms_median": round(statistics.median(pre), 1),
                f"{prefix}preconf_ms_p95": round(percentile(pre, 95), 1),
                f"{prefix}preconf_ms_p99": round(percentile(pre, 99), 1),
                f"{prefix}preconf_ms_max": round(max(pre), 1),
                f"{prefix}preconf_ms_min": round(min(pre), 1),
            }
        )
    if rep:
        out[f"{prefix}reply_ms_median"] = round(statistics.median(rep), 1)
        out[f"{prefix}reply_ms_p99"] = round(percentile(rep, 99), 1)
    return out


# ------------------------------------------------------------------ throughput


async def throughput_phase(
    urls: list[str], signer: Signer, programs: list[bytes], m: int, budget: float
) -> dict[str, Any]:
    keys = [bytes(Account.create().key) for _ in range(16)]
    t_sign = time.perf_counter()
    txs = []
    for i in range(m):
        node = i % len(urls)
        h, stx = signer.sign(keys[i % len(keys)], programs[i % len(programs)], PAYLOAD, urls[node])
        txs.append((h, tx_json(stx), node))
    sign_s = time.perf_counter() - t_sign
    progress(f"  signed {m} transactions in {sign_s:.1f} s; sending them")

    tally = Tally()
    open_: list[dict[str, Any]] = [{} for _ in urls]  # per node: hash → index
    accepted_at: list[float] = []
    done_at: list[float] = []
    submitted = 0
    submit_errors = 0
    next_i = 0
    running = SUBMITTERS
    deadline = time.monotonic() + budget
    limits = httpx.Limits(max_connections=SUBMITTERS + len(urls), max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=10.0, limits=limits) as client:

        async def submitter() -> None:
            nonlocal running
            try:
                await submit_loop()
            finally:
                running -= 1

        async def submit_loop() -> None:
            nonlocal next_i, submitted, submit_errors
            while next_i < len(txs) and time.monotonic() < deadline:
                i = next_i
                next_i += 1
                h, body, node = txs[i]
                for attempt in range(HTTP_TRIES):
                    try:
                        r = await client.post(
                            urls[node],
                            json={
                                "jsonrpc": "2.0",
                                "id": i,
                                "method": "injected_sendTransaction",
                                "params": [body],
                            },
                        )
                        out = r.json()
                    except (httpx.HTTPError, ValueError) as e:
                        submit_errors += 1
                        if attempt == HTTP_TRIES - 1:
                            tally.lost += 1
                            tally.note(f"tx {i}: not submitted: {type(e).__name__}")
                        continue
                    submitted += 1
                    if "error" in out:
                        tally.refused += 1
                        tally.note(f"tx {i}: refused at submission: {out['error']}")
                    else:
                        open_[node][out["result"]] = i
                        accepted_at.append(time.perf_counter())
                    break

        async def poll_node(node: int) -> None:
            hashes = list(open_[node])
            for j in range(0, len(hashes), POLL_BATCH):
                chunk = hashes[j : j + POLL_BATCH]
                body = [
                    {
                        "jsonrpc": "2.0",
                        "id": n,
                        "method": "injected_getTransactionReceipt",
                        "params": [h],
                    }
                    for n, h in enumerate(chunk)
                ]
                try:
                    r = await client.post(urls[node], json=body)
                    answers = r.json()
                except (httpx.HTTPError, ValueError):
                    continue  # next round
                now = time.perf_counter()
                for a in answers if isinstance(answers, list) else ():
                    h = chunk[a["id"]] if isinstance(a.get("id"), int) else None
                    rec = a.get("result")
                    if h is None or h not in open_[node]:
                        continue
                    if rec is None:
                        open_[node].pop(h)
                        tally.lost += 1
                        tally.note(f"{h}: the accepting node has no receipt")
                    elif rec["status"] == "preconfirmed":
                        open_[node].pop(h)
                        done_at.append(now)
                        if not reply_ok(rec):
                            tally.wrong_reply += 1
                            tally.note(f"{h}: reply {rec.get('reply')}")
                    elif rec["status"] in ("refused", "expired"):
                        open_[node].pop(h)
                        tally.refused += 1
                        tally.expired += rec["status"] == "expired"
                        tally.note(f"{h}: {rec['status']}: {rec.get('reason')}")

        t0 = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for _ in range(SUBMITTERS):
                nursery.start_soon(submitter)
            # poll while submitting and after, until nothing is open or the deadline
            while time.monotonic() < deadline:
                await trio.sleep(POLL_PERIOD)
                async with trio.open_nursery() as polls:
                    for node in range(len(urls)):
                        polls.start_soon(poll_node, node)
                if running == 0 and not any(open_):
                    break
        still_open = sum(len(o) for o in open_)
        if still_open:
            tally.lost += still_open
            tally.note(f"{still_open} transactions not final after {budget:.0f} s")
        unsent = len(txs) - next_i
        if unsent:
            tally.lost += unsent
            tally.note(f"{unsent} transactions never sent before the deadline")
    last_accept = max(accepted_at) if accepted_at else t0
    last_done = max(done_at) if done_at else t0
    return {
        "throughput_txs": m,
        "throughput_submitters": SUBMITTERS,
        "throughput_accepted": len(accepted_at),
        "throughput_preconfirmed": len(done_at),
        "throughput_submit_errors": submit_errors,
        "throughput_sign_seconds": round(sign_s, 2),
        "throughput_accept_seconds": round(last_accept - t0, 3),
        "throughput_seconds": round(last_done - t0, 3),
        "injected_accept_tps": round(len(accepted_at) / (last_accept - t0), 1)
        if last_accept > t0
        else None,
        "injected_tps": round(len(done_at) / (last_done - t0), 1) if last_done > t0 else None,
        # preconfirmed transactions seen per second of the phase
        "throughput_timeline": [
            sum(1 for t in done_at if s <= t - t0 < s + 1) for s in range(int(last_done - t0) + 1)
        ],
        "_tally": tally,
    }


# ------------------------------------------------------------------ main


async def run(
    net: DevNet,
    programs: list[bytes],
    n: int,
    m: int,
    rate: float,
    out: dict[str, Any],
    samples_file: Path | None,
) -> Tally:
    urls = [net.procs[i].rpc_url + "/" for i in RPC_VALIDATORS if i < len(net.procs)]
    async with httpx.AsyncClient(timeout=10.0) as client:
        info = await rpc(client, urls[0], "injected_info")
        domain = Domain(int(info["chain_id"]), info["router"])
        signer = Signer(domain, {u: await node_head(client, u) for u in urls})
        async with trio.open_nursery() as nursery:
            nursery.start_soon(refresh_heads, client, signer)

            cpu0, t0 = cpu_snapshot(net), time.perf_counter()
            await trio.sleep(IDLE_WINDOW)  # what the network costs with nothing to do
            cpu1, wall = cpu_snapshot(net), time.perf_counter() - t0
            out["idle_cpu_cores"] = {k: round((cpu1[k] - cpu0[k]) / wall, 3) for k in cpu0}
            nodes = ", ".join(str(i) for i in RPC_VALIDATORS)

            progress(
                f"latency: {n} requests at {rate:g}/s (open loop) from {SENDERS} WebSockets to "
                f"validators {nodes}"
            )
            cpu0 = cpu_snapshot(net)
            samples, lat_tally, lat_s = await rate_phase(
                urls, signer, programs, n, rate, budget=60.0 + n / rate * 2
            )
            out["latency_cpu"] = cpu_report(cpu0, cpu_snapshot(net), n + SENDERS, lat_s)
            out.update(
                {
                    "latency_rate_tx_s": rate,
                    "latency_requests": n,
                    "latency_preconfirmed": len(samples),
                    "latency_seconds": round(lat_s, 2),
                    "warmup": SENDERS,
                    **latency_figures(samples),
                }
            )
            if samples_file is not None:
                samples_file.write_text(json.dumps(samples, indent=1) + "\n")
            heights = [s["seq_height"] for s in samples if s["seq_height"] is not None]
            out["latency_sequencer_blocks"] = len(set(heights))
            progress(
                f"  {len(samples)}/{n} preconfirmed: median {out.get('preconf_ms_median')} ms, "
                f"p99 {out.get('preconf_ms_p99')} ms, max {out.get('preconf_ms_max')} ms (reply "
                f"median {out.get('reply_ms_median')} ms; cores busy "
                f"{out['latency_cpu']['cores_busy']})"
            )

            progress(
                f"saturation: {n} requests, {SENDERS} senders each waiting for its previous "
                f"pre-confirmation (closed loop)"
            )
            cpu0 = cpu_snapshot(net)
            sat, sat_tally, sat_s = await latency_phase(
                urls, signer, programs, n, budget=60.0 + n * 1.0
            )
            out["saturated_cpu"] = cpu_report(cpu0, cpu_snapshot(net), n + SENDERS, sat_s)
            out.update(latency_figures(sat, "saturated_"))
            out["saturated_tx_s"] = round(len(sat) / sat_s, 1) if sat_s else None
            progress(
                f"  {len(sat)}/{n} preconfirmed at {out['saturated_tx_s']} tx/s: median "
                f"{out.get('saturated_preconf_ms_median')} ms, p99 "
                f"{out.get('saturated_preconf_ms_p99')} ms (cores busy "
                f"{out['saturated_cpu']['cores_busy']})"
            )

            progress(f"throughput: {m} transactions over HTTP, {SUBMITTERS} concurrent senders")
            cpu0, t0 = cpu_snapshot(net), time.perf_counter()
            tp = await throughput_phase(urls, signer, programs, m, budget=60.0 + m * 0.1)
            out["throughput_cpu"] = cpu_report(cpu0, cpu_snapshot(net), m, time.perf_counter() - t0)
            tp_tally = tp.pop("_tally")
            out.update(tp)
            progress(
                f"  {tp['throughput_preconfirmed']}/{m} preconfirmed in "
                f"{tp['throughput_seconds']} s: {tp['injected_tps']} tx/s "
                f"(accepted at {tp['injected_accept_tps']} tx/s)"
            )
            nursery.cancel_scope.cancel()
    tally = Tally()
    for t in (lat_tally, sat_tally, tp_tally):
        tally.lost += t.lost
        tally.refused += t.refused
        tally.expired += t.expired
        tally.wrong_reply += t.wrong_reply
        tally.notes += t.notes
    return tally


def main() -> int:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=None, help="latency requests: 400 (quick: 100)")
    ap.add_argument("--burst", type=int, default=None, help="throughput burst: 2000 (quick: 500)")
    ap.add_argument("--validators", type=int, default=4)
    ap.add_argument(
        "--rate", type=float, default=RATE, help=f"latency phase's offered load, tx/s ({RATE:g})"
    )
    ap.add_argument(
        "--keep", type=Path, default=None, metavar="DIR", help="run the network in DIR and keep it"
    )
    ap.add_argument(
        "--samples", type=Path, default=None, metavar="FILE", help="write each latency sample"
    )
    args = ap.parse_args()
    n = args.requests or (100 if args.quick else 400)
    m = args.burst or (500 if args.quick else 2000)
    out: dict[str, Any] = {
        "quick": args.quick,
        "validators": args.validators,
        "block_time_s": 1,
        "programs": PROGRAMS,
        "senders": SENDERS,
        "target_preconf_ms_median": 100,
        "target_preconf_ms_p99": 250,
    }
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="gexe-preconf-") as tmp:
        net = DevNet(
            args.keep or Path(tmp) / "net",
            validators=args.validators,
            block_time=1,
            native=True,
            progress=progress,
        )
        with net:
            ex = net.setup_examples(("ping",), timeout=90)
            more = net.create_programs([(ex.codes["ping"].code_id, b"")] * (PROGRAMS - 1))
            net.wait_answers([p.init_id for p in more], 90)
            programs = [bytes.fromhex(a[2:]) for a in [ex["ping"], *(p.address for p in more)]]
            progress(f"{len(programs)} ping programs live")
            tally = trio.run(run, net, programs, n, m, args.rate, out, args.samples)
            stats = []
            for p in net.procs:
                try:
                    nat = p.status().get("native") or {}
                except Exception:  # a report, not a check
                    nat = {}
                stats.append(
                    {
                        k: nat.get(k)
                        for k in ("seq_height", "seq_blocks", "accepted", "preconfirmed")
                    }
                )
            out["sequencer_blocks"] = stats
    out.update(
        {
            "lost": tally.lost,
            "refused": tally.refused,
            "expired": tally.expired,
            "wrong_reply": tally.wrong_reply,
            "failures": tally.notes,
            "load_average": {"before": load_before, "after": load_average()},
            "cpus": os.cpu_count(),
        }
    )
    med, p99 = out.get("preconf_ms_median"), out.get("preconf_ms_p99")
    out["targets_met"] = med is not None and p99 is not None and med <= 100 and p99 <= 250
    emit("preconf", out)
    return 0 if tally.lost == tally.refused == tally.wrong_reply == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

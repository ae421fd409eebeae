"""`gexe dev [--smoke] [--dir DIR] [--validators N] [--block-time S]`: a local network and a
demo.

Starts a `DevNet` (anvil with 1-second blocks, the contracts, N validator processes, the
first also the sequencer), uploads and creates the example programs (ping, counter, proxy,
panicker) and the PingClient dApp, then follows four requests from Ethereum to their
on-chain replies, printing each step with its block number and gas:

1. `PingClient.ping("PING")` → ping replies with `replyOn_ping` calldata → the Mirror calls
   the dApp back → `PongReceived`;
2. `counter`: `Mirror.sendMessage("inc")` → `Reply` with the new count;
3. `proxy` → `ping` (a program-to-program request) → `Reply` "PONG";
4. `panicker` → an error reply (`UserspacePanic`) on chain.

Without `--smoke` the network then keeps running, endpoints printed, until Ctrl-C (or
SIGTERM): everything is stopped and the exit code is 0. With `--smoke` it exits at once:
0 only if every reply arrived. Problems end in one line (`UserError`); every process is
stopped on every path.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

from ._errors import UserError
from .devnet import DEFAULT_DIR, REPLY_ON_PING, Answer, DevNet, DevNetError, Examples, Sent


def _say(msg: str = "") -> None:
    print(msg, flush=True)


def _n(k: int, noun: str) -> str:
    return f"{k} {noun}" + ("" if k == 1 else "s")


def _short(b: bytes) -> str:
    return "0x" + b.hex()[:12] + "…"


def _text(payload: bytes) -> str:
    try:
        s = payload.decode()
    except UnicodeDecodeError:
        s = ""
    if s and s.isprintable():
        return repr(s) if len(s) <= 80 else repr(s[:77] + "...")
    return "0x" + payload.hex()[:64] + ("…" if len(payload) > 32 else "")


def _code_name(code: bytes) -> str:
    from gexe.runtime.codes import reply_code_name

    return f"{reply_code_name(code)} 0x{code.hex()}"


class Demo:
    """The demo's steps; `failures` lists what went wrong (empty = every reply arrived)."""

    def __init__(self, net: DevNet, ex: Examples, timeout: float) -> None:
        self.net = net
        self.ex = ex
        self.timeout = timeout
        self.latencies: list[int] = []
        self.commit_gas: list[int] = []

    def follow(
        self,
        title: str,
        sent: Sent,
        check: Callable[[Answer], str | None],
        describe: str,
        inner: tuple[str, str] | None = None,
    ) -> None:
        """Print a request's way to its reply; raise DevNetError if it does not arrive or
        is not what `check` expects (check returns a problem, or None)."""
        net = self.net
        _say(f"\n{title}")
        _say(
            f"  request    block {sent.block:<6} message {_short(sent.message_id)} from "
            f"{sent.sender} (tx gas {sent.gas_used:,})"
        )
        answer = net.wait_answer(sent.message_id, self.timeout)
        commit = net.commit_of(answer.tx_hash)
        try:
            runs = net.dispatches(
                sent.block,
                commit.batch_block,
                message_id=sent.message_id,
                programs=[inner[0]] if inner else (),
            )
        except DevNetError:
            runs = []
        for d in runs:
            who = (
                f" {inner[1]}" if inner and d.program.lower().endswith(inner[0][2:].lower()) else ""
            )
            _say(
                f"  executed   block {d.block:<6}{who} on validator {d.validator}: {d.kind} "
                f"{d.status}, {d.gas_burned:,} gas burned"
            )
        _say(
            f"  committed  block {commit.block:<6} commitBatch {_short(commit.tx_hash)} by "
            f"{commit.sender}: gas {commit.gas_used:,}, {_n(commit.transitions, 'transition')}, "
            f"{_n(commit.messages, 'message')} (batch up to block {commit.batch_block})"
        )
        latency = answer.block - sent.block
        _say(f"  reply      block {answer.block:<6} {describe.format(a=answer)}")
        _say(f"             {_n(latency, 'block')} after the request")
        problem = check(answer)
        if problem:
            raise DevNetError(f"{title.strip()}: {problem}")
        self.latencies.append(latency)
        self.commit_gas.append(commit.gas_used)

    def run(self) -> None:
        net, ex = self.net, self.ex
        _say("\n== demo: requests from Ethereum, replies on chain")

        # 1. the Solidity dApp, answered through its callback
        # (ping answers a payload that starts with the selector of replyOn_ping with
        # that function's calldata, which the Mirror then calls on the dApp)
        client = ex.ping_client
        receipt = client.send(net.user(0), "ping", REPLY_ON_PING + b"PING")
        sent = net.sent_from_receipt(receipt, ex["ping"])
        self.follow(
            f'1. PingClient({client.address}).ping(selector(replyOn_ping) ‖ "PING") '
            "→ ping, callReply = true",
            sent,
            lambda a: (
                None
                if (a.kind, a.payload) == ("callback", b"PONG")
                else f"expected PongReceived('PONG'), got {a.kind} {_text(a.payload)}"
            ),
            "Mirror called PingClient.replyOn_ping → PongReceived(answer={a.payload!r})",
        )

        # 2. a plain message to the counter, answered by a Reply event
        sent = net.send(ex["counter"], b"inc", net.user(1))
        self.follow(
            f'2. Mirror({ex["counter"]}).sendMessage("inc") → counter',
            sent,
            lambda a: (
                None
                if a.kind == "reply" and a.ok and len(a.payload) == 8
                else f"expected a success reply with a u64, got {_code_name(a.code)}"
            ),
            "Reply: count = {a.payload_u64}",
        )

        # 3. program to program: proxy forwards to ping and relays its answer
        sent = net.send(ex["proxy"], b"PING", net.user(2))
        self.follow(
            f'3. Mirror({ex["proxy"]}).sendMessage("PING") → proxy → ping → proxy',
            sent,
            lambda a: (
                None
                if a.kind == "reply" and a.ok and a.payload == b"PONG"
                else f"expected Reply 'PONG', got {_code_name(a.code)} {_text(a.payload)}"
            ),
            "Reply: {a.payload!r} relayed by proxy",
            inner=(ex["ping"], "ping (request from proxy)"),
        )

        # 4. a panic becomes an error reply on chain
        sent = net.send(ex["panicker"], b"boom", net.user(3))
        self.follow(
            f'4. Mirror({ex["panicker"]}).sendMessage("boom") → panicker',
            sent,
            lambda a: (
                None
                if a.kind == "reply" and not a.ok
                else f"expected an error reply, got {_code_name(a.code)}"
            ),
            "Reply: error {a.code_name}, payload {a.text}",
        )

        if net.native:
            self.injected()

    def injected(self) -> None:
        """5. the native path: an injected transaction, pre-confirmed, then on chain."""
        from eth_account import Account

        from gexe.client import Client, ClientError, EthereumClient

        net, ex = self.net, self.ex
        rpc = net.procs[1 % len(net.procs)]
        _say(
            f'\n5. injected transaction "PING" → ping over validator {rpc.index}\'s RPC '
            "(no Ethereum transaction)"
        )
        try:
            with Client(rpc.rpc_url, Account.create()) as c:
                t0 = time.monotonic()
                r = c.send_injected(ex["ping"], b"PING", timeout=self.timeout)
                ms = (time.monotonic() - t0) * 1000
                # checked against the validator set read from the Router, not the node's view
                signers = c.verify(r, EthereumClient(net.url, net.deployment.router).validators())
        except ClientError as e:
            raise DevNetError(f"5. injected transaction: {e}") from None
        seq = r.sequencer_block or {}
        _say(
            f"  ordered    sequencer block {seq.get('height')} anchored at block "
            f"{seq.get('anchor_number')}"
        )
        _say(
            f"  pre-confirmed in {ms:.0f} ms: reply {r.reply_payload!r} "
            f"({_code_name(r.reply_code or bytes(4))}), promised by {len(signers)} of "
            f"{len(net.procs)} validators (> 2/3 of the stake)"
        )
        if r.reply_payload != b"PONG":
            raise DevNetError(f"5. injected transaction: expected PONG, got {r.reply_payload!r}")
        answer = net.wait_answer(r.tx_hash, self.timeout)
        commit = net.commit_of(answer.tx_hash)
        promise = r.promise()
        from eth_utils import keccak

        same = keccak(answer.payload) == promise.reply_hash and answer.code == promise.reply_code
        _say(
            f"  committed  block {commit.block:<6} commitBatch {_short(commit.tx_hash)}: "
            f"Reply {answer.payload!r} to the sender on chain — "
            + ("matches the promise" if same else "DIFFERS from the promise")
        )
        if not same:
            raise DevNetError(
                "5. injected transaction: the committed reply differs from the promise"
            )


def _run(args: argparse.Namespace) -> int:
    if args.validators < 1 or args.validators > 16:
        raise UserError(f"--validators {args.validators}: choose 1 to 16")
    if args.block_time < 1:
        raise UserError(f"--block-time {args.block_time}: whole seconds, at least 1")
    if args.timeout <= 0:
        raise UserError(f"--timeout {args.timeout}: must be positive (seconds)")

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    old_term = signal.signal(signal.SIGTERM, on_term)
    net = DevNet(
        args.dir,
        validators=args.validators,
        block_time=args.block_time,
        progress=_say,
        native=not args.no_native,
    )
    try:
        _say(
            f"== gexe dev network: anvil, contracts, {args.validators} validators "
            f"(validator 0 is the sequencer) in {net.dir}"
        )
        try:
            net.start()
            _say("\n== network up")
            for line in net.endpoints():
                _say("  " + line)
            _say("\n== example programs")
            ex = net.setup_examples(timeout=args.timeout)
            demo = Demo(net, ex, args.timeout)
            demo.run()
        except DevNetError as e:
            if args.smoke:
                raise UserError(f"dev network: {e}") from None
            _say(f"\ndemo failed: {e}")
            ok = False
        else:
            lat = ", ".join(str(n) for n in demo.latencies)
            _say(
                f"\n== all {len(demo.latencies)} replies arrived on chain; request→reply "
                f"latency in blocks: {lat}"
            )
            ok = True
        if args.smoke:
            return 0
        _say("\n== endpoints")
        for line in net.endpoints():
            _say("  " + line)
        if ok:
            _say("\n== programs")
            for name, prog in ex.programs.items():
                _say(f"  {name:<10} {prog.address}")
            _say(f"  {'PingClient':<10} {ex.ping_client.address}  (dApp for ping)")
            _say(
                f"\ntry: source {net.dir / 'env.sh'} && gexe program send "
                f"{ex['counter']} inc --wait --password-file {net.user_password_file}"
            )
        _say(
            "\nthe network keeps running"
            + ("" if ok else " (the demo failed: see the validator logs)")
            + "; Ctrl-C stops it"
        )
        try:
            while True:
                time.sleep(1.0)
                net.check_alive()
        except KeyboardInterrupt:
            _say("\nstopping…")
        except DevNetError as e:
            raise UserError(f"dev network: {e}") from None
        return 0
    except KeyboardInterrupt:
        _say("\ninterrupted; stopping…")
        return 130
    finally:
        net.stop()
        signal.signal(signal.SIGTERM, old_term)


def add_dev_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "dev",
        help="start a local network (anvil, contracts, validators, sequencer) and run a demo",
        description="Start anvil, deploy the contracts, start the validators (the first "
        "also runs the sequencer), upload the example programs and show requests from "
        "Ethereum answered on chain. Keeps running until Ctrl-C unless --smoke.",
    )
    p.add_argument(
        "--smoke", action="store_true", help="run the demo and exit: 0 only if every reply arrived"
    )
    p.add_argument(
        "--no-native",
        action="store_true",
        help="without the native path (injected transactions, sequencer blocks)",
    )
    p.add_argument(
        "--dir",
        type=Path,
        default=DEFAULT_DIR,
        metavar="DIR",
        help=f"network directory, wiped at start (default ./{DEFAULT_DIR})",
    )
    p.add_argument("--validators", type=int, default=4, metavar="N", help="default 4")
    p.add_argument(
        "--block-time", type=int, default=1, metavar="S", help="seconds per block (default 1)"
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="longest wait for one reply or code verdict (default 60)",
    )
    p.set_defaults(func=_run)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m gexe.dev_cmd …` = `gexe dev …` (before the command is registered)."""
    from .cli import _Parser

    ap = _Parser(prog="gexe", description="gexe dev network")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_dev_commands(sub)
    args = ap.parse_args(["dev", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"gexe: error: {e}", file=sys.stderr)
        return e.exit_code


if __name__ == "__main__":
    sys.exit(main())

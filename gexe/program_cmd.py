"""`gexe program …`: local and on-chain program commands.

Local: `validate` checks a WASM file, `run` runs it in the local sandbox. On a network
(`--rpc`, `--router`, a keystore signer; plumbing in `chain_cmd`): `create` makes a
program from a validated code (`Router.createProgramWithInit`), `send` messages it
(`Mirror.sendMessage`) and with `--wait` prints the reply once a batch carries it on
chain, `top-up` adds WVARA to its executable balance, `state` prints its on-chain views
and, with `--node`, a validator's view of its state. `send --injected` instead signs an
EIP-712 injected transaction (the native path) and sends it through a validator's RPC
(`--rpc-node`, default `$GEXE_INJECTED_RPC` or the RPC's default port), printing the
reply once validators holding more than 2/3 of the stake promised it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from gexe.runtime import (
    DEFAULT_USER,
    CodeError,
    Message,
    Sandbox,
    limits,
    reply_code_name,
    user,
    validate,
)

from ._errors import UserError
from .chain_cmd import (
    CODE_STATE_NAMES,
    CODE_VALIDATED,
    add_chain_options,
    add_wait_options,
    chain_errors,
    connect,
    ensure_wvara,
    hx,
    load_signer,
    parse_address,
    parse_hash,
    payload_text,
    print_reply,
    reply_exit,
    reverts_as,
    show_payload,
    uint,
    wait_for_reply,
)


def add_program_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    prog = sub.add_parser(
        "program", help="validate and run programs locally; create and message them on a network"
    )
    psub = prog.add_subparsers(dest="program_command", required=True, metavar="ACTION")

    v = psub.add_parser("validate", help="check that a WASM file is a valid Vara.eth program")
    v.add_argument("file", type=Path)
    v.add_argument("--json", action="store_true", help="print the verdict as JSON")
    v.set_defaults(func=cmd_validate)

    r = psub.add_parser("run", help="run a program in the local sandbox and print replies")
    r.add_argument("file", type=Path)
    r.add_argument(
        "--init",
        default="",
        metavar="PAYLOAD",
        help="init payload: 0x-hex or text (default: empty)",
    )
    r.add_argument(
        "--send",
        action="append",
        default=[],
        metavar="PAYLOAD",
        help="message payload (0x-hex or text); repeat to send several",
    )
    r.add_argument(
        "--source",
        default=None,
        metavar="ADDR",
        help="sender's Ethereum address (default: anvil's first account)",
    )
    r.add_argument("--value", type=int, default=0, help="value attached to each message")
    r.add_argument(
        "--max-gas",
        type=int,
        default=limits.MAX_GAS_PER_MESSAGE,
        help="gas limit per message (default: %(default)s)",
    )
    r.add_argument(
        "--blocks",
        type=int,
        default=20,
        help="blocks to wait for each reply (default: %(default)s)",
    )
    r.add_argument("--json", action="store_true", help="print results as JSON")
    r.set_defaults(func=cmd_run)
    _add_chain_program_commands(psub)


def parse_payload(text: str, what: str) -> bytes:
    """`0x…` is hex, anything else is UTF-8 text."""
    if text.startswith(("0x", "0X")):
        try:
            data = bytes.fromhex(text[2:])
        except ValueError:
            raise UserError(
                f"{what} {text!r} is not valid hex; give 0x followed by an even "
                "number of hex digits, or plain text"
            ) from None
    else:
        data = text.encode("utf-8")
    if len(data) > limits.MAX_PAYLOAD_SIZE:
        raise UserError(
            f"{what}: payload of {len(data)} bytes exceeds the "
            f"{limits.MAX_PAYLOAD_SIZE}-byte message limit"
        )
    return data


def read_code(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, expected a .wasm file") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read: {e.strerror}") from None


def _source(arg: str | None) -> bytes:
    if arg is None:
        return DEFAULT_USER
    try:
        raw = bytes.fromhex(arg.removeprefix("0x"))
    except ValueError:
        raw = b""
    if len(raw) not in (20, 32):
        raise UserError(f"--source {arg!r} is not an Ethereum address; give 0x and 40 hex digits")
    return user(raw)


def cmd_validate(args: argparse.Namespace) -> int:
    code = read_code(args.file)
    try:
        info = validate(code)
    except CodeError as e:
        if args.json:
            print(
                json.dumps(
                    {"file": str(args.file), "valid": False, "reason": e.reason, "detail": e.detail}
                )
            )
        raise UserError(f"{args.file}: invalid program: {e}") from None
    if args.json:
        print(
            json.dumps(
                {
                    "file": str(args.file),
                    "valid": True,
                    "code_id": "0x" + info.code_id.hex(),
                    "size": info.size,
                    "static_pages": info.static_pages,
                    "stack_end": info.stack_end,
                    "exports": sorted(info.exports),
                    "syscalls": sorted(info.syscalls),
                }
            )
        )
    else:
        print(f"{args.file}: valid Vara.eth program")
        print(f"  code id      0x{info.code_id.hex()}")
        print(f"  size         {info.size} bytes, {info.static_pages} static pages")
        print(f"  entry points {', '.join(sorted(info.exports))}")
        print(f"  syscalls     {', '.join(sorted(info.syscalls)) or '-'}")
    return 0


def _describe(label: str, sent: bytes | None, reply: Message | None, record: Any) -> dict:
    d: dict[str, Any] = {"label": label}
    if sent is not None:
        d["payload_hex"] = "0x" + sent.hex()
    if record is not None:
        d["status"] = record.status
        d["gas_burned"] = record.gas_burned
        if record.explanation:
            d["explanation"] = record.explanation
        if record.debug:
            d["debug"] = list(record.debug)
    if reply is not None:
        d["reply"] = {
            "payload_hex": "0x" + reply.payload.hex(),
            "payload_text": payload_text(reply.payload),
            "code": "0x" + reply.reply_code.hex(),
            "code_name": reply_code_name(reply.reply_code),
            "value": reply.value,
        }
    return d


def _print_human(d: dict) -> None:
    rec = f"  gas {d['gas_burned']:,}" if "gas_burned" in d else ""
    print(f"{d['label']}{rec}" + (f"  [{d['explanation']}]" if d.get("explanation") else ""))
    for line in d.get("debug", []):
        print(f"  debug: {line}")
    r = d.get("reply")
    if r is None:
        print("  no reply")
        return
    text = f' "{r["payload_text"]}"' if r["payload_text"] else ""
    print(f"  reply {r['payload_hex']}{text}  {r['code_name']} ({r['code']})")


def cmd_run(args: argparse.Namespace) -> int:
    code = read_code(args.file)
    init = parse_payload(args.init, "--init")
    sends = [parse_payload(s, "--send") for s in args.send]
    source = _source(args.source)
    if args.max_gas <= 0:
        raise UserError("--max-gas must be positive")
    sb = Sandbox(max_gas_per_message=args.max_gas)
    try:
        try:
            code_id = sb.upload_code(code)
        except CodeError as e:
            raise UserError(f"{args.file}: invalid program: {e}") from None
        pid = sb.create_program(code_id, init_payload=init, source=source, value=args.value)
        init_id = next(ev.message_id for ev in sb.pending if hasattr(ev, "message_id"))
        results = []
        reply = sb.run_until_reply(init_id, args.blocks)
        results.append(_describe("init", init, reply, sb.dispatches.get(init_id)))
        for i, payload in enumerate(sends, 1):
            mid = sb.send(pid, payload, source=source, value=args.value)
            reply = sb.run_until_reply(mid, args.blocks)
            results.append(_describe(f"send #{i}", payload, reply, sb.dispatches.get(mid)))
        others = [m for m in sb.outgoing if not m.is_reply]
        out = {
            "code_id": "0x" + code_id.hex(),
            "program_id": "0x" + pid.hex(),
            "results": results,
            "messages": [
                {
                    "id": "0x" + m.id.hex(),
                    "destination": "0x" + m.destination.hex(),
                    "payload_hex": "0x" + m.payload.hex(),
                    "value": m.value,
                }
                for m in others
            ],
            "state_hash": "0x" + sb.state_hash(pid).hex(),
            "blocks": sb.height,
        }
    finally:
        sb.close()
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"code     {out['code_id']}")
    print(f"program  {out['program_id']}")
    for d in results:
        _print_human(d)
    for m in out["messages"]:
        print(f"message  to {m['destination']} payload {m['payload_hex']} value {m['value']}")
    print(f"state    {out['state_hash']}  (after {out['blocks']} blocks)")
    return 0


# ------------------------------------------------------------------ on a network


def _add_chain_program_commands(psub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    c = psub.add_parser(
        "create",
        help="create a program from a validated code on a network",
        description="Router.createProgramWithInit: deploy the program's Mirror and queue "
        "its init message. Prints the program id (the Mirror's address), the init "
        "message id and the block.",
    )
    c.add_argument("code_id", metavar="CODE_ID", help="0x id of a validated code")
    c.add_argument(
        "--salt",
        default=None,
        metavar="HEX",
        help="CREATE2 salt, 0x and up to 64 hex digits (default: random)",
    )
    c.add_argument(
        "--init",
        default="",
        metavar="PAYLOAD",
        help="init payload: 0x-hex or text (default: empty)",
    )
    c.add_argument(
        "--balance",
        type=uint("--balance", "WVARA base units"),
        default=0,
        metavar="N",
        help="initial executable balance in WVARA base units (approved and moved from "
        "the sender; default: 0)",
    )
    c.add_argument(
        "--value", type=uint("--value", "wei"), default=0, metavar="WEI", help="wei sent with init"
    )
    c.add_argument(
        "--call-reply",
        action="store_true",
        help="deliver the init reply as a call to the sender (for contracts)",
    )
    add_wait_options(c, what="the init reply is on chain, and print it", timeout=120.0)
    c.add_argument("--json", action="store_true", help="print one JSON object")
    add_chain_options(c, signer=True)
    c.set_defaults(func=cmd_create)

    s = psub.add_parser(
        "send",
        help="send a message to a program on a network",
        description="Mirror.sendMessage. Prints the message id and its block; with --wait, "
        "the program's reply once it is on chain (exit 1 on an error reply). With "
        "--injected: an EIP-712 injected transaction sent through a validator's RPC "
        "instead (no Ethereum transaction, no gas); prints the pre-confirmed reply.",
    )
    s.add_argument("program", metavar="PROGRAM", help="program id (its Mirror's address)")
    s.add_argument("payload", metavar="PAYLOAD", help="0x-hex or text")
    s.add_argument(
        "--value",
        type=uint("--value", "wei"),
        default=0,
        metavar="WEI",
        help="wei sent with the message",
    )
    s.add_argument(
        "--call-reply",
        action="store_true",
        help="deliver the reply as a call to the sender (for contracts; not with --wait)",
    )
    add_wait_options(s, what="the reply is on chain, and print it", timeout=120.0)
    s.add_argument("--json", action="store_true", help="print one JSON object")
    inj = s.add_argument_group("injected (native path)")
    inj.add_argument(
        "--injected",
        action="store_true",
        help="sign an injected transaction with the keystore key and send it to a "
        "validator's RPC; wait (up to --timeout) for its pre-confirmed reply",
    )
    inj.add_argument(
        "--rpc-node",
        default=None,
        metavar="URL",
        help=f"the validator's JSON-RPC URL for --injected (default: ${INJECTED_RPC_ENV} "
        f"or {DEFAULT_NODE_RPC})",
    )
    add_chain_options(s, signer=True)
    s.set_defaults(func=cmd_send)

    t = psub.add_parser(
        "top-up",
        help="add WVARA to a program's executable balance",
        description="Approve the program's Mirror for AMOUNT WVARA and call "
        "executableBalanceTopUp(AMOUNT).",
    )
    t.add_argument("program", metavar="PROGRAM", help="program id (its Mirror's address)")
    t.add_argument(
        "amount", type=uint("AMOUNT", "WVARA base units"), metavar="AMOUNT", help="WVARA base units"
    )
    t.add_argument("--json", action="store_true", help="print one JSON object")
    add_chain_options(t, signer=True)
    t.set_defaults(func=cmd_top_up)

    st = psub.add_parser(
        "state",
        help="print a program's on-chain state (and a validator's view with --node)",
    )
    st.add_argument("program", metavar="PROGRAM", help="program id (its Mirror's address)")
    st.add_argument(
        "--node",
        default=None,
        metavar="URL",
        help="a validator's JSON-RPC URL: also print its program_state",
    )
    st.add_argument("--json", action="store_true", help="print one JSON object")
    add_chain_options(st, signer=False)
    st.set_defaults(func=cmd_state)


def _salt(text: str | None) -> bytes:
    import os

    if text is None:
        return os.urandom(32)
    raw = text.strip()
    digits = raw[2:] if raw.lower().startswith("0x") else ""
    try:
        data = bytes.fromhex(digits.rjust(len(digits) + len(digits) % 2, "0"))
    except ValueError:
        data = b"\x00" * 33
    if not digits or len(data) > 32:
        raise UserError(f"--salt {text!r} is not valid; give 0x and 1 to 64 hex digits")
    return data.rjust(32, b"\x00")


def _check_wait(args: argparse.Namespace) -> None:
    if args.wait and args.call_reply:
        raise UserError(
            "--wait cannot see a reply delivered as a call (--call-reply): successful "
            "callbacks emit no Reply event; drop one of the two"
        )


def _finish_wait(args: argparse.Namespace, chain: Any, out: dict, mirror: str, mid: bytes) -> int:
    if not args.json:
        print("waiting for the reply…", flush=True)
    reply = wait_for_reply(chain, mirror, mid, out["block"], timeout=args.timeout, poll=args.poll)
    out["reply"] = reply
    if args.json:
        print(json.dumps(out))
    else:
        print_reply(reply)
    return reply_exit(reply)


@chain_errors
def cmd_create(args: argparse.Namespace) -> int:
    from gexe.contracts import Mirror, program_id

    cid = parse_hash(args.code_id, "CODE_ID")
    salt = _salt(args.salt)
    init = parse_payload(args.init, "--init")
    _check_wait(args)
    chain = connect(args)
    router = chain.router
    state = router.code_state(cid)
    if state != CODE_VALIDATED:
        raise UserError(
            f"code {hx(cid)} is not validated on the network of Router {router.address} "
            f"(state: {CODE_STATE_NAMES.get(state, state)}); upload it with "
            "`gexe code upload FILE --wait` first"
        )
    predicted = program_id(router.address, router.mirror_impl(), cid, salt)
    if chain.w3.eth.get_code(predicted):
        raise UserError(
            f"a program with this code and salt exists already at {predicted}; "
            "pass another --salt (or none for a random one)"
        )
    signer = load_signer(args)
    ensure_wvara(chain, signer, router.address, args.balance, "--balance")
    with reverts_as("Router.createProgramWithInit"):
        receipt = router.send(
            signer,
            "createProgramWithInit",
            cid,
            salt,
            init,
            args.call_reply,
            args.balance,
            value=args.value,
        )
    from eth_utils import to_checksum_address

    actor = to_checksum_address(router.events(receipt, "ProgramCreated")[0]["actorId"])
    mid = bytes(Mirror(chain.w3, actor).events(receipt, "MessageQueueingRequested")[0]["id"])
    out: dict[str, Any] = {
        "program_id": actor,
        "code_id": hx(cid),
        "salt": hx(salt),
        "init_message_id": hx(mid),
        "tx": hx(receipt["transactionHash"]),
        "block": int(receipt["blockNumber"]),
        "executable_balance": args.balance,
    }
    if not args.json:
        print(f"program     {actor}")
        print(f"init msg    {out['init_message_id']}")
        print(f"salt        {out['salt']}")
        print(f"tx          {out['tx']}")
        print(f"block       {out['block']}")
    if args.wait:
        return _finish_wait(args, chain, out, actor, mid)
    if args.json:
        print(json.dumps(out))
    return 0


@chain_errors
def cmd_send(args: argparse.Namespace) -> int:
    payload = parse_payload(args.payload, "PAYLOAD")
    if args.injected:
        return _send_injected(args, payload)
    if args.rpc_node is not None:
        raise UserError("--rpc-node is for --injected; add --injected, or drop --rpc-node")
    _check_wait(args)
    chain = connect(args)
    mirror = chain.mirror(args.program)
    signer = load_signer(args)
    with reverts_as("Mirror.sendMessage"):
        receipt, mid = mirror.send_message(signer, payload, args.call_reply, args.value)
    out: dict[str, Any] = {
        "program_id": mirror.address,
        "message_id": hx(mid),
        "tx": hx(receipt["transactionHash"]),
        "block": int(receipt["blockNumber"]),
    }
    if not args.json:
        print(f"message     {out['message_id']}")
        print(f"tx          {out['tx']}")
        print(f"block       {out['block']}")
    if args.wait:
        return _finish_wait(args, chain, out, mirror.address, mid)
    if args.json:
        print(json.dumps(out))
    return 0


# not GEXE_NODE_RPC: GEXE_<SECTION>_* names are node-config overrides ([node] is a section)
INJECTED_RPC_ENV = "GEXE_INJECTED_RPC"
DEFAULT_NODE_RPC = "http://127.0.0.1:9944"


def _node_rpc_url(args: argparse.Namespace) -> str:
    import os

    if args.rpc_node:
        url, what = args.rpc_node, "--rpc-node"
    elif os.environ.get(INJECTED_RPC_ENV):
        url, what = os.environ[INJECTED_RPC_ENV], INJECTED_RPC_ENV
    else:
        return DEFAULT_NODE_RPC
    if not url.startswith(("http://", "https://", "ws://", "wss://")):
        raise UserError(
            f"{what} {url!r} is not an http(s) or ws(s) URL; give a validator's RPC, "
            f"e.g. {DEFAULT_NODE_RPC}"
        )
    if url.startswith("ws"):
        url = "http" + url[2:]
    return url.rstrip("/")


def _send_injected(args: argparse.Namespace, payload: bytes) -> int:
    """`program send --injected`: sign, send over the node's WebSocket, wait for the
    pre-confirmation, check the promises against the node's validator set."""
    import functools

    import trio

    from gexe.client import Client, ClientError, PromiseError, Refused, Timeout, watch
    from gexe.runtime import is_success

    if args.call_reply:
        raise UserError("--call-reply is for Ethereum messages; an injected reply is pre-confirmed")
    if args.value:
        raise UserError("an injected transaction cannot carry value; drop --value")
    program = parse_address(args.program, "PROGRAM")
    url = _node_rpc_url(args)
    signer = load_signer(args)
    tx_hash = ""
    with Client(url, signer, timeout=min(args.timeout, 30.0)) as client:
        try:
            stx = client.sign(program, payload)
            tx_hash = hx(client.domain().tx_hash(stx.tx))
            if not args.json:
                print(f"tx          {tx_hash}")
                print(f"node        {url}")
                print("waiting for the pre-confirmed reply…", flush=True)
            r = trio.run(functools.partial(watch, url, stx, timeout=args.timeout))
            signers = client.verify(r)
            total = len(client.info()["validators"])
        except Refused as e:
            raise UserError(f"the network refused the transaction: {e}") from None
        except Timeout as e:
            still = f"; {tx_hash} may still be executed" if tx_hash else ""
            raise UserError(f"{e}{still}") from None
        except PromiseError as e:
            raise UserError(f"the node's promises do not verify: {e}") from None
        except ClientError as e:
            raise UserError(f"validator at {url}: {e}") from None
    assert r.reply_payload is not None and r.reply_code is not None
    seq = r.sequencer_block or {}
    reply = {
        "payload_hex": hx(r.reply_payload),
        "payload_text": payload_text(r.reply_payload),
        "code": hx(r.reply_code),
        "code_name": reply_code_name(r.reply_code),
        "success": is_success(r.reply_code),
    }
    if args.json:
        out = {
            "tx": hx(r.tx_hash),
            "program_id": program,
            "sender": signer.address,
            "node": url,
            "status": r.status,
            "reply": reply,
            "promises": len(r.promises),
            "promise_signers": len(signers),
            "validators": total,
            "sequencer_block": seq or None,
        }
        print(json.dumps(out))
    else:
        print(f"reply       {show_payload(r.reply_payload)}")
        print(f"code        {reply['code_name']} ({reply['code']})")
        print(
            f"promises    {len(r.promises)} (signers of {len(signers)} of {total} validators, "
            "more than 2/3 of the stake: verified)"
        )
        if seq:
            print(
                f"seq block   {seq.get('height')} (anchored at Ethereum block "
                f"{seq.get('anchor_number')})"
            )
    return reply_exit(reply)


@chain_errors
def cmd_top_up(args: argparse.Namespace) -> int:
    if args.amount == 0:
        raise UserError("AMOUNT must be positive (WVARA base units)")
    chain = connect(args)
    mirror = chain.mirror(args.program)
    signer = load_signer(args)
    ensure_wvara(chain, signer, mirror.address, args.amount, "the top-up")
    with reverts_as("Mirror.executableBalanceTopUp"):
        receipt = mirror.send(signer, "executableBalanceTopUp", args.amount)
    out = {
        "program_id": mirror.address,
        "amount": args.amount,
        "tx": hx(receipt["transactionHash"]),
        "block": int(receipt["blockNumber"]),
    }
    if args.json:
        print(json.dumps(out))
    else:
        print(f"topped up   {mirror.address} with {args.amount} WVARA base units")
        print(f"tx          {out['tx']}")
        print(f"block       {out['block']}")
    return 0


def _node_state(url: str, program: str) -> dict[str, Any]:
    import httpx

    body = {"jsonrpc": "2.0", "id": 1, "method": "program_state", "params": [program]}
    try:
        r = httpx.post(url, json=body, timeout=30.0)
        reply = r.json()
    except httpx.HTTPError as e:
        raise UserError(
            f"cannot reach the validator at {url}: {type(e).__name__}; check --node"
        ) from None
    except ValueError:
        raise UserError(
            f"{url} did not answer as a gexe validator (HTTP {r.status_code}); check --node"
        ) from None
    if not isinstance(reply, dict):
        raise UserError(f"{url} did not answer as a gexe validator; check --node")
    if "error" in reply:
        err = reply["error"]
        msg = err.get("message", err) if isinstance(err, dict) else err
        raise UserError(f"validator at {url}: program_state failed: {msg}")
    result = reply.get("result")
    if not isinstance(result, dict):
        raise UserError(f"{url} did not answer as a gexe validator; check --node")
    return result


@chain_errors
def cmd_state(args: argparse.Namespace) -> int:
    from eth_utils import to_checksum_address

    chain = connect(args)
    mirror = chain.mirror(args.program)
    exited = bool(mirror.call("exited"))
    onchain: dict[str, Any] = {
        "program_id": mirror.address,
        "router": to_checksum_address(mirror.call("router")),
        "code_id": hx(chain.router.call("programCodeId", mirror.address)),
        "state_hash": hx(mirror.state_hash()),
        "nonce": mirror.nonce(),
        "initializer": to_checksum_address(mirror.call("initializer")),
        "exited": exited,
        "inheritor": to_checksum_address(mirror.call("inheritor")),
        "balance_wei": int(chain.w3.eth.get_balance(mirror.address)),
        "block": chain.head(),
    }
    node = _node_state(args.node, mirror.address) if args.node else None
    if args.json:
        print(json.dumps({"chain": onchain, "node": node}))
        return 0
    print(f"program     {onchain['program_id']}")
    print(f"code id     {onchain['code_id']}")
    print(f"state hash  {onchain['state_hash']}")
    print(f"nonce       {onchain['nonce']} (messages from Ethereum, init included)")
    print(f"initializer {onchain['initializer']}")
    print(f"router      {onchain['router']}")
    print("exited      " + (f"yes, inheritor {onchain['inheritor']}" if exited else "no"))
    if onchain["balance_wei"]:
        print(f"held wei    {onchain['balance_wei']} (undeliverable value, for the inheritor)")
    print(f"at block    {onchain['block']}")
    if node is not None:
        print(f"validator {args.node}:")
        for k, v in node.items():
            if k != "program_id":
                print(f"  {k:<18} {v}")
    return 0

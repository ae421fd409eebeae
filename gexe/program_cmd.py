"""`gexe program validate|run`: check a WASM file and run it in the local sandbox."""

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


def add_program_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    prog = sub.add_parser("program", help="validate and run programs locally")
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


def _read_code(path: Path) -> bytes:
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
    code = _read_code(args.file)
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


def _text(payload: bytes) -> str | None:
    try:
        s = payload.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return s if s.isprintable() else None


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
            "payload_text": _text(reply.payload),
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
    code = _read_code(args.file)
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

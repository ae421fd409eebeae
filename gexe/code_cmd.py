"""`gexe code upload|status`: put a program's WASM on a gexe network and follow its
validation.

`upload` validates the file locally first (the network would reject what the local
validator rejects: same rules), then calls `Router.requestCodeValidation(codeId, code)`
with the code as calldata. Validators recompute the id, validate the code and commit a
verdict: `Router.codeState` becomes Validated, or goes back to Unknown on an invalid
verdict. `--wait` polls that state.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from ._errors import UserError
from .chain_cmd import (
    CODE_REQUESTED,
    CODE_STATE_NAMES,
    CODE_UNKNOWN,
    CODE_VALIDATED,
    Chain,
    add_chain_options,
    add_wait_options,
    chain_errors,
    connect,
    hx,
    load_signer,
    parse_hash,
    reverts_as,
)
from .program_cmd import read_code


def add_code_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    code = sub.add_parser("code", help="upload program code to a network")
    csub = code.add_subparsers(dest="code_command", required=True, metavar="ACTION")

    u = csub.add_parser(
        "upload",
        help="validate a WASM file locally and request its validation on chain",
        description="Validate FILE locally, then send it to Router.requestCodeValidation. "
        "Prints the code id, the transaction and its block.",
    )
    u.add_argument("file", type=Path, metavar="FILE")
    u.add_argument(
        "--no-validate-locally",
        action="store_true",
        help="skip the local validation (uploads invalid code on purpose)",
    )
    add_wait_options(u, what="the validators' verdict is on chain", timeout=120.0)
    u.add_argument("--json", action="store_true", help="print one JSON object")
    add_chain_options(u, signer=True)
    u.set_defaults(func=cmd_upload)

    s = csub.add_parser("status", help="print a code's validation state on chain")
    s.add_argument("code", metavar="CODE_ID|FILE", help="0x code id, or a WASM file")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    add_chain_options(s, signer=False)
    s.set_defaults(func=cmd_status)


def _code_id_of(text: str) -> bytes:
    if text.lower().startswith("0x") and not Path(text).exists():
        return parse_hash(text, "CODE_ID")
    from gexe.contracts import code_id

    return code_id(read_code(Path(text)))


def _wait_verdict(chain: Chain, cid: bytes, timeout: float, poll: float) -> bool:
    """True once Validated, False once back to Unknown (an invalid verdict)."""
    deadline = time.monotonic() + timeout
    while True:
        state = chain.router.code_state(cid)
        if state == CODE_VALIDATED:
            return True
        if state == CODE_UNKNOWN:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            raise UserError(
                f"code {hx(cid)} still awaiting validation after {timeout:g} s; are the "
                f"network's validators running? check later with `gexe code status {hx(cid)}`"
            )
        time.sleep(min(poll, left))


@chain_errors
def cmd_upload(args: argparse.Namespace) -> int:
    code = read_code(args.file)
    if not code:
        raise UserError(f"{args.file}: the file is empty; give a .wasm file")
    if not args.no_validate_locally:
        from gexe.runtime import CodeError, validate

        try:
            validate(code)
        except CodeError as e:
            raise UserError(
                f"{args.file}: invalid program, not uploaded: {e} "
                "(--no-validate-locally uploads it anyway)"
            ) from None
    chain = connect(args)
    from gexe.contracts import code_id

    cid = code_id(code)
    out: dict[str, Any] = {"code_id": hx(cid), "tx": None, "block": None, "status": None}
    state = chain.router.code_state(cid)
    if state == CODE_UNKNOWN:
        signer = load_signer(args)
        with reverts_as("Router.requestCodeValidation"):
            receipt = chain.router.request_code_validation(signer, cid, code)
        out["tx"] = hx(receipt["transactionHash"])
        out["block"] = int(receipt["blockNumber"])
        out["status"] = CODE_STATE_NAMES[CODE_REQUESTED]
    else:
        out["status"] = CODE_STATE_NAMES[state]
        out["note"] = f"already uploaded ({CODE_STATE_NAMES[state]}); nothing sent"
    if not args.json:
        print(f"code id     {out['code_id']}")
        if out["tx"]:
            print(f"tx          {out['tx']}")
            print(f"block       {out['block']}")
        else:
            print(f"note        {out['note']}")
    rc = 0
    if args.wait:
        if not args.json and out["status"] != CODE_STATE_NAMES[CODE_VALIDATED]:
            print("waiting for the validators' verdict…", flush=True)
        valid = _wait_verdict(chain, cid, args.timeout, args.poll)
        out["status"] = "valid" if valid else "invalid"
        rc = 0 if valid else 1
        if not args.json:
            print(f"status      {out['status']}")
    if args.json:
        print(json.dumps(out))
    if rc:
        print(
            f"gexe: error: the validators rejected code {hx(cid)} (invalid WASM, or a code "
            "id that does not match the uploaded bytes)",
            file=sys.stderr,
        )
    return rc


@chain_errors
def cmd_status(args: argparse.Namespace) -> int:
    cid = _code_id_of(args.code)
    chain = connect(args)
    state = chain.router.code_state(cid)
    name = CODE_STATE_NAMES.get(state, f"state {state}")
    if args.json:
        print(json.dumps({"code_id": hx(cid), "state": name}))
    else:
        print(f"code id     {hx(cid)}")
        print(f"state       {name}")
    return 0

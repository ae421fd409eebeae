"""Shared plumbing of the commands that talk to a gexe network on Ethereum
(`gexe code …`, `gexe program create|send|top-up|state`).

Every chain command takes `--rpc URL` and `--router ADDR`; commands that send
transactions also take the keystore signer (`--keystore DIR`, `--from ADDR`,
`--password-file F` / `--password-env VAR`, a prompt when stdin is a terminal). Here:
option parsing, the web3 connection (one `eth_chainId` round trip up front, so an
unreachable node is one line), the Router and program checks, signer loading, WVARA
approvals, log polling, and `chain_errors`, which turns every chain failure — a
revert (decoded by name), a refused request, a lost connection, a transaction not
mined in time — into a one-line `UserError`.

web3, eth-account and `gexe.contracts` take ~2 s to import: they are imported inside
the functions, so `gexe program validate` and `gexe key` do not pay for them.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import getpass
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._errors import UserError

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from web3 import Web3

    from gexe.contracts import ContractRevert, DecodedLog, Mirror, Router

DEFAULT_RPC = "http://127.0.0.1:8545"
RPC_TIMEOUT = 30.0  # seconds per JSON-RPC request
LOG_RANGE = 1000  # blocks per eth_getLogs request (public nodes cap the range)
UINT128_MAX = (1 << 128) - 1

# Router.codeState
CODE_UNKNOWN, CODE_REQUESTED, CODE_VALIDATED = 0, 1, 2
CODE_STATE_NAMES = {
    CODE_UNKNOWN: "unknown",
    CODE_REQUESTED: "awaiting validation",
    CODE_VALIDATED: "validated",
}

_ADDRESS = re.compile(r"0[xX][0-9a-fA-F]{40}")


# ------------------------------------------------------------------ options


def add_chain_options(p: argparse.ArgumentParser, *, signer: bool) -> None:
    """--rpc and --router; with `signer`, the keystore options too."""
    g = p.add_argument_group("network")
    g.add_argument(
        "--rpc",
        default=None,
        metavar="URL",
        help=f"Ethereum JSON-RPC URL (default: $GEXE_ETH_RPC or {DEFAULT_RPC})",
    )
    g.add_argument(
        "--router",
        default=None,
        metavar="ADDR",
        help="the network's Router contract (default: $GEXE_ROUTER)",
    )
    if not signer:
        return
    k = p.add_argument_group("signer")
    k.add_argument(
        "--keystore",
        type=Path,
        default=None,
        metavar="DIR",
        help="keystore directory (default: $GEXE_KEYSTORE or ~/.gexe/keystore)",
    )
    k.add_argument(
        "--from",
        dest="sender",
        default=None,
        metavar="ADDR",
        help="address of the key to send from (default: the keystore's only key)",
    )
    pw = k.add_mutually_exclusive_group()
    pw.add_argument(
        "--password-file", type=Path, metavar="FILE", help="read the password from FILE"
    )
    pw.add_argument(
        "--password-env", metavar="VAR", help="read the password from environment variable VAR"
    )


def add_wait_options(p: argparse.ArgumentParser, *, what: str, timeout: float) -> None:
    p.add_argument("--wait", action="store_true", help=f"wait until {what}")
    p.add_argument(
        "--timeout",
        type=positive_float("--timeout"),
        default=timeout,
        metavar="SECONDS",
        help="how long --wait waits (default: %(default)g)",
    )
    p.add_argument(
        "--poll",
        type=positive_float("--poll"),
        default=0.5,
        metavar="SECONDS",
        help="seconds between checks while waiting (default: %(default)g)",
    )


def positive_float(what: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            v = -1.0
        if not v > 0:
            raise argparse.ArgumentTypeError(f"{what} must be a positive number of seconds")
        return v

    return parse


def uint(what: str, unit: str, limit: int = UINT128_MAX) -> Callable[[str], int]:
    """argparse type: a non-negative integer up to `limit` (decimal, `_` allowed, or 0x hex)."""

    def parse(text: str) -> int:
        try:
            v = int(text, 16) if text.lower().startswith("0x") else int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{what} {text!r} is not a whole number; give {unit} as digits"
            ) from None
        if v < 0:
            raise argparse.ArgumentTypeError(f"{what} {text} is negative; give 0 or more")
        if v > limit:
            raise argparse.ArgumentTypeError(f"{what} {text} is too large (at most 2^128 - 1)")
        return v

    return parse


def parse_address(text: str, what: str) -> str:
    """A checksummed address, or a one-line error naming the option."""
    if not _ADDRESS.fullmatch(text.strip()):
        raise UserError(f"{what} {text!r} is not an Ethereum address; give 0x and 40 hex digits")
    from eth_utils import to_checksum_address

    return to_checksum_address(text.strip())


def parse_hash(text: str, what: str) -> bytes:
    """32 bytes given as 0x and 64 hex digits."""
    raw = text.strip()
    try:
        data = bytes.fromhex(raw[2:]) if raw.lower().startswith("0x") else b""
    except ValueError:
        data = b""
    if len(data) != 32:
        raise UserError(f"{what} {text!r} is not a 32-byte id; give 0x and 64 hex digits")
    return data


def hx(data: bytes) -> str:
    return "0x" + bytes(data).hex()


def payload_text(payload: bytes) -> str | None:
    """The payload as text if it is printable UTF-8, else None."""
    try:
        s = payload.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return s if s.isprintable() else None


def show_payload(payload: bytes) -> str:
    if not payload:
        return "(empty)"
    text = payload_text(payload)
    return f'"{text}"  ({hx(payload)})' if text is not None else hx(payload)


# ------------------------------------------------------------------ errors


def _reason(exc: BaseException) -> str:
    """A short reason out of a requests/urllib3 exception chain."""
    text = str(exc)
    m = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if m:
        return m.group(1).strip().rstrip(".").lower()
    if "timed out" in text.lower() or "timeout" in type(exc).__name__.lower():
        return f"no answer within {RPC_TIMEOUT:g} s"
    return type(exc).__name__


def _fmt_arg(v: Any) -> str:
    if isinstance(v, bytes | bytearray):
        return hx(v)
    return str(v)


_REVERT_HINTS = {
    "CodeNotValidated": "the code is not validated on this network; upload it with "
    "`gexe code upload FILE --wait` first",
    "CodeAlreadyRequestedOrValidated": "the code is already uploaded; see "
    "`gexe code status CODE_ID`",
    "CodeNotRequested": "the code was never uploaded",
    "EmptyCode": "the code is empty",
    "ZeroCodeId": "the code id is zero",
    "FailedDeployment": "a program with this code and salt exists already; pass another --salt",
    "MirrorNotSet": "the Router is not fully deployed (no Mirror implementation)",
    "ERC20InsufficientBalance": "not enough WVARA; get some first",
    "ERC20InsufficientAllowance": "the WVARA allowance is too small",
    "WVaraTransferFailed": "the WVARA transfer failed",
    "ProgramExited": "the program has exited; it takes no more messages or top-ups",
    "InitMessageNotCreatedAndCallerNotInitializer": "the program has no init message yet, "
    "and only its creator may send the first one",
    "EtherTransferToRouterFailed": "the Router refused the value",
    "InvalidFallbackCall": "the address is not a gexe program",
}


def revert_message(exc: ContractRevert, action: str) -> str:
    err = exc.error
    if err is None:
        return f"{action} reverted: {exc}"
    call = f"{err.name}({', '.join(_fmt_arg(a) for a in err.args)})"
    hint = _REVERT_HINTS.get(err.name)
    return f"{action} reverted with {call}" + (f": {hint}" if hint else "")


def _rpc_message(exc: BaseException) -> str:
    resp = getattr(exc, "rpc_response", None)
    if isinstance(resp, dict) and isinstance(resp.get("error"), dict):
        msg = resp["error"].get("message")
        if msg:
            return str(msg)
    msg = getattr(exc, "message", None) or str(exc)
    return str(msg).splitlines()[0] if msg else type(exc).__name__


@contextlib.contextmanager
def reverts_as(action: str) -> Iterator[None]:
    """Name the call in a revert's one-line error, e.g. "Router.createProgramWithInit"."""
    from gexe.contracts import ContractRevert

    try:
        yield
    except ContractRevert as e:
        raise UserError(revert_message(e, action)) from None


def chain_errors(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn every chain failure inside a command into a one-line `UserError`."""

    @functools.wraps(fn)
    def wrapper(args: argparse.Namespace) -> int:
        import requests
        from web3.exceptions import TimeExhausted, Web3Exception, Web3RPCError

        from gexe.contracts import ContractRevert
        from gexe.node.keystore import KeystoreError

        url = rpc_url(args)
        try:
            return fn(args)
        except ContractRevert as e:
            raise UserError(revert_message(e, "the transaction")) from None
        except KeystoreError as e:
            raise UserError(str(e)) from None
        except requests.RequestException as e:
            raise UserError(
                f"lost Ethereum at {url}: {_reason(e)}; check the node and try again"
            ) from None
        except TimeExhausted as e:
            raise UserError(
                f"transaction not mined in time ({e}); it may still land: check it later"
            ) from None
        except Web3RPCError as e:
            raise UserError(f"the Ethereum node at {url} refused: {_rpc_message(e)}") from None
        except Web3Exception as e:
            raise UserError(f"Ethereum request to {url} failed: {_rpc_message(e)}") from None

    return wrapper


# ------------------------------------------------------------------ connection


def rpc_url(args: argparse.Namespace) -> str:
    # not GEXE_RPC: GEXE_<SECTION>_* variables are node-config overrides ([rpc] is a section)
    return getattr(args, "rpc", None) or os.environ.get("GEXE_ETH_RPC") or DEFAULT_RPC


def router_address(args: argparse.Namespace) -> str:
    text = getattr(args, "router", None) or os.environ.get("GEXE_ROUTER")
    if not text:
        raise UserError(
            "no Router address; pass --router ADDR or set GEXE_ROUTER to the network's Router"
        )
    return parse_address(text, "--router" if args.router else "GEXE_ROUTER")


@dataclass
class Chain:
    """A connection to Ethereum and the network's Router."""

    url: str
    w3: Web3
    chain_id: int
    router: Router

    def mirror(self, text: str, what: str = "PROGRAM") -> Mirror:
        """The program (Mirror) at `text`, checked to belong to this Router."""
        from gexe.contracts import Mirror

        address = parse_address(text, what)
        if bytes(self.router.call("programCodeId", address)) == bytes(32):
            raise UserError(
                f"{address} is not a program of the Router at {self.router.address} "
                f"(chain {self.chain_id}); check the program id and --router"
            )
        return Mirror(self.w3, address)

    def wvara_address(self) -> str:
        from eth_utils import to_checksum_address

        return to_checksum_address(self.router.call("wrappedVara"))

    def head(self) -> int:
        return int(self.w3.eth.block_number)


def connect(args: argparse.Namespace) -> Chain:
    """Web3 to --rpc and the Router at --router, both checked; one line on any problem."""
    router = router_address(args)
    url = rpc_url(args)
    if not url.lower().startswith(("http://", "https://")):
        raise UserError(f"--rpc {url!r} is not an http(s) URL; give e.g. {DEFAULT_RPC}")
    import requests
    from web3 import Web3

    from gexe.contracts import Router

    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": RPC_TIMEOUT}))
    try:
        chain_id = int(w3.eth.chain_id)
    except requests.RequestException as e:
        raise UserError(
            f"cannot reach Ethereum at {url}: {_reason(e)}; start a node or pass --rpc"
        ) from None
    except Exception as e:  # noqa: BLE001 - an HTTP server that is not an Ethereum node
        raise UserError(
            f"{url} did not answer as an Ethereum JSON-RPC node ({type(e).__name__}); check --rpc"
        ) from None
    if not w3.eth.get_code(router):
        raise UserError(
            f"no contract at --router {router} on chain {chain_id} ({url}); "
            "check the address and --rpc"
        )
    binding = Router(w3, router)
    try:
        binding.call("mirrorImpl")
        binding.call("wrappedVara")
    except Exception:  # noqa: BLE001 - any contract that is not a Router
        raise UserError(
            f"the contract at {router} (chain {chain_id}) is not a gexe Router; check --router"
        ) from None
    return Chain(url, w3, chain_id, binding)


# ------------------------------------------------------------------ signer


def keystore_dir(args: argparse.Namespace) -> Path:
    from gexe.node.keystore import DEFAULT_KEYSTORE

    d = getattr(args, "keystore", None)
    return Path(d or os.environ.get("GEXE_KEYSTORE") or DEFAULT_KEYSTORE).expanduser()


def load_signer(args: argparse.Namespace) -> LocalAccount:
    """Decrypt the key given by --from (or the keystore's only key)."""
    from gexe.node.keystore import KeystoreError, list_keys, load_key, load_key_with

    directory = keystore_dir(args)
    try:
        if args.sender:
            key = parse_address(args.sender, "--from")
        else:
            keys = list_keys(directory)
            if not keys:
                raise UserError(
                    f"no keys in {directory}; create one with `gexe key new` or "
                    "`gexe key import KEYFILE`, or pass --keystore DIR"
                )
            if len(keys) > 1:
                raise UserError(
                    f"{len(keys)} keys in {directory}; choose one with --from ADDR "
                    "(see `gexe key list`)"
                )
            key = keys[0].address
        if args.password_file is None and args.password_env is None:
            if not sys.stdin.isatty():
                raise UserError(
                    "no password given for the keystore; use --password-file FILE "
                    "or --password-env VAR"
                )
            return load_key(key, getpass.getpass(f"password for {key}: "), keystore=directory)
        return load_key_with(
            key,
            keystore=directory,
            password_file=args.password_file,
            password_env=args.password_env,
        )
    except KeystoreError as e:
        raise UserError(str(e)) from None


# ------------------------------------------------------------------ WVARA


def ensure_wvara(chain: Chain, signer: LocalAccount, spender: str, amount: int, what: str) -> None:
    """Check `signer` holds `amount` WVARA and let `spender` pull it (approve if needed)."""
    if amount == 0:
        return
    from gexe.contracts import WrappedVara

    wvara = WrappedVara(chain.w3, chain.wvara_address())
    held = wvara.balance_of(signer.address)
    if held < amount:
        raise UserError(
            f"{signer.address} holds {held} WVARA base units, {what} needs {amount}; "
            "get WVARA first (or lower the amount)"
        )
    if int(wvara.call("allowance", signer.address, spender)) < amount:
        wvara.approve(signer, spender, amount)


# ------------------------------------------------------------------ waiting


def wait_for_log(
    chain: Chain,
    *,
    address: str,
    event: str,
    contract: str,
    from_block: int,
    match: Callable[[DecodedLog], bool],
    timeout: float,
    poll: float,
) -> tuple[DecodedLog | None, int]:
    """Poll eth_getLogs on `address` for `event` from `from_block` until `match` accepts one
    or `timeout` passes; returns (the log or None, the last block searched)."""
    from gexe.contracts import LogDecoder, topics_of

    decoder = LogDecoder((contract,))
    topic = hx(topics_of(contract)[event])
    deadline = time.monotonic() + timeout
    cursor = from_block
    while True:
        latest = chain.head()
        while cursor <= latest:
            end = min(latest, cursor + LOG_RANGE - 1)
            logs = chain.w3.eth.get_logs(
                {"address": address, "topics": [topic], "fromBlock": cursor, "toBlock": end}
            )
            for raw in logs:
                d = decoder.decode(raw)  # type: ignore[arg-type]
                if d is not None and match(d):
                    return d, end
            cursor = end + 1
        left = deadline - time.monotonic()
        if left <= 0:
            return None, cursor - 1
        time.sleep(min(poll, left))


def wait_for_reply(
    chain: Chain,
    mirror: str,
    message_id: bytes,
    from_block: int,
    *,
    timeout: float,
    poll: float,
) -> dict[str, Any]:
    """The `Reply` of `mirror` to `message_id` as a dict, or a one-line error on timeout."""
    from gexe.runtime import is_success, reply_code_name

    log, last = wait_for_log(
        chain,
        address=mirror,
        event="Reply",
        contract="Mirror",
        from_block=from_block,
        match=lambda d: bytes(d.args["replyTo"]) == message_id,
        timeout=timeout,
        poll=poll,
    )
    if log is None:
        raise UserError(
            f"no reply to message {hx(message_id)} on chain within {timeout:g} s "
            f"(searched blocks {from_block}-{last}); is the network's sequencer running? "
            "wait longer with --timeout"
        )
    payload = bytes(log.args["payload"])
    code = bytes(log.args["replyCode"])
    block = int(log.block_number or 0)
    return {
        "payload_hex": hx(payload),
        "payload_text": payload_text(payload),
        "code": hx(code),
        "code_name": reply_code_name(code),
        "success": is_success(code),
        "value": int(log.args["value"]),
        "block": block,
        "blocks_elapsed": block - from_block,
        "tx": hx(log.transaction_hash or b""),
    }


def print_reply(reply: dict[str, Any]) -> None:
    payload = bytes.fromhex(reply["payload_hex"][2:])
    print(f"reply       {show_payload(payload)}")
    print(f"code        {reply['code_name']} ({reply['code']})")
    if reply["value"]:
        print(f"value       {reply['value']} wei")
    print(f"reply block {reply['block']} ({reply['blocks_elapsed']} blocks after the message)")


def reply_exit(reply: dict[str, Any]) -> int:
    """0 for a success reply; 1 (with a one-line note on stderr) for an error reply."""
    if reply["success"]:
        return 0
    print(
        f"gexe: error: the program replied with {reply['code_name']} ({reply['code']})",
        file=sys.stderr,
    )
    return 1

"""`gexe.client`: the Python API for dApps talking to a gexe network.

```python
from gexe.client import Client
c = Client("http://127.0.0.1:9944", account)           # a validator's RPC, an eth-account key
r = c.send_injected(program, b"PING")                   # signed, sent, waits for pre-confirmation
r.reply_payload, r.reply_code, r.promises               # the reply and the validators' promises
c.verify(r)                                             # promises checked against the validator set
await c.send_injected_watch(program, b"PING")           # the same over a WebSocket (trio)
c.state(program)                                        # the program's state at the node's head
e = EthereumClient(eth_rpc, router, account)            # the Ethereum path
e.send_message(program, b"PING")                        # Mirror.sendMessage, waits for the Reply
c.verify(r, e.validators())                             # promises against the Router's set
```

Injected transactions (see `gexe.contracts.injected`): the client signs an EIP-712
`InjectedTransaction` with the account's key, naming a recent block (`reference_block`,
from `injected_info`) and a random salt; the node checks and forwards it; the receipt
goes `pending → executed → preconfirmed` (or `refused` / `expired`, both final). A
receipt's promises are signatures by validators over (tx hash, keccak(reply), reply
code); `verify` recovers each one and requires signers holding more than 2/3 of the
stake of the set it is given (by default the node's own `injected_info` view; pass the
set read from the Router to trust nothing but the chain).

Errors are typed: `RpcError` (the node answered with an error), `Refused` (the node or
the network refused the transaction — the reason says why), `Timeout`, `PromiseError`
(promises that do not verify).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any

import httpx

from gexe.contracts.injected import (
    BadSignature,
    Domain,
    InjectedTransaction,
    Promise,
    SignedTransaction,
)

FINAL = ("preconfirmed", "refused", "expired")


class ClientError(Exception):
    """Anything the client library raises on purpose."""


class RpcError(ClientError):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{message} (RPC error {code})")
        self.code = code
        self.message = message


class Refused(ClientError):
    """The transaction was refused (by the node at once, or by the sequencer block)."""


class Timeout(ClientError):
    pass


class PromiseError(ClientError):
    pass


def _b(h: str | None) -> bytes:
    return bytes.fromhex(h[2:]) if h else b""


@dataclass(frozen=True, slots=True)
class Receipt:
    tx_hash: bytes
    status: str
    reason: str | None
    sender: bytes
    destination: bytes
    sequencer_block: dict[str, Any] | None
    reply_payload: bytes | None
    reply_code: bytes | None
    promises: tuple[tuple[bytes, bytes], ...]  # (validator, signature)
    raw: dict[str, Any]

    @classmethod
    def from_json(cls, r: dict[str, Any]) -> Receipt:
        rep = r.get("reply")
        return cls(
            _b(r["hash"]),
            r["status"],
            r.get("reason"),
            _b(r["sender"]),
            _b(r["destination"]),
            r.get("sequencer_block"),
            _b(rep["payload"]) if rep else None,
            _b(rep["code"]) if rep else None,
            tuple((_b(p["validator"]), _b(p["signature"])) for p in r.get("promises", ())),
            r,
        )

    @property
    def final(self) -> bool:
        return self.status in FINAL

    def promise(self) -> Promise:
        if self.reply_payload is None or self.reply_code is None:
            raise PromiseError("the receipt has no reply yet")
        from eth_utils import keccak

        return Promise(self.tx_hash, keccak(self.reply_payload), self.reply_code)


def tx_json(stx: SignedTransaction) -> dict[str, Any]:
    t = stx.tx
    return {
        "destination": "0x" + t.destination.hex(),
        "payload": "0x" + t.payload.hex(),
        "value": t.value,
        "referenceBlock": "0x" + t.reference_block.hex(),
        "salt": "0x" + t.salt.hex(),
        "signature": "0x" + stx.signature.hex(),
    }


class Client:
    """A dApp's connection to one validator's RPC (HTTP; WebSocket for watching)."""

    def __init__(self, rpc_url: str, account: Any = None, *, timeout: float = 10.0) -> None:
        self.url = rpc_url.rstrip("/")
        self.account = account
        self.timeout = timeout
        self._http = httpx.Client(timeout=timeout)
        self._ids = 0
        self._info: dict[str, Any] | None = None
        self._info_at = 0.0

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing
    def call(self, method: str, *params: Any) -> Any:
        self._ids += 1
        body = {"jsonrpc": "2.0", "id": self._ids, "method": method, "params": list(params)}
        try:
            r = self._http.post(self.url, json=body)
        except httpx.TimeoutException:
            raise Timeout(f"{method}: no answer from {self.url} in {self.timeout} s") from None
        except httpx.HTTPError as e:
            raise ClientError(f"{method}: cannot reach {self.url}: {e}") from None
        try:
            data = r.json()
        except ValueError:
            raise ClientError(
                f"{method}: {self.url} answered HTTP {r.status_code}, not JSON"
            ) from None
        if "error" in data:
            err = data["error"]
            if err.get("code") == -32001:
                raise Refused(err.get("message", "refused"))
            raise RpcError(int(err.get("code", 0)), str(err.get("message", "")))
        return data.get("result")

    def info(self, max_age: float = 1.0) -> dict[str, Any]:
        if self._info is None or time.monotonic() - self._info_at > max_age:
            self._info = self.call("injected_info")
            self._info_at = time.monotonic()
        assert self._info is not None
        return self._info

    def domain(self) -> Domain:
        i = self.info(max_age=3600)
        return Domain(int(i["chain_id"]), i["router"])

    # -- injected transactions
    def sign(
        self,
        program: str | bytes,
        payload: bytes,
        *,
        reference_block: bytes | None = None,
        salt: bytes | None = None,
    ) -> SignedTransaction:
        if self.account is None:
            raise ClientError("signing needs an account: Client(url, account)")
        dest = _b(program) if isinstance(program, str) else bytes(program)
        if len(dest) == 32:
            dest = dest[12:]
        if reference_block is None:
            reference_block = _b(self.info()["head"]["hash"])
        tx = InjectedTransaction(dest, payload, reference_block, salt or os.urandom(32))
        return self.domain().sign_tx(self.account.key, tx)

    def submit(self, stx: SignedTransaction) -> bytes:
        return _b(self.call("injected_sendTransaction", tx_json(stx)))

    def receipt(self, tx_hash: bytes) -> Receipt | None:
        r = self.call("injected_getTransactionReceipt", "0x" + tx_hash.hex())
        return None if r is None else Receipt.from_json(r)

    def wait(self, tx_hash: bytes, *, timeout: float = 10.0, poll: float = 0.01) -> Receipt:
        deadline = time.monotonic() + timeout
        while True:
            r = self.receipt(tx_hash)
            if r is not None and r.final:
                if r.status != "preconfirmed":
                    raise Refused(f"transaction 0x{tx_hash.hex()} {r.status}: {r.reason}")
                return r
            if time.monotonic() > deadline:
                st = r.status if r else "unknown"
                raise Timeout(f"transaction 0x{tx_hash.hex()} still {st} after {timeout} s")
            time.sleep(poll)

    def send_injected(
        self, program: str | bytes, payload: bytes, *, timeout: float = 10.0
    ) -> Receipt:
        """Sign, send and wait for the pre-confirmed reply (polling the receipt)."""
        return self.wait(self.submit(self.sign(program, payload)), timeout=timeout)

    async def send_injected_watch(
        self, program: str | bytes, payload: bytes, *, timeout: float = 10.0
    ) -> Receipt:
        """The same over a WebSocket subscription (trio): no polling."""
        return await watch(self.url, self.sign(program, payload), timeout=timeout)

    # -- checking promises
    def verify(self, r: Receipt, validators: dict[bytes, int] | None = None) -> dict[bytes, int]:
        """Check every promise of `r` and that their signers hold > 2/3 of the stake of
        `validators` ({address: stake}; default: the node's view). Returns the signers."""
        if validators is None:
            validators = {_b(v["address"]): int(v["stake"]) for v in self.info()["validators"]}
        return verify_promises(self.domain(), r, validators)

    # -- state
    def state(self, program: str | bytes, block: Any = None) -> dict[str, Any]:
        pid = program if isinstance(program, str) else "0x" + bytes(program).hex()
        return self.call("program_state", pid, *([] if block is None else [block]))

    def calculate_reply(
        self, source: str, program: str, payload: bytes, value: int = 0
    ) -> dict[str, Any]:
        return self.call(
            "program_calculateReplyForHandle", source, program, "0x" + payload.hex(), value
        )


@dataclass(frozen=True, slots=True)
class OnChainReply:
    message_id: bytes
    payload: bytes
    code: bytes
    block: int
    tx_hash: bytes  # the commitBatch transaction that carried it
    request_block: int


class EthereumClient:
    """The Ethereum side for a dApp: messages through a program's Mirror (answered on chain
    once a batch carries the reply) and the validator set read from the Router."""

    def __init__(self, eth_rpc_url: str, router: str, account: Any = None) -> None:
        from web3 import Web3

        from gexe.contracts import Router

        from .chain_cmd import Chain

        self.account = account
        w3 = Web3(Web3.HTTPProvider(eth_rpc_url, request_kwargs={"timeout": 30}))
        try:
            chain_id = int(w3.eth.chain_id)
        except Exception as e:  # noqa: BLE001 - any transport or protocol failure
            raise ClientError(f"cannot reach Ethereum at {eth_rpc_url}: {e}") from None
        self.chain = Chain(eth_rpc_url, w3, chain_id, Router(w3, router))

    def validators(self, era: int | None = None) -> dict[bytes, int]:
        """{signer address: stake} of the current era (or `era`), from the Router."""
        r = self.chain.router
        pairs = r.validators() if era is None else r.era_validators(era)
        return {_b(a): int(w) for a, w in pairs}

    def send_message(
        self, program: str, payload: bytes, *, value: int = 0, timeout: float = 120.0
    ) -> OnChainReply:
        """`Mirror.sendMessage(payload, false)` and wait for the program's Reply on chain."""
        from .chain_cmd import wait_for_log

        if self.account is None:
            raise ClientError("sending needs an account: EthereumClient(url, router, account)")
        from ._errors import UserError

        try:
            mirror = self.chain.mirror(program)
        except UserError as e:
            raise ClientError(str(e)) from None
        try:
            receipt, mid = mirror.send_message(self.account, payload, False, value)
        except Exception as e:  # noqa: BLE001 - a revert or a transport error, as one line
            raise ClientError(f"Mirror.sendMessage on {program}: {e}") from None
        block = int(receipt["blockNumber"])
        log, last = wait_for_log(
            self.chain,
            address=mirror.address,
            event="Reply",
            contract="Mirror",
            from_block=block,
            match=lambda d: bytes(d.args["replyTo"]) == mid,
            timeout=timeout,
            poll=0.2,
        )
        if log is None:
            raise Timeout(f"no reply to 0x{mid.hex()} on chain by block {last} ({timeout} s)")
        return OnChainReply(
            mid,
            bytes(log.args["payload"]),
            bytes(log.args["replyCode"]),
            int(log.block_number or 0),
            bytes(log.transaction_hash or b""),
            block,
        )


def verify_promises(domain: Domain, r: Receipt, validators: dict[bytes, int]) -> dict[bytes, int]:
    p = r.promise()
    signers: dict[bytes, int] = {}
    for v, sig in r.promises:
        try:
            who = domain.promise_signer(p, sig)
        except BadSignature as e:
            raise PromiseError(f"promise by 0x{v.hex()} does not verify: {e}") from None
        if who != v:
            raise PromiseError(f"promise claims 0x{v.hex()} but was signed by 0x{who.hex()}")
        if v in validators:
            signers[v] = validators[v]
    total = sum(validators.values())
    if total == 0 or 3 * sum(signers.values()) <= 2 * total:
        raise PromiseError(
            f"promises from {len(signers)} validator(s) hold "
            f"{sum(signers.values())} of {total} stake; more than 2/3 is needed"
        )
    return signers


async def watch(url: str, stx: SignedTransaction, *, timeout: float = 10.0) -> Receipt:
    """`injected_sendTransactionAndWatch` on `url` (ws:// or http:// of a validator)."""
    import trio
    import trio_websocket

    ws_url = "ws" + url[4:] if url.startswith("http") else url
    try:
        return await _watch(ws_url, stx, timeout)
    except trio.TooSlowError:
        raise Timeout(f"no final receipt from {url} in {timeout} s") from None
    except (OSError, trio_websocket.HandshakeError, trio_websocket.ConnectionClosed) as e:
        raise ClientError(f"cannot watch over {ws_url}: {e}") from None


async def _watch(ws_url: str, stx: SignedTransaction, timeout: float) -> Receipt:
    import trio
    import trio_websocket

    with trio.fail_after(timeout):
        async with trio_websocket.open_websocket_url(ws_url) as ws:
            await ws.send_message(
                json.dumps(
                    {
                        "jsonrpc": "2.0",
                        "id": 1,
                        "method": "injected_sendTransactionAndWatch",
                        "params": [tx_json(stx)],
                    }
                )
            )
            while True:
                msg = json.loads(await ws.get_message())
                if "error" in msg:
                    err = msg["error"]
                    if err.get("code") == -32001:
                        raise Refused(err.get("message", "refused"))
                    raise RpcError(int(err.get("code", 0)), str(err.get("message", "")))
                if msg.get("method") != "subscription":
                    continue
                r = Receipt.from_json(msg["params"]["result"])
                if r.final:
                    if r.status != "preconfirmed":
                        raise Refused(f"transaction 0x{r.tx_hash.hex()} {r.status}: {r.reason}")
                    return r


__all__ = [
    "Client",
    "ClientError",
    "EthereumClient",
    "OnChainReply",
    "PromiseError",
    "Receipt",
    "Refused",
    "RpcError",
    "Timeout",
    "tx_json",
    "verify_promises",
    "watch",
]

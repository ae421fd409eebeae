"""A small Ethereum JSON-RPC client for trio programs (httpx over anyio).

web3.py's async API is asyncio-only; this client speaks JSON-RPC 2.0 over `httpx.AsyncClient`,
which runs under trio through anyio, and keeps cancellation working (a cancelled request is
simply abandoned). Values come back as Python types: ints for quantities, bytes for hashes and
data, raw dicts (hex strings) for blocks, logs and receipts. ABI encoding stays with
eth_abi / web3 (see `events.py` to decode logs).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import httpx
import trio

from .artifacts import DecodedError, decode_error

BlockId = int | str  # a number, or "latest" / "pending" / "safe" / "finalized" / "earliest"


class RpcError(Exception):
    """The node answered with a JSON-RPC error (`data` holds revert data if any)."""

    def __init__(self, method: str, code: int, message: str, data: Any = None) -> None:
        self.method = method
        self.code = code
        self.message = message
        self.data = data
        super().__init__(f"{method}: {message} (code {code})")

    @property
    def revert_data(self) -> bytes:
        if isinstance(self.data, str) and self.data.startswith("0x"):
            return bytes.fromhex(self.data[2:])
        return b""

    @property
    def revert(self) -> DecodedError | None:
        """The decoded custom error of a reverted call, if it is one of ours."""
        return decode_error(self.revert_data)


def _hex(value: bytes | str) -> str:
    return value if isinstance(value, str) else "0x" + bytes(value).hex()


def _block(block: BlockId) -> str:
    return hex(block) if isinstance(block, int) else block


def _qty(value: str) -> int:
    return int(value, 16)


def _data(value: str) -> bytes:
    return bytes.fromhex(value.removeprefix("0x"))


class EthClient:
    """Ethereum JSON-RPC over HTTP, usable from trio."""

    def __init__(
        self, url: str, *, timeout: float = 30.0, http: httpx.AsyncClient | None = None
    ) -> None:
        self.url = url
        self._own = http is None
        self._http = http or httpx.AsyncClient(timeout=timeout)
        self._ids = itertools.count(1)

    async def aclose(self) -> None:
        if self._own:
            await self._http.aclose()

    async def __aenter__(self) -> EthClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- transport --

    async def request(self, method: str, params: Sequence[Any] = ()) -> Any:
        """One JSON-RPC call; returns `result` or raises RpcError."""
        body = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": list(params)}
        response = await self._http.post(self.url, json=body)
        response.raise_for_status()
        reply = response.json()
        if "error" in reply:
            err = reply["error"]
            raise RpcError(method, err.get("code", 0), err.get("message", ""), err.get("data"))
        return reply["result"]

    async def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """Several calls in one HTTP request; results in order (the first error raises)."""
        if not calls:
            return []
        first = next(self._ids)
        for _ in range(len(calls) - 1):
            next(self._ids)
        body = [
            {"jsonrpc": "2.0", "id": first + i, "method": m, "params": list(p)}
            for i, (m, p) in enumerate(calls)
        ]
        response = await self._http.post(self.url, json=body)
        response.raise_for_status()
        by_id = {r["id"]: r for r in response.json()}
        out = []
        for i, (method, _) in enumerate(calls):
            reply = by_id[first + i]
            if "error" in reply:
                err = reply["error"]
                raise RpcError(method, err.get("code", 0), err.get("message", ""), err.get("data"))
            out.append(reply["result"])
        return out

    # -- chain --

    async def chain_id(self) -> int:
        return _qty(await self.request("eth_chainId"))

    async def block_number(self) -> int:
        return _qty(await self.request("eth_blockNumber"))

    async def get_block(
        self, block: BlockId = "latest", full: bool = False
    ) -> dict[str, Any] | None:
        return await self.request("eth_getBlockByNumber", [_block(block), full])

    async def get_block_by_hash(
        self, block_hash: bytes | str, full: bool = False
    ) -> dict[str, Any] | None:
        return await self.request("eth_getBlockByHash", [_hex(block_hash), full])

    async def get_logs(
        self,
        *,
        from_block: BlockId,
        to_block: BlockId,
        address: str | Sequence[str] | None = None,
        topics: Sequence[Any] | None = None,
    ) -> list[dict[str, Any]]:
        """eth_getLogs; `topics` entries are bytes, lists of bytes (any of) or None."""
        query: dict[str, Any] = {"fromBlock": _block(from_block), "toBlock": _block(to_block)}
        if address is not None:
            query["address"] = address if isinstance(address, str) else list(address)
        if topics is not None:
            query["topics"] = [
                None
                if t is None
                else [_hex(x) for x in t]
                if isinstance(t, list | tuple)
                else _hex(t)
                for t in topics
            ]
        return await self.request("eth_getLogs", [query])

    async def get_transaction(self, tx_hash: bytes | str) -> dict[str, Any] | None:
        return await self.request("eth_getTransactionByHash", [_hex(tx_hash)])

    async def get_receipt(self, tx_hash: bytes | str) -> dict[str, Any] | None:
        return await self.request("eth_getTransactionReceipt", [_hex(tx_hash)])

    async def get_balance(self, address: str, block: BlockId = "latest") -> int:
        return _qty(await self.request("eth_getBalance", [address, _block(block)]))

    async def get_code(self, address: str, block: BlockId = "latest") -> bytes:
        return _data(await self.request("eth_getCode", [address, _block(block)]))

    async def nonce(self, address: str, block: BlockId = "pending") -> int:
        return _qty(await self.request("eth_getTransactionCount", [address, _block(block)]))

    async def gas_price(self) -> int:
        return _qty(await self.request("eth_gasPrice"))

    # -- execution --

    async def call(
        self, to: str, data: bytes, *, sender: str | None = None, block: BlockId = "latest"
    ) -> bytes:
        """eth_call; a revert raises RpcError (see `.revert`)."""
        tx: dict[str, Any] = {"to": to, "data": _hex(data)}
        if sender:
            tx["from"] = sender
        return _data(await self.request("eth_call", [tx, _block(block)]))

    async def estimate_gas(self, tx: dict[str, Any]) -> int:
        return _qty(await self.request("eth_estimateGas", [tx]))

    async def send_raw_transaction(self, raw: bytes) -> bytes:
        return _data(await self.request("eth_sendRawTransaction", [_hex(raw)]))

    async def wait_for_receipt(
        self, tx_hash: bytes | str, *, poll_interval: float = 0.05, timeout: float = 120.0
    ) -> dict[str, Any]:
        """Poll until the transaction is mined; raises TooSlowError after `timeout` seconds."""
        with trio.fail_after(timeout):
            while True:
                receipt = await self.get_receipt(tx_hash)
                if receipt is not None:
                    return receipt
                await trio.sleep(poll_interval)

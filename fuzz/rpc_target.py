"""Target `rpc`: the JSON-RPC dispatcher with the validator's real methods.

The methods are `ValidatorApi`'s, over a real LMDB store (in a temporary directory)
holding a few blocks: the `ping` and `counter` programs uploaded, created, initialised
and called once, and one invalid code upload. Case generation knows their ids, block
numbers and hashes, so hostile calls reach deep into the handlers as well as failing
at the edges.

Cases: single requests and batches (up to a few past the 100-call limit) with wrong or
missing `jsonrpc`, ids of every JSON type, real and made-up method names, positional
and named params of wrong types, huge and negative numbers, NaN and infinities, long
digit strings, bad hex, lone surrogates, nesting; plus deeply nested text (10 to
200,000 levels), invalid UTF-8, trailing garbage, mutated requests and raw bytes.

Property: `RpcDispatcher.handle` returns None (notifications only) or JSON: one
response object or a non-empty list of them, each `{"jsonrpc": "2.0", "id", "result" |
"error"}` with an integer code and a string message — never an exception, and never
-32603 (a handler raising on hostile input is a bug even when it is caught). Queries
never change the node: the store's head and the runtime state stay the same.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import trio
from gexe.contracts import code_id
from gexe.node.store import Store
from gexe.runtime import CreateProgram, Executor, QueueMessage, TopUpExecutableBalance
from gexe.validator.api import Hub, ValidatorApi
from gexe.validator.chain import Header
from gexe.validator.compute import Compute, hx
from gexe.validator.events import CodeUpload
from gexe.validator.rpc import INTERNAL_ERROR, MAX_BATCH, RpcDispatcher, Session

from gexe import programs

from .base import Finding, Target, must
from .source import Recorder, Source

USER = bytes(12) + b"\x11" * 20


class ApiFixture:
    """A real store with a few processed blocks, and the method table over it."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="gexe-fuzz-rpc-"))
        self.store = Store(self.dir / "store")
        self.compute = Compute(self.store)
        self.hub = Hub()
        self.executor = Executor()  # shared by every case's ValidatorApi (queries)
        self.headers: list[Header] = []
        ping, counter = (programs.path(n).read_bytes() for n in ("ping", "counter"))
        self.code_ids = [code_id(ping), code_id(counter), code_id(b"not wasm")]
        self.pids = [bytes(12) + bytes([i + 1]) * 20 for i in range(2)]
        self._block(
            CodeUpload(self.code_ids[0], ping, b"\1" * 32),
            CodeUpload(self.code_ids[1], counter, b"\2" * 32),
            CodeUpload(self.code_ids[2], b"not wasm", b"\3" * 32),
        )
        self._block(
            *[CreateProgram(p, c) for p, c in zip(self.pids, self.code_ids, strict=False)],
            *[TopUpExecutableBalance(p, 10**15) for p in self.pids],
        )
        self._block(*[QueueMessage(p, os.urandom(32), USER) for p in self.pids])
        self._block(QueueMessage(self.pids[0], os.urandom(32), USER, b"PING", 5))
        self._block()
        self.head = self.compute.head
        self.state = self.compute.state

    def _block(self, *items: object) -> None:
        n = len(self.headers) + 100
        parent = self.headers[-1].hash if self.headers else bytes(32)
        h = Header(n, os.urandom(32), parent, 1_700_000_000 + n)
        self.compute.apply(h, list(items))  # type: ignore[arg-type]
        self.headers.append(h)

    def status(self) -> dict[str, Any]:
        head = self.compute.head
        return {"head": head.number if head else None, "peers": 0, "era": 0}

    def api(self, nursery: trio.Nursery) -> ValidatorApi:
        api = ValidatorApi(self.compute, self.hub, self.status, nursery)
        api._query_executor = self.executor
        return api

    def unchanged(self) -> bool:
        return (
            self.compute.head == self.head
            and self.compute.state is self.state
            and (self.store.head() == self.head)
        )

    def param_vocabulary(self) -> dict[str, list[Any]]:
        """Meaningful values per parameter name, so calls get past the type checks."""
        pids = [hx(p) for p in self.pids] + [hx(p[12:]) for p in self.pids]
        return {
            "source": [hx(USER[12:]), hx(USER), hx(self.pids[1])],
            "program_id": [*pids, hx(b"\x77" * 20)],
            "payload": ["0x", "0x50494e47", "0x696e63", "0x" + "00" * 64],
            "value": [0, 1, 5, 2**128 - 1, "0x10"],
            "block": [None, "latest", 100, 102, 104, *[hx(h.hash) for h in self.headers]],
            "code_id": [hx(c) for c in self.code_ids] + [hx(b"\x66" * 32)],
            "kind": ["blockResults", "programReplies"],
            "filter": [None, {}, {"program_id": pids[0]}, {"destination": hx(USER)}],
            "subscription": ["0x1", "0x2"],
        }

    def vocabulary(self) -> list[Any]:
        """JSON values that mean something to the methods."""
        out: list[Any] = ["latest", "0x", 0, 100, 102, 104, 105, 99, "0x66"]
        for p in self.pids:
            out += [hx(p), hx(p[12:]), hx(p[12:]).upper().replace("0X", "0x")]
        out += [hx(c) for c in self.code_ids]
        out += [hx(h.hash) for h in self.headers]
        out += [hx(USER[12:]), {"program_id": hx(self.pids[0])}, "blockResults"]
        out += ["programReplies", {"destination": hx(USER)}, "0x1"]
        return out

    def close(self) -> None:
        self.compute.close()
        self.store.close()
        self.executor.close()
        shutil.rmtree(self.dir, ignore_errors=True)


# ------------------------------------------------------------------ generation

EDGE_NUMBERS: tuple[Any, ...] = (
    -1,
    -(2**63),
    2**63,
    2**64,
    2**128 - 1,
    2**128,
    2**256,
    10**30,
    0.5,
    -0.0,
    1e308,
    math.nan,
    math.inf,
    -math.inf,
    True,
    False,
)
EDGE_STRINGS = (
    "",
    "0x",
    "0x0",
    "0xzz",
    "0X" + "11" * 20,
    "0x" + "1" * 41,
    "0x" + "g" * 64,
    "0x" + "00" * 32,
    "0x" + "ff" * 2000,
    "1" * 5000,
    "-5",
    " 12",
    "1_0",
    "latest ",
    "\u00fc",
    "\ud800",
    "\x00",
)
JUNK_METHODS = ("", "x", "program_state ", "__init__", "methods", "rpc.discover", "PROGRAM_IDS")


def json_value(src: Source, depth: int, vocab: list[Any]) -> Any:
    kind = src.int(0, 9 if depth > 0 else 6)
    if kind in (0, 1, 2):
        return src.pick(vocab)
    if kind == 3:
        return src.pick(EDGE_NUMBERS)
    if kind == 4:
        return src.pick(EDGE_STRINGS)
    if kind == 5:
        return None
    if kind == 6:
        return src.int(-(2**70), 2**70)
    if kind in (7, 8):
        return [json_value(src, depth - 1, vocab) for _ in range(src.int(0, 4))]
    return {src.pick(KEYS): json_value(src, depth - 1, vocab) for _ in range(src.int(0, 4))}


KEYS = ("program_id", "block", "source", "payload", "value", "code_id", "kind", "filter", "x")


class RpcTarget(Target):
    name = "rpc"
    about = "JSON-RPC dispatcher over the real ValidatorApi: hostile JSON → error objects"

    def open(self) -> None:
        self.fx = ApiFixture()
        self.vocab = self.fx.vocabulary()
        api = self.fx.api(None)  # type: ignore[arg-type]  # only to read the table
        self.methods = sorted(api.methods())
        self.params = {
            name: [p for p in inspect.signature(fn).parameters][1:]
            for name, fn in api.methods().items()
        }
        self.by_param = self.fx.param_vocabulary()

    def close(self) -> None:
        self.fx.close()

    def _request(self, src: Source) -> dict[str, Any]:
        obj: dict[str, Any] = {}
        if src.int(0, 9):
            obj["jsonrpc"] = "2.0"
        elif src.bool():
            obj["jsonrpc"] = json_value(src, 1, self.vocab)
        if src.int(0, 7):
            ids: tuple[Any, ...] = (1, 0, -1, "a", None, 2**70, 1.5, True, [], {}, math.nan)
            obj["id"] = src.pick(ids) if src.int(0, 3) == 0 else src.int(0, 1000)
        method = src.pick(self.methods) if src.int(0, 7) else src.pick(JUNK_METHODS)
        obj["method"] = method if src.int(0, 15) else json_value(src, 1, self.vocab)
        names = self.params.get(method, ["a", "b"])
        form = src.int(0, 11)
        if form >= 6:  # well typed, one value possibly hostile
            args = [src.pick(self.by_param.get(n, [None])) for n in names]
            if args and src.int(0, 2) == 0:
                args[src.int(0, len(args) - 1)] = json_value(src, 1, self.vocab)
            if src.bool():
                obj["params"] = args[: src.int(0, len(args))] if src.int(0, 3) == 0 else args
            else:
                obj["params"] = dict(zip(names, args, strict=True))
        elif form in (0, 1, 2):
            n = src.int(0, len(names) + 1)
            obj["params"] = [json_value(src, 2, self.vocab) for _ in range(n)]
        elif form in (3, 4):
            obj["params"] = {
                src.pick([*names, "x"]): json_value(src, 2, self.vocab)
                for _ in range(src.int(0, len(names) + 1))
            }
        elif src.bool():
            obj["params"] = json_value(src, 1, self.vocab)
        return obj

    def generate(self, src: Source) -> bytes:
        mode = src.pick(("request", "request", "request", "batch", "text", "mutate", "raw"))
        if mode == "raw":
            return src.rest()
        if mode == "text":
            depth = src.pick((10, 1000, 5000, 100_000, 200_000))
            return src.pick(
                (
                    b"[" * depth,
                    b'{"a":' * depth,
                    b"[" * depth + b"]" * depth,
                    b"1" * depth,
                    b'{"jsonrpc":"2.0","id":1,"method":"node_status"} x',
                    b'{"jsonrpc":"2.0","id":1e999,"method":"node_status"}',
                    b'{"jsonrpc":"2.0","id":NaN,"method":"program_ids"}',
                    b'{"jsonrpc":"2.0","jsonrpc":"1.0","id":1,"method":"program_ids"}',
                    b'\xef\xbb\xbf{"jsonrpc":"2.0","id":1,"method":"program_ids"}',
                    b'{"jsonrpc":"2.0","id":1,"method":"program_ids","params":[\xff]}',
                    b"",
                    b"null",
                    b"[[]]",
                    b"[1,2,3]",
                )
            )
        if mode == "batch":
            n = src.pick((0, 1, 2, 3, 5, MAX_BATCH, MAX_BATCH + 1))
            if n > 5:
                req = self._request(src)
                return json.dumps([req] * n).encode()
            return json.dumps([self._request(src) for _ in range(n)]).encode()
        data = json.dumps(self._request(src)).encode()
        if mode == "mutate" and data:
            b = bytearray(data)
            for _ in range(src.int(1, 3)):
                op = src.int(0, 2)
                if op == 0 and b:
                    b[src.int(0, len(b) - 1)] = src.int(0, 255)
                elif op == 1:
                    del b[src.int(0, len(b)) :]
                else:
                    at = src.int(0, len(b))
                    b[at:at] = src.pick((b"[", b"{", b'"', b"\\u", b",", b"\xc3", b"0x"))
            data = bytes(b)
        return data

    def seeds(self) -> list[bytes]:
        return [
            Recorder().pick(("request",) * 3 + ("batch", "text", "mutate", "raw"), "request").done()
        ]

    def show(self, case: Any) -> str:
        return f"body={case[:3000]!r} ({len(case)} bytes)"

    # ---------------------------------------------------------------- property

    async def _handle(self, data: bytes) -> bytes | None:
        async with trio.open_nursery() as nursery:
            api = self.fx.api(nursery)
            sent: list[Any] = []

            async def send(obj: dict[str, Any]) -> None:
                sent.append(obj)

            session = Session("fuzz", send)
            try:
                return await RpcDispatcher(api.methods()).handle(data, session)
            finally:
                api.close_session(session)
                nursery.cancel_scope.cancel()

    def check(self, data: bytes) -> None:
        try:
            out = trio.run(self._handle, data)
        except Exception as e:
            raise Finding(f"the dispatcher raised {type(e).__name__}: {e}") from e
        must(self.fx.unchanged(), "a query changed the node's head or state")
        if out is None:
            return
        try:
            resp = json.loads(out)
        except ValueError as e:
            raise Finding(f"the answer is not JSON: {out[:200]!r}") from e
        items = resp if isinstance(resp, list) else [resp]
        must(bool(items), "an empty batch answer")
        for r in items:
            must(isinstance(r, dict) and r.get("jsonrpc") == "2.0", f"not a response: {r!r}")
            must("id" in r and (("result" in r) != ("error" in r)), f"malformed: {r!r}")
            if "error" in r:
                err = r["error"]
                must(
                    isinstance(err, dict)
                    and isinstance(err.get("code"), int)
                    and isinstance(err.get("message"), str),
                    f"malformed error: {err!r}",
                )
                if err["code"] == INTERNAL_ERROR:
                    raise Finding(f"a handler raised on hostile input: {err['message']}")

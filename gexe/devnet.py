"""A whole gexe network on this machine: anvil, the contracts, N validator processes (the
first one also the sequencer), funded users — and helpers to use it from Python.

`DevNet` is what `gexe dev`, the end-to-end tests (`tests/e2e/`) and the latency benchmark
(`bench/l1_latency.py`) run. `start()`:

1. starts anvil from `node_modules` (`gexe.contracts.start_anvil`, 127.0.0.1, port 0) with
   `block_time`-second blocks. The deployment runs with instant mining (a few hundred
   milliseconds instead of one block per transaction); interval mining is switched back
   on before any validator starts;
2. deploys the contracts with `deploy_network` (fresh validator keys, equal stakes, one long
   era, 100 ETH of gas money each) and funds the users — anvil's dev accounts 1…: WVARA
   minted and approved to the Router for programs' executable balances;
3. writes, per validator, an encrypted keystore (cheap scrypt cost: a throwaway network),
   a password file and a config (`v<i>/config.toml`: p2p, RPC and metrics on 127.0.0.1
   port 0, `confirmation_depth = 0`, validator 0 as the others' bootnode and the only
   sequencer with `max_batch_latency = 0`);
4. starts `python -m gexe validator run --config …` per validator in its own session (a
   Ctrl-C in the terminal reaches only us; we stop them), logging to `v<i>/validator.log`,
   and waits until each one has written `validator.json`, answers `node_status`, has a
   gossip peer and has processed the chain head.

`stop()` sends SIGTERM to every validator by PID, SIGKILL after a timeout, then stops
anvil. Every wait is bounded; failures are `DevNetError` with one line naming the log to
read. The directory holds `network.json` (endpoints and addresses) for other tools.

Helpers: `upload_code` / `wait_code` (the on-chain verdict), `create_programs`,
`send` / `send_many` (Mirror.sendMessage), `wait_answers` (Reply events, Solidity
callbacks, failed callbacks — by message id, with block numbers), `commits` (each
`commitBatch`: gas and messages), `find_dispatch` (a validator's `block_result`).
For fault tests: `kill_validator` / `restart_validator` (same data, keys and p2p port), the
`eth_rpc_url` hook (a proxy between each validator and anvil) and `validator_env`
(`GEXE_<SECTION>_<KEY>` config overrides for every validator).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MARKER = ".gexe-devnet"
PASSWORD = "gexe-dev-network"  # throwaway keys of a local network
DEFAULT_DIR = Path(".gexe-dev")
ERA_LENGTH = 10 * 365 * 24 * 3600  # one era for the network's whole life
EXEC_BALANCE = 10**16  # WVARA units (12 decimals): 10,000 WVARA = 10^14 gas per program
USER_WVARA = 10**21
VALIDATOR_ETH = 100 * 10**18

# keccak256("replyOn_ping(bytes32,bytes)")[:4]: a payload starting with it makes the ping
# example answer with the calldata of PingClient's callback (programs/README.md)
REPLY_ON_PING = bytes.fromhex("70eb8721")
# Router.codeState
CODE_UNKNOWN, CODE_REQUESTED, CODE_VALIDATED = 0, 1, 2


class DevNetError(Exception):
    """Something the dev network could not do; the message is one line."""


def _hx(b: bytes) -> str:
    return "0x" + bytes(b).hex()


def _b(v: Any) -> bytes:
    if isinstance(v, str):
        return bytes.fromhex(v.removeprefix("0x"))
    return bytes(v)


# ------------------------------------------------------------------ records


@dataclass(frozen=True)
class Sent:
    """A message sent from Ethereum (Mirror.sendMessage)."""

    message_id: bytes
    program: str
    sender: str
    block: int
    tx_hash: bytes
    gas_used: int


@dataclass(frozen=True)
class Answer:
    """How a message's reply reached Ethereum.

    kind: "reply" (Mirror `Reply` event), "callback" (a successful Solidity callback —
    `PongReceived` / `PingFailed` of PingClient), "callback_failed" (`ReplyCallFailed`)."""

    message_id: bytes
    kind: str
    program: str
    block: int
    tx_hash: bytes
    payload: bytes
    code: bytes
    value: int

    @property
    def ok(self) -> bool:
        return self.code[:1] == b"\x00"

    @property
    def code_name(self) -> str:
        from gexe.runtime.codes import reply_code_name

        return f"{reply_code_name(self.code)} (0x{self.code.hex()})"

    @property
    def payload_u64(self) -> int | None:
        return int.from_bytes(self.payload, "little") if len(self.payload) == 8 else None

    @property
    def text(self) -> str:
        """The payload as text where printable, else hex."""
        try:
            s = self.payload.decode()
        except UnicodeDecodeError:
            s = ""
        if s and s.isprintable():
            return repr(s)
        return "0x" + self.payload.hex()


@dataclass(frozen=True)
class Commit:
    """One `Router.commitBatch` transaction."""

    block: int
    tx_hash: bytes
    batch_hash: bytes
    gas_used: int
    batch_block: int  # the Ethereum block the batch ends at
    transitions: int
    messages: int
    codes: int
    sender: str


@dataclass(frozen=True)
class CodeResult:
    code_id: bytes
    valid: bool
    block: int
    tx_hash: bytes


@dataclass(frozen=True)
class Program:
    address: str
    code_id: bytes
    init_id: bytes
    block: int


@dataclass(frozen=True)
class Dispatch:
    """A message's execution as a validator's `block_result` reports it."""

    validator: int
    block: int
    program: str
    status: str
    kind: str
    gas_burned: int


@dataclass(frozen=True)
class Examples:
    """The example programs on a dev network (`DevNet.setup_examples`)."""

    codes: dict[str, CodeResult]
    programs: dict[str, Program]
    ping_client: Any  # gexe.contracts.bindings.Binding of PingClient, or None

    def __getitem__(self, name: str) -> str:
        return self.programs[name].address


EXAMPLES = ("ping", "counter", "proxy", "panicker")


# ------------------------------------------------------------------ validator processes


@dataclass
class ValidatorProc:
    index: int
    address: str
    home: Path
    sequencer: bool = False
    proc: subprocess.Popen[bytes] | None = None
    listen: str = "/ip4/127.0.0.1/tcp/0"  # [p2p] listen (pinned to the bound port on restart)
    bootnodes: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)  # extra, e.g. GEXE_<SECTION>_<KEY>
    rpc_port: int | None = None
    metrics_port: int | None = None
    p2p: list[str] = field(default_factory=list)

    @property
    def config(self) -> Path:
        return self.home / "config.toml"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def log(self) -> Path:
        return self.home / "validator.log"

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.rpc_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def launch(self) -> None:
        """Start the process (returns at once; see `wait_started`)."""
        (self.data_dir / "validator.json").unlink(missing_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("GEXE_")}
        env.update(self.env)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gexe", "validator", "run", "--config", str(self.config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # our Ctrl-C is not theirs: we stop them by PID
            )

    def poll_started(self) -> bool:
        """True once the service wrote its validator.json (ports known)."""
        if not self.alive():
            raise DevNetError(f"validator {self.index} exited: {self.last_line()} (see {self.log})")
        info = self.data_dir / "validator.json"
        if not info.is_file():
            return False
        try:
            d = json.loads(info.read_text())
        except (OSError, ValueError):
            return False
        if d.get("pid") != self.pid:
            return False
        self.rpc_port, self.metrics_port = d["rpc_port"], d["metrics_port"]
        self.p2p = list(d.get("p2p") or [])
        return True

    def last_line(self) -> str:
        try:
            lines = [ln for ln in self.log.read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            return "no log"
        return lines[-1][:300] if lines else "no output"

    def tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def signal(self, sig: int) -> None:
        if self.alive():
            assert self.proc is not None
            try:
                os.kill(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def call(self, method: str, *params: Any, timeout: float = 10.0) -> Any:
        import httpx  # imported on use: `gexe --help` must stay fast

        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
        r = httpx.post(self.rpc_url + "/", json=body, timeout=timeout)
        out = r.json()
        if "error" in out:
            raise DevNetError(f"validator {self.index} {method}: {out['error']}")
        return out["result"]

    def status(self) -> dict[str, Any]:
        return dict(self.call("node_status"))


# ------------------------------------------------------------------ log watching


class LogWatch:
    """All logs of the chain from `start` on, fetched incrementally and decoded (Router,
    Mirror and PingClient events), indexed for the questions the dev network asks."""

    def __init__(self, w3: Any, start: int) -> None:
        from gexe.contracts import LogDecoder

        self.w3 = w3
        self.next = start
        self.decoder = LogDecoder(("Router", "Mirror", "PingClient"))
        self.answers: dict[bytes, list[Answer]] = defaultdict(list)
        self.verdicts: dict[bytes, list[CodeResult]] = defaultdict(list)
        self.batches: list[tuple[int, bytes, bytes]] = []  # (block, tx hash, batch hash)
        self.created: dict[str, bytes] = {}  # actor → code id

    def poll(self) -> None:
        latest = int(self.w3.eth.block_number)
        if latest < self.next:
            return
        raw = self.w3.provider.make_request(
            "eth_getLogs", [{"fromBlock": hex(self.next), "toBlock": hex(latest)}]
        )
        if "error" in raw:
            raise DevNetError(f"eth_getLogs: {raw['error']}")
        for d in self.decoder.decode_all(raw["result"]):
            self._index(d)
        self.next = latest + 1

    def _index(self, d: Any) -> None:
        a = d.args
        blk, txh = int(d.block_number or 0), bytes(d.transaction_hash or b"")

        def answer(mid: Any, kind: str, payload: Any, code: Any, value: Any) -> None:
            m = bytes(mid)
            self.answers[m].append(
                Answer(m, kind, d.address, blk, txh, bytes(payload), bytes(code), int(value))
            )

        if d.name == "Reply":
            answer(a["replyTo"], "reply", a["payload"], a["replyCode"], a["value"])
        elif d.name == "ReplyCallFailed":
            answer(a["replyTo"], "callback_failed", b"", a["replyCode"], a["value"])
        elif d.name == "PongReceived":  # PingClient's success callback
            answer(a["messageId"], "callback", a["answer"], bytes(4), a["value"])
        elif d.name == "PingFailed":  # PingClient's onErrorReply
            answer(a["messageId"], "callback", a["payload"], a["replyCode"], 0)
        elif d.name == "CodeGotValidated":
            cid = bytes(a["codeId"])
            self.verdicts[cid].append(CodeResult(cid, bool(a["valid"]), blk, txh))
        elif d.name == "BatchCommitted":
            self.batches.append((blk, txh, bytes(a["hash"])))
        elif d.name == "ProgramCreated":
            self.created[str(a["actorId"])] = bytes(a["codeId"])


# ------------------------------------------------------------------ the network


def _live_pids(network_json: Path) -> list[int]:
    """Processes of the network described by `network_json` that still run (Linux /proc;
    elsewhere: whether the pid exists)."""
    try:
        info = json.loads(network_json.read_text())
        pids = [info["anvil"]["pid"], *(v["pid"] for v in info["validators"])]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    live = []
    for pid in pids:
        if not isinstance(pid, int):
            continue
        cmdline = Path(f"/proc/{pid}/cmdline")
        if Path("/proc/self").exists():
            try:
                cmd = cmdline.read_bytes()
            except OSError:
                continue
            if b"anvil" in cmd or b"validator" in cmd:
                live.append(pid)
        else:
            try:
                os.kill(pid, 0)
            except OSError:
                continue
            live.append(pid)
    return live


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _prepare_p2p(p: ValidatorProc) -> str:
    """Write `p`'s libp2p identity (the node reads `<data_dir>/p2p.key`), pin its listen
    port, and return its full multiaddr."""
    from libp2p.crypto.ed25519 import create_new_key_pair
    from libp2p.peer.id import ID

    key = p.data_dir / "p2p.key"
    if not key.is_file():
        key.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(os.urandom(32))
    peer = ID.from_pubkey(create_new_key_pair(key.read_bytes()).public_key).to_base58()
    p.listen = f"/ip4/127.0.0.1/tcp/{_free_port()}"
    return f"{p.listen}/p2p/{peer}"


def _default_progress(msg: str) -> None:
    pass


class DevNet:
    """A local gexe network. Use as a context manager or call `start()` / `stop()`."""

    def __init__(
        self,
        directory: str | os.PathLike[str] = DEFAULT_DIR,
        *,
        validators: int = 4,
        block_time: int = 1,
        users: int = 8,
        wipe: bool = True,
        progress: Callable[[str], None] | None = None,
        poll_interval: float = 0.1,
        start_timeout: float = 90.0,
        log_level: str = "info",
        sequencer: bool = True,
        eth_rpc_url: Callable[[int, str], str] | None = None,
        validator_env: dict[str, str] | None = None,
        native: bool = False,
    ) -> None:
        if validators < 1:
            raise DevNetError("a network needs at least one validator")
        if int(block_time) != block_time or block_time < 1:
            raise DevNetError(f"block time {block_time}: must be a whole number of seconds ≥ 1")
        self.dir = Path(directory).expanduser().resolve()
        self.n_validators = validators
        self.block_time = int(block_time)
        self.n_users = users
        self.wipe = wipe
        self.progress = progress or _default_progress
        self.poll_interval = poll_interval
        self.start_timeout = start_timeout
        self.log_level = log_level
        self.sequencer = sequencer
        # a hook for fault tests (tests/faults): the Ethereum RPC URL validator i uses,
        # given anvil's (e.g. a fault-injecting proxy in front of it)
        self.eth_rpc_url = eth_rpc_url
        self.validator_env = dict(validator_env or {})  # config overrides for every validator
        # the native path: validator 0 (the sequencer's node) orders injected transactions
        self.native = native
        self.anvil: Any = None
        self.w3: Any = None
        self.owner: Any = None
        self.users: list[Any] = []
        self.validator_keys: list[Any] = []
        self.deployment: Any = None
        self.chain_id = 0
        self.procs: list[ValidatorProc] = []
        self.watch: LogWatch | None = None
        self.first_block = 0
        self._t0 = time.monotonic()
        self._commit_cache: dict[bytes, Commit] = {}

    # -- lifecycle

    def __enter__(self) -> DevNet:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _step(self, msg: str) -> None:
        self.progress(f"[{time.monotonic() - self._t0:6.1f}s] {msg}")

    def start(self) -> DevNet:
        self._t0 = time.monotonic()
        try:
            self._prepare_dir()
            self._start_anvil()
            self._deploy()
            self._write_validators()
            self._start_validators()
            self._write_network_json()
            self._write_user_files()
        except BaseException:
            self.stop()
            raise
        return self

    def _prepare_dir(self) -> None:
        d = self.dir
        if d.exists():
            if not d.is_dir():
                raise DevNetError(f"{d} is a file; choose another --dir")
            if any(d.iterdir()):
                if not (d / MARKER).is_file():
                    raise DevNetError(
                        f"{d} is not empty and not a gexe dev-network directory; "
                        "choose another --dir (it is wiped at start)"
                    )
                live = _live_pids(d / "network.json")
                if live:
                    raise DevNetError(
                        f"a dev network is still running from {d} (pids "
                        f"{', '.join(map(str, live))}); stop it or choose another --dir"
                    )
                if not self.wipe:
                    raise DevNetError(f"{d} holds a previous dev network; remove it first")
                shutil.rmtree(d)
        try:
            d.mkdir(parents=True, exist_ok=True)
            (d / MARKER).write_text("a gexe dev network; wiped by the next `gexe dev`\n")
            (d / ".gitignore").write_text("*\n")  # never shows up in `git status`
        except OSError as e:
            raise DevNetError(f"{d}: {e.strerror or e}; choose another --dir") from None

    def _start_anvil(self) -> None:
        from gexe.contracts import AnvilNotFound, AnvilStartError, start_anvil

        # Block SIGINT while anvil is forked: the blocked mask is inherited, so a Ctrl-C in
        # the terminal does not kill the chain under the validators; stop() ends it.
        old = None
        if hasattr(signal, "pthread_sigmask"):
            old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            self.anvil = start_anvil(block_time=self.block_time, accounts=max(10, self.n_users + 1))
        except AnvilNotFound:
            raise DevNetError(
                "anvil not found in node_modules: run `make setup` (npm install) first"
            ) from None
        except OSError as e:  # GEXE_ANVIL names something that does not run
            raise DevNetError(
                f"anvil could not be run ({e.strerror or e}): run `make setup` (npm install) "
                "or fix GEXE_ANVIL"
            ) from None
        except AnvilStartError as e:
            raise DevNetError(f"anvil did not start: {str(e).splitlines()[-1][:200]}") from None
        finally:
            if old is not None:
                signal.pthread_sigmask(signal.SIG_SETMASK, old)
        from web3 import Web3

        self.w3 = Web3(Web3.HTTPProvider(self.anvil.url, request_kwargs={"timeout": 60}))
        self.chain_id = int(self.w3.eth.chain_id)
        self._step(
            f"anvil listening on {self.anvil.url} (chain id {self.chain_id}, "
            f"{self.block_time}-second blocks, pid {self.anvil.pid})"
        )

    def _rpc(self, method: str, *params: Any) -> Any:
        out = self.w3.provider.make_request(method, list(params))
        if "error" in out:
            raise DevNetError(f"{method}: {out['error']}")
        return out.get("result")

    def _deploy(self) -> None:
        from eth_account import Account

        from gexe.contracts import NetworkConfig, WrappedVara, deploy_network

        keys = self.anvil.private_keys
        if len(keys) < self.n_users + 1:
            raise DevNetError(f"anvil printed {len(keys)} dev accounts; need {self.n_users + 1}")
        self.owner = Account.from_key(keys[0])
        self.users = [Account.from_key(k) for k in keys[1 : self.n_users + 1]]
        self.validator_keys = [Account.create() for _ in range(self.n_validators)]
        self._rpc("evm_setAutomine", True)  # instant mining while deploying
        try:
            cfg = NetworkConfig(
                era_length=ERA_LENGTH,
                unbonding_period=3 * ERA_LENGTH,
                min_stake=1,
                max_validators=max(8, self.n_validators),
            )
            self.deployment = deploy_network(
                self.w3,
                self.owner,
                self.validator_keys,
                [1000 * 10**12] * self.n_validators,
                cfg,
                fund_wei=VALIDATOR_ETH,
            )
            self._step(
                f"contracts deployed: Router {self.deployment.router}, "
                f"{self.n_validators} validators staked, era 1 started"
            )
            wv = WrappedVara(self.w3, self.deployment.wrapped_vara)
            hashes = []
            nonce = self.w3.eth.get_transaction_count(self.owner.address, "pending")
            for u in self.users:
                hashes.append(
                    self._sign_send(
                        self.owner, wv.contract.functions.mint(u.address, USER_WVARA), nonce=nonce
                    )
                )
                nonce += 1
            for u in self.users:
                hashes.append(
                    self._sign_send(
                        u, wv.contract.functions.approve(self.deployment.router, 2**256 - 1)
                    )
                )
            self._receipts(hashes)
            self._step(
                f"{len(self.users)} users funded (anvil dev accounts 1–{len(self.users)}: "
                "ETH, WVARA approved to the Router)"
            )
        finally:
            self._rpc("evm_setIntervalMining", self.block_time)
        self.first_block = int(self.w3.eth.block_number) + 1
        self.watch = LogWatch(self.w3, int(self.w3.eth.block_number))

    def _write_validators(self) -> None:
        from gexe.node.keystore import import_key

        self.procs = []
        for i, key in enumerate(self.validator_keys):
            home = self.dir / f"v{i}"
            p = ValidatorProc(i, key.address, home, sequencer=(i == 0 and self.sequencer))
            p.env = dict(self.validator_env)
            (p.data_dir / "keystore").mkdir(parents=True, exist_ok=True)
            pw = home / "password.txt"
            pw.write_text(PASSWORD + "\n")
            pw.chmod(0o600)
            import_key(p.data_dir / "keystore", key.key, PASSWORD, scrypt_n=2**4)
            self.procs.append(p)
        self._step(f"{self.n_validators} keystores and configs written under {self.dir}")

    def _config_text(self, p: ValidatorProc, bootnodes: Sequence[str]) -> str:
        seq = (
            "[sequencer]\nenabled = true\nmax_batch_latency = 0\n"
            if p.sequencer
            else "[sequencer]\nenabled = false\n"
        )
        return f"""# gexe dev network: validator {p.index} ({p.address}){" + sequencer" if p.sequencer else ""}
[node]
data_dir = "data"
log_level = "{self.log_level}"
store_map_size = 1073741824

[ethereum]
rpc_url = "{self.eth_rpc_url(p.index, self.anvil.url) if self.eth_rpc_url else self.anvil.url}"
router_address = "{self.deployment.router}"
confirmation_depth = 0
poll_interval = {self.poll_interval}

[p2p]
listen = "{p.listen}"
bootnodes = {json.dumps(list(bootnodes))}

[rpc]
host = "127.0.0.1"
port = 0
rate_limit = 0

[metrics]
enabled = true
host = "127.0.0.1"
port = 0

[validator]
password_file = "password.txt"

{seq}{self._native_text()}"""

    def _native_text(self) -> str:
        if not self.native or not self.procs:
            return ""
        return f'\n[native]\nsequencer = "{self.procs[0].address}"\n'

    def _start_validators(self) -> None:
        # A full mesh: every validator's p2p key and port are chosen here, so each one can
        # name all the others as bootnodes (py-libp2p has no peer discovery; bootnodes
        # pointing at validator 0 alone made a star, every message between two others
        # relayed by it).
        ids = [_prepare_p2p(p) for p in self.procs]
        for p in self.procs:
            p.bootnodes = [a for q, a in zip(self.procs, ids, strict=True) if q is not p]
            p.config.write_text(self._config_text(p, p.bootnodes))
        for p in self.procs:
            p.launch()
        for p in self.procs:
            self._wait(p.poll_started, 60, f"validator {p.index} to start (see {p.log})")
        boot = self.procs[0]
        role = " (sequencer)" if boot.sequencer else ""
        self._step(
            f"{len(self.procs)} validators started (validator 0{role}), pids "
            + ", ".join(str(p.pid) for p in self.procs)
            + f"; p2p full mesh from {boot.p2p[0] if boot.p2p else '?'}"
        )
        want_peers = 1 if len(self.procs) > 1 else 0
        head = int(self.w3.eth.block_number)

        import httpx

        def ready() -> bool:
            for p in self.procs:
                try:
                    st = p.status()
                except (httpx.HTTPError, ValueError):
                    return False
                if (st.get("peers") or 0) < want_peers or (st.get("head") or -1) < head:
                    return False
            return True

        self._wait(ready, self.start_timeout, "validators to connect and reach the chain head")
        self._step(f"{len(self.procs)} validators up: peers connected, heads at block ≥ {head}")

    def _write_network_json(self) -> None:
        info = {
            "pid": os.getpid(),
            "anvil": {"url": self.anvil.url, "pid": self.anvil.pid, "chain_id": self.chain_id},
            "block_time": self.block_time,
            "contracts": {
                "router": self.deployment.router,
                "wrapped_vara": self.deployment.wrapped_vara,
                "staking": self.deployment.staking,
                "mirror_impl": self.deployment.mirror_impl,
            },
            "validators": [
                {
                    "index": p.index,
                    "address": p.address,
                    "sequencer": p.sequencer,
                    "pid": p.pid,
                    "rpc": p.rpc_url,
                    "metrics": p.metrics_url,
                    "p2p": p.p2p,
                    "config": str(p.config),
                    "log": str(p.log),
                }
                for p in self.procs
            ],
            # anvil's well-known dev accounts (public test keys), for `gexe program send` etc.
            "users": [{"address": u.address, "private_key": _hx(u.key)} for u in self.users],
        }
        (self.dir / "network.json").write_text(json.dumps(info, indent=2) + "\n")

    def _write_user_files(self) -> None:
        """A keystore with the first user's key (anvil dev account 1) and `env.sh`, so the
        `gexe code|program …` commands work against this network out of the box."""
        from gexe.node.keystore import import_key

        home = self.dir / "user"
        (home / "keystore").mkdir(parents=True, exist_ok=True)
        pw = home / "password.txt"
        pw.write_text(PASSWORD + "\n")
        pw.chmod(0o600)
        import_key(home / "keystore", self.users[0].key, PASSWORD, scrypt_n=2**4)
        (self.dir / "env.sh").write_text(
            "# source me: the gexe chain commands then use this dev network and user 1's key\n"
            f"export GEXE_ETH_RPC={self.anvil.url}\n"
            f"export GEXE_ROUTER={self.deployment.router}\n"
            f"export GEXE_KEYSTORE={home / 'keystore'}\n"
            + (
                f"export GEXE_INJECTED_RPC={self.procs[1 % len(self.procs)].rpc_url}\n"
                if self.native and self.procs and self.procs[1 % len(self.procs)].rpc_port
                else ""
            )
        )

    @property
    def user_password_file(self) -> Path:
        return self.dir / "user" / "password.txt"

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM every validator by PID, SIGKILL after `timeout`, then stop anvil."""
        procs = [p for p in self.procs if p.proc is not None]
        for p in procs:
            p.signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for p in procs:
            assert p.proc is not None
            try:
                p.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.signal(signal.SIGKILL)
                p.proc.wait(timeout=10)
        if self.anvil is not None:
            try:
                (self.dir / "anvil.log").write_text("\n".join(self.anvil.output()) + "\n")
            except OSError:
                pass
            self.anvil.stop()
            self.anvil = None

    def kill_validator(self, index: int, sig: int = signal.SIGKILL, timeout: float = 30.0) -> int:
        """Send `sig` to validator `index` and wait for it to exit; returns its exit code."""
        p = self.procs[index]
        if p.proc is None:
            raise DevNetError(f"validator {index} was never started")
        p.signal(sig)
        try:
            return p.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.signal(signal.SIGKILL)
            return p.proc.wait(timeout=10)

    def restart_validator(self, index: int, timeout: float = 60.0) -> ValidatorProc:
        """Start validator `index` again (after it exited or was killed) with the same data
        directory, keys and p2p port (its peers redial the address they know); returns once
        it has written validator.json (it then resumes from its store)."""
        p = self.procs[index]
        if p.alive():
            raise DevNetError(f"validator {index} is still running (pid {p.pid})")
        if p.p2p:  # /ip4/127.0.0.1/tcp/PORT/p2p/ID → pin PORT
            p.listen = p.p2p[0].split("/p2p/")[0]
        p.config.write_text(self._config_text(p, p.bootnodes))
        p.launch()
        deadline = time.monotonic() + timeout
        while not p.poll_started():
            if time.monotonic() > deadline:
                raise DevNetError(
                    f"validator {index} did not restart in {timeout:g}s (see {p.log})"
                )
            time.sleep(0.05)
        return p

    # -- waiting

    def _wait(self, cond: Callable[[], Any], timeout: float, what: str, step: float = 0.1) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            for p in self.procs:
                if p.proc is not None and p.proc.poll() is not None:
                    raise DevNetError(
                        f"validator {p.index} exited (code {p.proc.returncode}): "
                        f"{p.last_line()} (see {p.log})"
                    )
            got = cond()
            if got:
                return got
            if time.monotonic() > deadline:
                raise DevNetError(f"timed out after {timeout:g}s waiting for {what}")
            time.sleep(step)

    def check_alive(self) -> None:
        """DevNetError if a validator process or anvil has exited."""
        self._wait(lambda: True, 0, "")
        if self.anvil is None or self.anvil.process.poll() is not None:
            raise DevNetError("anvil exited")

    # -- endpoints

    @property
    def url(self) -> str:
        return str(self.anvil.url)

    @property
    def router(self) -> Any:
        from gexe.contracts import Router

        return Router(self.w3, self.deployment.router)

    def mirror(self, address: str) -> Any:
        from gexe.contracts import Mirror

        return Mirror(self.w3, address)

    def endpoints(self) -> list[str]:
        lines = [
            f"Ethereum RPC (anvil)   {self.anvil.url}   chain id {self.chain_id}",
            f"Router                 {self.deployment.router}",
            f"WrappedVara            {self.deployment.wrapped_vara}",
        ]
        for p in self.procs:
            role = "validator+sequencer" if p.sequencer else "validator"
            lines.append(
                f"{role:<20} {p.index}  rpc {p.rpc_url}  metrics {p.metrics_url}  log {p.log}"
            )
        lines.append(f"network description    {self.dir / 'network.json'}")
        lines.append(
            f"CLI environment        source {self.dir / 'env.sh'}  (user {self.users[0].address}, "
            f"--password-file {self.user_password_file})"
        )
        return lines

    # -- transactions

    def _sign_send(
        self,
        sender: Any,
        call: Any,
        *,
        value: int = 0,
        nonce: int | None = None,
        gas: int | None = None,
    ) -> bytes:
        from gexe.contracts.bindings import reverting

        params: dict[str, Any] = {
            "from": sender.address,
            "value": value,
            "nonce": nonce
            if nonce is not None
            else self.w3.eth.get_transaction_count(sender.address, "pending"),
            "chainId": self.chain_id,
        }
        if gas is not None:
            params["gas"] = gas
        tx = reverting(lambda: call.build_transaction(params))
        signed = sender.sign_transaction(tx)
        return bytes(self.w3.eth.send_raw_transaction(signed.raw_transaction))

    def _receipts(self, hashes: Sequence[bytes], timeout: float = 60.0) -> list[Any]:
        from gexe.contracts import ContractRevert

        out = []
        for h in hashes:
            r = self.w3.eth.wait_for_transaction_receipt(h, timeout=timeout, poll_latency=0.05)
            if r["status"] != 1:
                raise ContractRevert(None, b"", f"transaction {_hx(h)} failed")
            out.append(r)
        return out

    def user(self, i: int) -> Any:
        return self.users[i % len(self.users)]

    # -- codes

    def upload_code(self, code: bytes, sender: Any = None) -> tuple[bytes, int]:
        """Send requestCodeValidation(blake2b(code), code); returns (code id, block)."""
        from gexe.contracts import code_id

        cid = code_id(code)
        r = self.router.request_code_validation(sender or self.owner, cid, code)
        return cid, int(r["blockNumber"])

    def upload_codes(self, codes: Sequence[bytes], sender: Any = None) -> list[bytes]:
        """Upload several codes in one go (pipelined transactions); returns the ids."""
        from gexe.contracts import code_id

        s = sender or self.owner
        nonce = self.w3.eth.get_transaction_count(s.address, "pending")
        ids, hashes = [], []
        for i, code in enumerate(codes):
            cid = code_id(code)
            fn = self.router.contract.functions.requestCodeValidation(cid, code)
            hashes.append(self._sign_send(s, fn, nonce=nonce + i))
            ids.append(cid)
        self._receipts(hashes)
        return ids

    def wait_code(self, code_id: bytes, timeout: float = 60.0) -> CodeResult:
        """Wait for the on-chain verdict (`CodeGotValidated`) of an uploaded code."""
        assert self.watch is not None
        w = self.watch

        def got() -> CodeResult | None:
            w.poll()
            v = w.verdicts.get(code_id)
            return v[-1] if v else None

        return self._wait(got, timeout, f"the verdict on code {_hx(code_id)[:18]}…", 0.2)

    def code_state(self, code_id: bytes) -> int:
        return int(self.router.code_state(code_id))

    # -- programs

    def create_programs(
        self,
        specs: Sequence[tuple[bytes, bytes] | tuple[bytes, bytes, bytes]],
        *,
        sender: Any = None,
        executable_balance: int = EXEC_BALANCE,
    ) -> list[Program]:
        """Create programs from (code id, init payload[, salt]) tuples, pipelined; each
        with `executable_balance` WVARA from `sender` (default: the owner). Without a salt
        a random one is used; `predict_program` gives the address for a salt."""
        from eth_utils import to_checksum_address

        s = sender or self.owner
        self._ensure_wvara(s, executable_balance * len(specs))
        nonce = self.w3.eth.get_transaction_count(s.address, "pending")
        hashes = []
        for i, spec in enumerate(specs):
            cid, init = spec[0], spec[1]
            salt = spec[2] if len(spec) > 2 else os.urandom(32)  # type: ignore[misc]
            fn = self.router.contract.functions.createProgramWithInit(
                cid, salt, init, False, executable_balance
            )
            hashes.append(self._sign_send(s, fn, nonce=nonce + i))
        out = []
        for spec, r in zip(specs, self._receipts(hashes), strict=True):
            cid = spec[0]
            actor = to_checksum_address(self.router.events(r, "ProgramCreated")[0]["actorId"])
            init_id = bytes(self.mirror(actor).events(r, "MessageQueueingRequested")[0]["id"])
            out.append(Program(actor, cid, init_id, int(r["blockNumber"])))
        return out

    def predict_program(self, code_id: bytes, salt: bytes) -> str:
        """The address `createProgram*(code_id, salt, …)` will give."""
        from gexe.contracts import program_id

        return program_id(self.deployment.router, self.deployment.mirror_impl, code_id, salt)

    def setup_examples(self, names: Sequence[str] = EXAMPLES, timeout: float = 60.0) -> Examples:
        """Upload the example programs' code (waiting for the validators' verdicts on
        chain), create one program of each (`proxy` in front of `ping`, `counter` from 0)
        and deploy the PingClient dApp for `ping`."""
        from gexe import programs

        t0 = int(self.w3.eth.block_number)
        codes = [programs.path(n).read_bytes() for n in names]
        ids = self.upload_codes(codes)
        self._step(
            f"uploaded {', '.join(names)}: requestCodeValidation in block "
            f"{int(self.w3.eth.block_number)}; waiting for the validators' verdicts"
        )
        verdicts = {}
        for n, cid in zip(names, ids, strict=True):
            v = self.wait_code(cid, timeout)
            if not v.valid:
                raise DevNetError(f"example program {n}: code judged invalid on chain")
            verdicts[n] = v
            c = self.commit_of(v.tx_hash)
            self._step(
                f"  {n:<9} code {_hx(cid)[:18]}… validated in block {v.block} "
                f"(commitBatch gas {c.gas_used:,})"
            )
        salts = {n: os.urandom(32) for n in names}
        addr = {n: self.predict_program(verdicts[n].code_id, salts[n]) for n in names}
        inits = {n: b"" for n in names}
        if "proxy" in names:
            if "ping" not in names:
                raise DevNetError("the proxy example needs ping as its target")
            inits["proxy"] = bytes(12) + bytes.fromhex(addr["ping"][2:])
        created = self.create_programs([(verdicts[n].code_id, inits[n], salts[n]) for n in names])
        progs = dict(zip(names, created, strict=True))
        for n, prog in progs.items():
            assert prog.address == addr[n], (prog.address, addr[n])
            self._step(f"  {n:<9} program {prog.address} created in block {prog.block}")
        client = None
        if "ping" in names:
            client = self.deploy_contract("PingClient", progs["ping"].address)
            self._step(f"  PingClient for ping deployed at {client.address}")
        # the init replies go to the creator; waiting for them means the programs are live
        self.wait_answers([p.init_id for p in created], timeout)
        self._step(f"  programs initialised (blocks {t0}–{int(self.w3.eth.block_number)})")
        return Examples(verdicts, progs, client)

    def _ensure_wvara(self, who: Any, amount: int) -> None:
        from gexe.contracts import WrappedVara

        wv = WrappedVara(self.w3, self.deployment.wrapped_vara)
        if wv.balance_of(who.address) < amount:
            wv.mint(self.owner, who.address, max(amount, USER_WVARA))
        if int(wv.call("allowance", who.address, self.deployment.router)) < amount:
            wv.approve(who, self.deployment.router, 2**256 - 1)

    def top_up(self, program: str, amount: int, sender: Any = None) -> None:
        """Mirror.executableBalanceTopUp from `sender` (approves the Mirror first)."""
        from gexe.contracts import WrappedVara

        s = sender or self.owner
        self._ensure_wvara(s, amount)
        WrappedVara(self.w3, self.deployment.wrapped_vara).approve(s, program, amount)
        self.mirror(program).send(s, "executableBalanceTopUp", amount)

    def deploy_contract(self, name: str, *args: Any, sender: Any = None) -> Any:
        """Deploy an artifact (e.g. the example "PingClient") and bind it."""
        from gexe.contracts.bindings import Binding, deploy_contract

        address = deploy_contract(self.w3, name, sender or self.owner, *args)
        return Binding(self.w3, address, name)

    # -- messages

    def send(
        self,
        program: str,
        payload: bytes,
        sender: Any = None,
        *,
        call_reply: bool = False,
        value: int = 0,
    ) -> Sent:
        return self.send_many(
            [(program, payload, sender or self.user(0))], call_reply=call_reply, value=value
        )[0]

    def send_many(
        self,
        requests: Sequence[tuple[str, bytes, Any]],
        *,
        call_reply: bool = False,
        value: int = 0,
    ) -> list[Sent]:
        """Mirror.sendMessage for each (program, payload, sender), all sent before any is
        mined (so they share blocks); returns them with their message ids and blocks."""
        nonces: dict[str, int] = {}
        hashes = []
        for program, payload, s in requests:
            if s.address not in nonces:
                nonces[s.address] = self.w3.eth.get_transaction_count(s.address, "pending")
            fn = self.mirror(program).contract.functions.sendMessage(payload, call_reply)
            hashes.append(self._sign_send(s, fn, value=value, nonce=nonces[s.address]))
            nonces[s.address] += 1
        return [
            self._sent(r, program, s.address)
            for (program, _, s), r in zip(requests, self._receipts(hashes), strict=True)
        ]

    def _sent(self, receipt: Any, program: str, sender: str) -> Sent:
        q = self.mirror(program).events(receipt, "MessageQueueingRequested")
        return Sent(
            bytes(q[0]["id"]),
            program,
            sender,
            int(receipt["blockNumber"]),
            bytes(receipt["transactionHash"]),
            int(receipt["gasUsed"]),
        )

    def sent_from_receipt(self, receipt: Any, program: str) -> Sent:
        """A `Sent` for a message queued by a contract (e.g. PingClient.ping)."""
        q = self.mirror(program).events(receipt, "MessageQueueingRequested")
        if not q:
            raise DevNetError(f"no MessageQueueingRequested of {program} in the transaction")
        return Sent(
            bytes(q[0]["id"]),
            program,
            str(q[0]["source"]),
            int(receipt["blockNumber"]),
            bytes(receipt["transactionHash"]),
            int(receipt["gasUsed"]),
        )

    def answers(self, message_id: bytes) -> list[Answer]:
        """Every on-chain answer to `message_id` seen so far (exactly one is right)."""
        assert self.watch is not None
        self.watch.poll()
        return list(self.watch.answers.get(message_id, []))

    def wait_answers(
        self, message_ids: Iterable[bytes], timeout: float = 60.0, *, settle_blocks: int = 0
    ) -> dict[bytes, list[Answer]]:
        """Wait until every message has an answer on chain (bounded by `timeout`), then
        watch `settle_blocks` more blocks for duplicates; returns id → answers."""
        assert self.watch is not None
        w = self.watch
        ids = list(message_ids)

        def done() -> bool:
            w.poll()
            return all(w.answers.get(m) for m in ids)

        try:
            self._wait(done, timeout, "replies", 0.1)
        except DevNetError:
            missing = sum(1 for m in ids if not w.answers.get(m))
            raise DevNetError(
                f"{missing} of {len(ids)} messages got no reply within {timeout:g}s"
            ) from None
        if settle_blocks:
            target = int(self.w3.eth.block_number) + settle_blocks
            self._wait(
                lambda: int(self.w3.eth.block_number) >= target,
                settle_blocks * self.block_time + 30,
                "blocks",
            )
            w.poll()
        return {m: list(w.answers.get(m, [])) for m in ids}

    def wait_answer(self, message_id: bytes, timeout: float = 60.0) -> Answer:
        return self.wait_answers([message_id], timeout)[message_id][0]

    # -- commits

    def commit_of(self, tx_hash: bytes) -> Commit:
        """Gas and contents of one commitBatch transaction."""
        c = self._commit_cache.get(tx_hash)
        if c is not None:
            return c
        from eth_abi import decode as abi_decode

        from gexe.contracts import topics_of
        from gexe.contracts.structs import BATCH_COMMITMENT_ABI, batch_from_abi

        tx = self.w3.eth.get_transaction(tx_hash)
        r = self.w3.eth.get_transaction_receipt(tx_hash)
        raw, _sigs = abi_decode([BATCH_COMMITMENT_ABI, "bytes[]"], _b(tx["input"])[4:])
        batch = batch_from_abi(raw)
        transitions = [t for ch in batch.chain_commitment for t in ch.transitions]
        messages = sum(len(t.messages) for t in transitions)
        topic = topics_of("Router")["BatchCommitted"]
        bh = b""
        for log in r["logs"]:
            if (
                log["address"].lower() == self.deployment.router.lower()
                and bytes(log["topics"][0]) == topic
            ):
                bh = bytes(log["data"])
        c = Commit(
            int(r["blockNumber"]),
            bytes(tx_hash),
            bh,
            int(r["gasUsed"]),
            batch.block_number,
            len(transitions),
            messages,
            len(batch.code_commitments),
            str(tx["from"]),
        )
        self._commit_cache[bytes(tx_hash)] = c
        return c

    def commits(self, since_block: int = 0) -> list[Commit]:
        """Every commitBatch that landed at or after `since_block`, in order."""
        assert self.watch is not None
        self.watch.poll()
        return [self.commit_of(txh) for blk, txh, _ in self.watch.batches if blk >= since_block]

    # -- validators' view

    def dispatches(
        self,
        first: int,
        last: int,
        *,
        message_id: bytes | None = None,
        programs: Sequence[str] = (),
        validator: int = 0,
    ) -> list[Dispatch]:
        """Executions in blocks first..last, as `validator`'s `block_result` lists them (in
        execution order), of `message_id` and/or in any of `programs`."""
        p = self.procs[validator]
        mid = _hx(message_id) if message_id is not None else None
        tails = [a[2:].lower() for a in programs]
        out = []
        for n in range(first, last + 1):
            res = p.call("block_result", n) or {}
            for d in res.get("dispatches", []):
                pid = d["program_id"].lower()
                if d["message_id"] == mid or any(pid.endswith(x) for x in tails):
                    out.append(
                        Dispatch(
                            validator,
                            n,
                            d["program_id"],
                            d["status"],
                            d["kind"],
                            int(d["gas_burned"]),
                        )
                    )
        return out

    def dispatches_of(
        self, message_id: bytes, first: int, last: int, validator: int = 0
    ) -> list[Dispatch]:
        """Every execution of `message_id` in blocks first..last by `validator`."""
        return self.dispatches(first, last, message_id=message_id, validator=validator)

    def find_dispatch(
        self, message_id: bytes, from_block: int, validator: int = 0, timeout: float = 30.0
    ) -> Dispatch:
        """The block in which `validator` executed `message_id` (its `block_result`)."""
        p = self.procs[validator]
        want = _hx(message_id)
        state = {"next": from_block}

        def look() -> Dispatch | None:
            head = p.status().get("head")
            while head is not None and state["next"] <= head:
                n = state["next"]
                res = p.call("block_result", n)
                state["next"] = n + 1
                for d in (res or {}).get("dispatches", []):
                    if d["message_id"] == want:
                        return Dispatch(
                            validator,
                            n,
                            d["program_id"],
                            d["status"],
                            d["kind"],
                            int(d["gas_burned"]),
                        )
            return None

        return self._wait(look, timeout, f"validator {validator} to execute {want[:18]}…", 0.1)

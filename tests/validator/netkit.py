"""Test plumbing: a gexe network on anvil, uploaded example programs, and validator
processes (`python -m gexe validator run`) started with subprocess and stopped by PID."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from eth_account.signers.local import LocalAccount
from gexe.contracts import (
    BatchCommitment,
    CodeCommitment,
    Deployment,
    Mirror,
    NetworkConfig,
    Router,
    WrappedVara,
    batch_hash,
    code_id,
    deploy_network,
    sign_batch,
    signatures_in_set_order,
)
from gexe.node.keystore import import_key
from web3 import Web3

from gexe import programs

PY = sys.executable
TEST_NET = NetworkConfig(era_length=3600, unbonding_period=7200, min_stake=1, max_validators=8)
EXEC_BALANCE = 10**16


@dataclass
class Net:
    url: str
    w3: Web3
    owner: LocalAccount
    users: list[LocalAccount]
    validators: list[LocalAccount]
    deployment: Deployment
    chain_id: int
    codes: dict[str, bytes] = field(default_factory=dict)

    @classmethod
    def deploy(cls, url: str, keys: Sequence[str], n_validators: int) -> Net:
        w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 60}))
        owner = Account.from_key(keys[0])
        users = [Account.from_key(k) for k in keys[1:]]
        validators = [Account.create() for _ in range(n_validators)]
        dep = deploy_network(w3, owner, validators, [100] * n_validators, TEST_NET)
        net = cls(url, w3, owner, users, validators, dep, w3.eth.chain_id)
        net.fund_wvara(owner, EXEC_BALANCE * 10_000)
        return net

    @property
    def router(self) -> Router:
        return Router(self.w3, self.deployment.router)

    def mine(self, n: int = 1) -> None:
        self.w3.provider.make_request("anvil_mine", [hex(n)])  # type: ignore[arg-type]

    def rpc(self, method: str, *params: Any) -> Any:
        return self.w3.provider.make_request(method, list(params))["result"]  # type: ignore[arg-type]

    def upload(self, name: str, code: bytes | None = None) -> bytes:
        """Upload an example program's code and commit a valid verdict (as a sequencer)."""
        code = code or programs.path(name).read_bytes()
        cid = code_id(code)
        self.router.request_code_validation(self.owner, cid, code)
        prev = self.router.latest_committed_batch_hash()
        blk = self.w3.eth.get_block(self.w3.eth.block_number - 1)
        batch = BatchCommitment(blk["hash"], blk["number"], prev, (), (CodeCommitment(cid, True),))
        h = batch_hash(batch)
        sigs = {
            v.address: sign_batch(v.key, h, self.chain_id, self.deployment.router)
            for v in self.validators
        }
        order = [a for a, _ in self.router.validators()]
        self.router.commit_batch(self.owner, batch, signatures_in_set_order(sigs, order))
        self.codes[name] = cid
        return cid

    def fund_wvara(self, who: LocalAccount, amount: int) -> None:
        wv = WrappedVara(self.w3, self.deployment.wrapped_vara)
        wv.mint(self.owner, who.address, amount)
        wv.approve(who, self.deployment.router, amount)

    def create(self, name: str, init: bytes = b"", salt: bytes | None = None) -> Mirror:
        actor, _ = self.router.create_program_with_init(
            self.owner,
            self.codes[name],
            salt or os.urandom(32),
            init,
            initial_executable_balance=EXEC_BALANCE,
        )
        return Mirror(self.w3, actor)

    def send(self, mirror: Mirror, sender: LocalAccount, payload: bytes) -> bytes:
        _, mid = mirror.send_message(sender, payload)
        return mid


# ------------------------------------------------------------------ validator processes


@dataclass
class ValidatorProc:
    index: int
    home: Path
    config: Path
    proc: subprocess.Popen[bytes] | None = None
    rpc_port: int | None = None
    metrics_port: int | None = None
    p2p: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)  # extra environment

    @property
    def log(self) -> Path:
        return self.home / "validator.log"

    def start(self) -> None:
        info = self.home / "data" / "validator.json"
        info.unlink(missing_ok=True)
        env = dict(os.environ)
        env.pop("GEXE_DEBUG", None)
        env.update(self.env)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [PY, "-m", "gexe", "validator", "run", "--config", str(self.config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"validator {self.index} exited:\n{self.tail()}")
            if info.is_file():
                d = json.loads(info.read_text())
                if d.get("pid") == self.proc.pid:
                    self.rpc_port, self.metrics_port = d["rpc_port"], d["metrics_port"]
                    self.p2p = d.get("p2p") or []
                    return
            time.sleep(0.05)
        raise AssertionError(f"validator {self.index} did not start:\n{self.tail()}")

    def tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        p = self.proc
        if p is None:
            return None
        if p.poll() is None:
            os.kill(p.pid, sig)
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
        self.proc = None
        return p.returncode

    def call(self, method: str, *params: Any, timeout: float = 30.0) -> Any:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
        r = httpx.post(f"http://127.0.0.1:{self.rpc_port}/", json=body, timeout=timeout)
        out = r.json()
        if "error" in out:
            raise RuntimeError(f"{method}: {out['error']}")
        return out["result"]

    def head(self) -> int | None:
        return self.call("node_status")["head"]

    def wait_head(self, number: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"validator {self.index} died:\n{self.tail()}")
            h = self.head()
            if h is not None and h >= number:
                return
            time.sleep(0.05)
        raise AssertionError(f"validator {self.index} stuck below {number}:\n{self.tail()}")


def make_validator(
    tmp: Path,
    index: int,
    net: Net,
    key: LocalAccount,
    *,
    confirmations: int = 0,
    bootnodes: Sequence[str] = (),
    extra: str = "",
) -> ValidatorProc:
    home = tmp / f"v{index}"
    data = home / "data"
    (data / "keystore").mkdir(parents=True, exist_ok=True)
    pw = home / "password.txt"
    pw.write_text("test-password\n")
    import_key(data / "keystore", key.key, "test-password", scrypt_n=2**10)
    cfg = home / "config.toml"
    cfg.write_text(
        f"""
[node]
data_dir = "{data}"
log_level = "info"
keep_blocks = 512

[ethereum]
rpc_url = "{net.url}"
router_address = "{net.deployment.router}"
confirmation_depth = {confirmations}
poll_interval = 0.05
get_logs_max_range = 64

[p2p]
bootnodes = {json.dumps(list(bootnodes))}

[rpc]
port = 0
rate_limit = 0

[metrics]
enabled = true
port = 0

[validator]
password_file = "{pw}"
{extra}
"""
    )
    return ValidatorProc(index, home, cfg)


def wait_all(vals: Sequence[ValidatorProc], number: int, timeout: float = 90.0) -> None:
    for v in vals:
        v.wait_head(number, timeout)


def results(v: ValidatorProc, first: int, last: int) -> dict[int, tuple[str, str, str]]:
    """number → (block hash, state root, commitment) for the validator's canonical blocks."""
    out = {}
    for n in range(first, last + 1):
        r = v.call("block_result", n)
        assert r is not None, f"validator {v.index} has no block {n}"
        out[n] = (r["hash"], r["state_root"], r["commitment"])
    return out

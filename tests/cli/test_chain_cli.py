"""`gexe code upload|status` and `gexe program create|send|top-up|state` against a real
anvil with a deployed gexe network.

There is no sequencer or validator here: the tests play the network themselves — they
commit code verdicts and reply transitions signed with the validator keys (from a
background thread while the CLI waits, when the CLI must see them arrive). One anvil per
module, an `evm_snapshot` / `evm_revert` around every test. The CLI runs in-process
through `gexe.cli.main` (same code path as the `gexe` script); two cases run
`python -m gexe` as a user does.
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from gexe.contracts import (
    Anvil,
    BatchCommitment,
    ChainCommitment,
    CodeCommitment,
    Deployment,
    Message,
    Mirror,
    NetworkConfig,
    ReplyDetails,
    Router,
    StateTransition,
    WrappedVara,
    batch_hash,
    code_id,
    deploy_network,
    eth_message_id,
    program_id,
    sign_batch,
    signatures_in_set_order,
    start_anvil,
)
from gexe.node.keystore import import_key
from web3 import Web3

from gexe import programs

PING = programs.path("ping")
PASSWORD = "cli-test-password"
TEST_NET = NetworkConfig(era_length=3600, unbonding_period=7200, min_stake=1, max_validators=8)
USER_WVARA = 10**15
FAST = ("--poll", "0.05")


@dataclass
class Net:
    anvil: Anvil
    w3: Web3
    owner: LocalAccount
    user: LocalAccount  # the key in the CLI's keystore
    validators: list[LocalAccount]
    deployment: Deployment
    keystore: Path
    password_file: Path

    @property
    def router(self) -> Router:
        return Router(self.w3, self.deployment.router)

    @property
    def wvara(self) -> WrappedVara:
        return WrappedVara(self.w3, self.deployment.wrapped_vara)

    def net_args(self) -> list[str]:
        return ["--rpc", self.anvil.url, "--router", self.deployment.router]

    def signer_args(self) -> list[str]:
        return [*self.net_args(), "--keystore", str(self.keystore)] + [
            "--password-file",
            str(self.password_file),
        ]

    def commit(
        self, codes: tuple[CodeCommitment, ...] = (), transitions: tuple[StateTransition, ...] = ()
    ) -> None:
        """Commit a batch as the sequencer would, signed by every validator."""
        prev = self.router.latest_committed_batch_hash()
        blk = self.w3.eth.get_block(self.w3.eth.block_number - 1)
        chain = (ChainCommitment(transitions, os.urandom(32)),) if transitions else ()
        batch = BatchCommitment(blk["hash"], blk["number"], prev, chain, codes)
        h = batch_hash(batch)
        sigs = {
            v.address: sign_batch(v.key, h, self.w3.eth.chain_id, self.deployment.router)
            for v in self.validators
        }
        order = [a for a, _ in self.router.validators()]
        self.router.commit_batch(self.owner, batch, signatures_in_set_order(sigs, order))

    def upload(self, code: bytes) -> bytes:
        cid = code_id(code)
        self.router.request_code_validation(self.owner, cid, code)
        self.commit(codes=(CodeCommitment(cid, True),))
        return cid

    def program(self, code: bytes | None = None) -> Mirror:
        """A program created by the owner (init sent, so anyone may message it)."""
        cid = self.upload(code or PING.read_bytes())
        actor, _ = self.router.create_program_with_init(self.owner, cid, os.urandom(32), b"")
        return Mirror(self.w3, actor)

    def reply(
        self, mirror: Mirror, to: bytes, payload: bytes, code: bytes = bytes(4)
    ) -> StateTransition:
        msg = Message(os.urandom(32), self.user.address, payload, 0, ReplyDetails(to, code))
        return StateTransition(mirror.address, os.urandom(32), messages=(msg,))


@pytest.fixture(scope="module")
def net_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    node = start_anvil()
    try:
        w3 = Web3(Web3.HTTPProvider(node.url, request_kwargs={"timeout": 60}))
        owner = Account.from_key(node.private_keys[0])
        user = Account.from_key(node.private_keys[1])
        validators = [Account.create() for _ in range(2)]
        dep = deploy_network(w3, owner, validators, [100, 100], TEST_NET)
        WrappedVara(w3, dep.wrapped_vara).mint(owner, user.address, USER_WVARA)
        home = tmp_path_factory.mktemp("chain_cli")
        keystore = home / "keystore"
        import_key(keystore, user.key, PASSWORD, scrypt_n=2**10)
        pw = home / "password.txt"
        pw.write_text(PASSWORD + "\n")
        yield Net(node, w3, owner, user, validators, dep, keystore, pw)
    finally:
        node.stop()


@pytest.fixture
def net(net_module: Net, monkeypatch: pytest.MonkeyPatch) -> Iterator[Net]:
    for var in ("GEXE_ETH_RPC", "GEXE_ROUTER", "GEXE_KEYSTORE", "GEXE_DEBUG"):
        monkeypatch.delenv(var, raising=False)
    w3 = net_module.w3
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    try:
        yield net_module
    finally:
        w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> subprocess.CompletedProcess[str]:
    from gexe.cli import main

    rc = main(list(args))
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, rc, out, err)


def assert_one_line_error(p: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert p.returncode != 0, p.stdout
    assert "Traceback" not in p.stderr and "Traceback" not in p.stdout
    lines = p.stderr.splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("gexe: error: "), lines[0]
    for n in needles:
        assert n in lines[0], lines[0]


def field(stdout: str, name: str) -> str:
    for line in stdout.splitlines():
        if line.startswith(name + " "):
            return line[len(name) :].strip()
    raise AssertionError(f"no {name!r} line in:\n{stdout}")


class Background:
    """Run `action` once `ready()` holds (polled), in a thread; `join` re-raises its error."""

    def __init__(self, ready: Callable[[], bool], action: Callable[[], None]) -> None:
        self.error: BaseException | None = None

        def run() -> None:
            try:
                deadline = time.monotonic() + 20
                while not ready():
                    if time.monotonic() > deadline:
                        raise TimeoutError("background condition never held")
                    time.sleep(0.02)
                action()
            except BaseException as e:  # noqa: BLE001 - re-raised in join
                self.error = e

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def join(self) -> None:
        self.thread.join(30)
        if self.error is not None:
            raise self.error


# ------------------------------------------------------------------ code upload


def test_upload_wait_valid(net: Net, capsys: pytest.CaptureFixture[str]) -> None:
    cid = code_id(PING.read_bytes())
    bg = Background(
        lambda: net.router.code_state(cid) == 1,
        lambda: net.commit(codes=(CodeCommitment(cid, True),)),
    )
    p = run_main(
        capsys, "code", "upload", str(PING), "--wait", "--timeout", "20", *FAST, *net.signer_args()
    )
    bg.join()
    assert p.returncode == 0, p.stderr
    assert field(p.stdout, "code id") == "0x" + cid.hex()
    assert field(p.stdout, "status") == "valid"
    tx = field(p.stdout, "tx")
    receipt = net.w3.eth.get_transaction_receipt(tx)
    assert receipt["blockNumber"] == int(field(p.stdout, "block"))
    assert net.router.code_state(cid) == 2

    p = run_main(capsys, "code", "status", str(PING), *net.net_args())
    assert p.returncode == 0 and field(p.stdout, "state") == "validated"
    # Uploading again sends nothing and says so.
    p = run_main(capsys, "code", "upload", str(PING), "--json", *net.signer_args())
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["tx"] is None and out["status"] == "validated"


def test_upload_invalid_wasm_is_refused_locally(
    net: Net, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    junk = tmp_path / "junk.wasm"
    junk.write_bytes(b"\x00asm\x01\x00\x00\x00" + b"\xff" * 40)
    p = run_main(capsys, "code", "upload", str(junk), *net.signer_args())
    assert_one_line_error(p, "junk.wasm", "invalid program", "not uploaded")
    assert net.router.code_state(code_id(junk.read_bytes())) == 0


def test_upload_junk_on_purpose_gets_invalid_verdict(
    net: Net, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    junk = tmp_path / "junk.wasm"
    junk.write_bytes(os.urandom(64))
    cid = code_id(junk.read_bytes())
    bg = Background(
        lambda: net.router.code_state(cid) == 1,
        lambda: net.commit(codes=(CodeCommitment(cid, False),)),
    )
    p = run_main(
        capsys,
        "code",
        "upload",
        str(junk),
        "--no-validate-locally",
        "--wait",
        "--json",
        *FAST,
        *net.signer_args(),
    )
    bg.join()
    assert p.returncode == 1
    out = json.loads(p.stdout)
    assert out["status"] == "invalid" and out["code_id"] == "0x" + cid.hex()
    assert_one_line_error(p, "rejected code")


def test_upload_wait_times_out(net: Net, capsys: pytest.CaptureFixture[str]) -> None:
    p = run_main(
        capsys, "code", "upload", str(PING), "--wait", "--timeout", "0.3", *FAST, *net.signer_args()
    )
    assert_one_line_error(p, "still awaiting validation", "gexe code status")


# ------------------------------------------------------------------ program create


def test_create(net: Net, capsys: pytest.CaptureFixture[str]) -> None:
    cid = net.upload(PING.read_bytes())
    router_wvara = net.wvara.balance_of(net.deployment.router)
    p = run_main(
        capsys,
        "program",
        "create",
        "0x" + cid.hex(),
        "--init",
        "hello",
        "--balance",
        "1000",
        "--salt",
        "0x01",
        "--json",
        *net.signer_args(),
    )
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    actor = out["program_id"]
    assert net.w3.eth.get_code(actor)
    assert bytes(net.router.call("programCodeId", actor)) == cid
    assert out["salt"] == "0x" + "00" * 31 + "01"
    assert out["init_message_id"] == "0x" + eth_message_id(actor, 0).hex()
    assert net.wvara.balance_of(net.deployment.router) == router_wvara + 1000
    assert net.wvara.balance_of(net.user.address) == USER_WVARA - 1000
    assert Mirror(net.w3, actor).nonce() == 1
    assert Mirror(net.w3, actor).call("initializer") == net.user.address

    # The same code and salt again: refused before sending.
    p = run_main(
        capsys, "program", "create", "0x" + cid.hex(), "--salt", "0x01", *net.signer_args()
    )
    assert_one_line_error(p, "exists already", actor, "--salt")


def test_create_human_output(net: Net, capsys: pytest.CaptureFixture[str]) -> None:
    cid = net.upload(PING.read_bytes())
    p = run_main(capsys, "program", "create", "0x" + cid.hex(), *net.signer_args())
    assert p.returncode == 0, p.stderr
    actor = field(p.stdout, "program")
    assert field(p.stdout, "init msg") == "0x" + eth_message_id(actor, 0).hex()
    assert int(field(p.stdout, "block")) == net.w3.eth.block_number


def test_create_wait_prints_init_reply(net: Net, capsys: pytest.CaptureFixture[str]) -> None:
    cid = net.upload(PING.read_bytes())
    salt = bytes(31) + b"\x02"
    actor = program_id(net.deployment.router, net.deployment.mirror_impl, cid, salt)
    init_id = eth_message_id(actor, 0)
    mirror = Mirror(net.w3, actor)
    bg = Background(
        lambda: bool(net.w3.eth.get_code(actor)),
        lambda: net.commit(transitions=(net.reply(mirror, init_id, b""),)),
    )
    p = run_main(
        capsys,
        "program",
        "create",
        "0x" + cid.hex(),
        "--salt",
        "0x02",
        "--wait",
        *FAST,
        *net.signer_args(),
    )
    bg.join()
    assert p.returncode == 0, p.stderr
    assert field(p.stdout, "program") == actor
    assert field(p.stdout, "reply") == "(empty)"
    assert field(p.stdout, "code") == "Success(Auto) (0x00000000)"


def test_create_refusals(net: Net, capsys: pytest.CaptureFixture[str]) -> None:
    cid = code_id(PING.read_bytes())
    p = run_main(capsys, "program", "create", "0x" + cid.hex(), *net.signer_args())
    assert_one_line_error(p, "is not validated", "state: unknown", "gexe code upload")

    net.upload(PING.read_bytes())
    too_much = str(USER_WVARA + 1)
    p = run_main(
        capsys, "program", "create", "0x" + cid.hex(), "--balance", too_much, *net.signer_args()
    )
    assert_one_line_error(p, net.user.address, f"holds {USER_WVARA}", too_much)

    p = run_main(capsys, "program", "create", "0x1234", *net.signer_args())
    assert_one_line_error(p, "CODE_ID", "not a 32-byte id")


# ------------------------------------------------------------------ program send


def test_send_prints_message_id(net: Net, capsys: pytest.CaptureFixture[str]) -> None:
    mirror = net.program()
    nonce = mirror.nonce()
    p = run_main(capsys, "program", "send", mirror.address, "PING", *net.signer_args())
    assert p.returncode == 0, p.stderr
    assert field(p.stdout, "message") == "0x" + eth_message_id(mirror.address, nonce).hex()
    assert int(field(p.stdout, "block")) == net.w3.eth.block_number
    assert mirror.nonce() == nonce + 1


def _reply_when_sent(net: Net, mirror: Mirror, payload: bytes, code: bytes) -> Background:
    nonce = mirror.nonce()
    mid = eth_message_id(mirror.address, nonce)
    return Background(
        lambda: mirror.nonce() > nonce,
        lambda: net.commit(transitions=(net.reply(mirror, mid, payload, code),)),
    )


def test_send_wait_prints_reply(net: Net, capsys: pytest.CaptureFixture[str]) -> None:
    mirror = net.program()
    bg = _reply_when_sent(net, mirror, b"PONG", bytes.fromhex("00010000"))
    p = run_main(
        capsys,
        "program",
        "send",
        mirror.address,
        "PING",
        "--wait",
        "--timeout",
        "20",
        *FAST,
        *net.signer_args(),
    )
    bg.join()
    assert p.returncode == 0, p.stderr
    assert field(p.stdout, "reply") == '"PONG"  (0x504f4e47)'
    assert field(p.stdout, "code") == "Success(Manual) (0x00010000)"
    sent, got = int(field(p.stdout, "block")), field(p.stdout, "reply block")
    assert got == f"{sent + 1} (1 blocks after the message)"


def test_send_wait_json_binary_reply(net: Net, capsys: pytest.CaptureFixture[str]) -> None:
    mirror = net.program()
    bg = _reply_when_sent(net, mirror, b"\x00\xff", bytes(4))
    p = run_main(
        capsys,
        "program",
        "send",
        mirror.address,
        "0x00ff",
        "--wait",
        "--json",
        *FAST,
        *net.signer_args(),
    )
    bg.join()
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["message_id"] == "0x" + eth_message_id(mirror.address, 1).hex()
    r = out["reply"]
    assert r["payload_hex"] == "0x00ff" and r["payload_text"] is None
    assert r["code"] == "0x00000000" and r["code_name"] == "Success(Auto)" and r["success"]
    assert r["block"] > out["block"]


def test_send_wait_error_reply_exits_1(net: Net, capsys: pytest.CaptureFixture[str]) -> None:
    mirror = net.program()
    bg = _reply_when_sent(net, mirror, b"panicked", bytes.fromhex("01000300"))
    p = run_main(
        capsys, "program", "send", mirror.address, "x", "--wait", *FAST, *net.signer_args()
    )
    bg.join()
    assert p.returncode == 1
    assert field(p.stdout, "code") == "Error(Execution(UserspacePanic)) (0x01000300)"
    assert_one_line_error(p, "Error(Execution(UserspacePanic))")


def test_send_wait_reply_committed_before_waiting(
    net: Net, capsys: pytest.CaptureFixture[str]
) -> None:
    """A reply already on chain when the poll starts is found (the search starts at the
    send block), and replies to other messages are skipped."""
    mirror = net.program()
    mid = eth_message_id(mirror.address, mirror.nonce())
    p = run_main(capsys, "program", "send", mirror.address, "a", *net.signer_args())
    assert p.returncode == 0
    send_block = int(field(p.stdout, "block"))
    other = net.reply(mirror, os.urandom(32), b"not mine")
    net.commit(transitions=(other,))
    net.commit(transitions=(net.reply(mirror, mid, b"mine"),))
    from gexe.chain_cmd import connect, wait_for_reply

    class A:
        rpc, router = net.anvil.url, net.deployment.router

    reply = wait_for_reply(connect(A()), mirror.address, mid, send_block, timeout=5, poll=0.05)  # type: ignore[arg-type]
    assert reply["payload_text"] == "mine" and reply["blocks_elapsed"] == 2


def test_send_wait_timeout(net: Net, capsys: pytest.CaptureFixture[str]) -> None:
    mirror = net.program()
    p = run_main(
        capsys,
        "program",
        "send",
        mirror.address,
        "x",
        "--wait",
        "--timeout",
        "0.3",
        *FAST,
        *net.signer_args(),
    )
    assert_one_line_error(p, "no reply to message", "0.3 s", "--timeout")
    assert field(p.stdout, "message").startswith("0x")  # the message was sent


def test_send_refusals(net: Net, capsys: pytest.CaptureFixture[str]) -> None:
    mirror = net.program()
    p = run_main(
        capsys, "program", "send", mirror.address, "x", "--wait", "--call-reply", *net.signer_args()
    )
    assert_one_line_error(p, "--call-reply", "--wait")
    stranger = Account.create().address
    p = run_main(capsys, "program", "send", stranger, "x", *net.signer_args())
    assert_one_line_error(p, stranger, "is not a program of the Router")
    p = run_main(capsys, "program", "send", "0x1234", "x", *net.signer_args())
    assert_one_line_error(p, "PROGRAM '0x1234' is not an Ethereum address")
    p = run_main(capsys, "program", "send", mirror.address, "0xzz", *net.signer_args())
    assert_one_line_error(p, "PAYLOAD", "not valid hex")


def test_send_to_uninitialised_program_decodes_revert(
    net: Net, capsys: pytest.CaptureFixture[str]
) -> None:
    cid = net.upload(PING.read_bytes())
    actor = net.router.create_program(net.owner, cid, os.urandom(32))  # no init message
    p = run_main(capsys, "program", "send", actor, "x", *net.signer_args())
    assert_one_line_error(
        p, "Mirror.sendMessage reverted with InitMessageNotCreatedAndCallerNotInitializer()"
    )


# ------------------------------------------------------------------ top-up and state


def test_top_up_moves_wvara(net: Net, capsys: pytest.CaptureFixture[str]) -> None:
    mirror = net.program()
    router_before = net.wvara.balance_of(net.deployment.router)
    p = run_main(capsys, "program", "top-up", mirror.address, "12345", *net.signer_args())
    assert p.returncode == 0, p.stderr
    assert net.wvara.balance_of(net.deployment.router) == router_before + 12345
    assert net.wvara.balance_of(net.user.address) == USER_WVARA - 12345
    receipt = net.w3.eth.get_transaction_receipt(field(p.stdout, "tx"))
    (ev,) = mirror.events(receipt, "ExecutableBalanceTopUpRequested")
    assert ev["value"] == 12345

    p = run_main(capsys, "program", "top-up", mirror.address, str(USER_WVARA), *net.signer_args())
    assert_one_line_error(p, "holds", "the top-up needs")
    with pytest.raises(SystemExit) as exc:
        run_main(capsys, "program", "top-up", mirror.address, "-5", *net.signer_args())
    assert exc.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert "AMOUNT -5 is negative" in line


class _FakeValidator(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        assert body["method"] == "program_state"
        (pid,) = body["params"]
        if pid.lower().endswith("dead"):
            reply = {"jsonrpc": "2.0", "id": 1, "error": {"code": -32000, "message": "unknown"}}
        else:
            result = {"program_id": pid, "block": 7, "state_hash": "0x" + "ab" * 32}
            reply = {"jsonrpc": "2.0", "id": body["id"], "result": result}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


def test_state(net: Net, capsys: pytest.CaptureFixture[str]) -> None:
    mirror = net.program()
    state = os.urandom(32)
    net.commit(transitions=(StateTransition(mirror.address, state),))
    p = run_main(capsys, "program", "state", mirror.address, *net.net_args())
    assert p.returncode == 0, p.stderr
    assert field(p.stdout, "state hash") == "0x" + state.hex()
    assert field(p.stdout, "nonce").startswith("1 ")
    assert field(p.stdout, "initializer") == net.owner.address
    assert field(p.stdout, "exited") == "no"

    server = http.server.HTTPServer(("127.0.0.1", 0), _FakeValidator)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        node = f"http://127.0.0.1:{server.server_port}/"
        p = run_main(
            capsys, "program", "state", mirror.address, "--node", node, "--json", *net.net_args()
        )
        assert p.returncode == 0, p.stderr
        out = json.loads(p.stdout)
        assert out["chain"]["state_hash"] == "0x" + state.hex()
        assert out["chain"]["code_id"] == "0x" + code_id(PING.read_bytes()).hex()
        assert out["node"] == {
            "program_id": mirror.address,
            "block": 7,
            "state_hash": "0x" + "ab" * 32,
        }
    finally:
        server.shutdown()
        server.server_close()
    p = run_main(capsys, "program", "state", mirror.address, "--node", node, *net.net_args())
    assert_one_line_error(p, "cannot reach the validator", "--node")


# ------------------------------------------------------------------ user errors


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_connection_and_router_errors(net: Net, capsys: pytest.CaptureFixture[str]) -> None:
    mirror = "0x" + "11" * 20
    p = run_main(capsys, "program", "state", mirror, "--rpc", net.anvil.url)
    assert_one_line_error(p, "no Router address", "--router", "GEXE_ROUTER")

    dead = f"http://127.0.0.1:{_free_port()}"
    p = run_main(capsys, "program", "state", mirror, "--rpc", dead, "--router", mirror)
    assert_one_line_error(p, f"cannot reach Ethereum at {dead}", "refused", "--rpc")

    p = run_main(capsys, "program", "state", mirror, "--rpc", net.anvil.url, "--router", mirror)
    assert_one_line_error(p, f"no contract at --router {Web3.to_checksum_address(mirror)}")

    wvara = net.deployment.wrapped_vara
    p = run_main(
        capsys, "code", "status", "0x" + "22" * 32, "--rpc", net.anvil.url, "--router", wvara
    )
    assert_one_line_error(p, wvara, "is not a gexe Router")

    p = run_main(capsys, "program", "state", mirror, "--rpc", net.anvil.url, "--router", "0x12")
    assert_one_line_error(p, "--router '0x12' is not an Ethereum address")

    p = run_main(capsys, "program", "state", mirror, "--rpc", "ftp://x", "--router", mirror)
    assert_one_line_error(p, "--rpc 'ftp://x' is not an http(s) URL")


def test_keystore_errors(
    net: Net, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mirror = net.program()
    send = ("program", "send", mirror.address, "x", *net.net_args())
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("not the password\n")
    p = run_main(capsys, *send, "--keystore", str(net.keystore), "--password-file", str(wrong))
    assert_one_line_error(p, "wrong password", net.user.address)

    p = run_main(capsys, *send, "--keystore", str(tmp_path / "empty"), "--password-env", "PW")
    assert_one_line_error(p, "no keys in", "gexe key new")

    monkeypatch.setenv("PW", PASSWORD)
    other = Account.create().address
    p = run_main(
        capsys, *send, "--keystore", str(net.keystore), "--from", other, "--password-env", "PW"
    )
    assert_one_line_error(p, f"no key for {other}", "gexe key list")

    # stdin is not a terminal under pytest: no prompt, a one-line error.
    p = run_main(capsys, *send, "--keystore", str(net.keystore))
    assert_one_line_error(p, "no password given", "--password-file")

    # --from the right key with the env password works, and GEXE_KEYSTORE is honoured.
    monkeypatch.setenv("GEXE_KEYSTORE", str(net.keystore))
    p = run_main(capsys, *send, "--from", net.user.address.lower(), "--password-env", "PW")
    assert p.returncode == 0, p.stderr


def test_account_without_eth(net: Net, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    mirror = net.program()
    poor = Account.create()
    import_key(tmp_path / "ks", poor.key, PASSWORD, scrypt_n=2**10)
    p = run_main(
        capsys,
        "program",
        "send",
        mirror.address,
        "x",
        *net.net_args(),
        "--keystore",
        str(tmp_path / "ks"),
        "--password-file",
        str(net.password_file),
    )
    assert_one_line_error(p, "refused")


# ------------------------------------------------------------------ as a user runs it


def test_subprocess_end_to_end(net: Net) -> None:
    mirror = net.program()
    env = dict(os.environ, GEXE_ETH_RPC=net.anvil.url, GEXE_ROUTER=net.deployment.router)
    env.pop("GEXE_DEBUG", None)
    p = subprocess.run(
        [sys.executable, "-m", "gexe", "program", "state", mirror.address, "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["chain"]["state_hash"] == "0x" + mirror.state_hash().hex()

    env.pop("GEXE_ROUTER")
    p = subprocess.run(
        [sys.executable, "-m", "gexe", "code", "upload", str(PING), "--password-env", "X"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert_one_line_error(p, "no Router address")

"""`gexe operator stake|unstake|withdraw|register|claim|status` against a real anvil with a
deployed gexe network (short eras), and `status` against a running `DevNet`.

The CLI's keystore holds one key, `user`, which becomes an operator in the tests that stake.
Eras move with `evm_increaseTime` + `evm_mine` and `Router.startNextEra`; reward batches are
committed by the tests, signed with the validator keys. One anvil per module, an
`evm_snapshot` / `evm_revert` around every test; the CLI runs in-process (`gexe.cli.main`).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from gexe.contracts import (
    Anvil,
    BatchCommitment,
    Deployment,
    NetworkConfig,
    Router,
    Staking,
    WrappedVara,
    batch_hash,
    deploy_network,
    sign_batch,
    signatures_in_set_order,
    start_anvil,
)
from gexe.node.keystore import import_key
from web3 import Web3

PASSWORD = "operator-test-password"
ERA = 60  # seconds
GRACE = 4  # blocks
NET = NetworkConfig(
    era_length=ERA, era_grace_blocks=GRACE, unbonding_eras=2, min_stake=1, max_validators=8
)
VALIDATOR_STAKE = 100
USER_WVARA = 1_000


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
    def staking(self) -> Staking:
        return Staking(self.w3, self.deployment.staking)

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

    def rpc(self, method: str, *params: object) -> object:
        return self.w3.provider.make_request(method, list(params))["result"]  # type: ignore[arg-type]

    def next_era(self) -> int:
        """Let the era's time pass and start the next one; returns its start block."""
        self.rpc("evm_increaseTime", ERA)
        self.rpc("evm_mine")
        receipt = self.router.start_next_era(self.owner)
        return int(receipt["blockNumber"])

    def close_previous_era(self, start: int) -> None:
        """Mine past the grace window of the era started at block `start`."""
        self.rpc("anvil_mine", hex(GRACE + 1 - (self.w3.eth.block_number - start)))

    def commit_burned(self, burned: int, signers: list[LocalAccount]) -> None:
        """Commit an empty batch reporting `burned`, for the latest block but one."""
        prev = self.router.latest_committed_batch_hash()
        blk = self.w3.eth.get_block(self.w3.eth.block_number - 1)
        batch = BatchCommitment(blk["hash"], blk["number"], prev, burned=burned)
        h = batch_hash(batch)
        sigs = {
            v.address: sign_batch(v.key, h, self.w3.eth.chain_id, self.deployment.router)
            for v in signers
        }
        order = [a for a, _ in self.router.era_validators(self.router.era_of_block(blk["number"]))]
        self.router.commit_batch(self.owner, batch, signatures_in_set_order(sigs, order))


@pytest.fixture(scope="module")
def net_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    node = start_anvil()
    try:
        w3 = Web3(Web3.HTTPProvider(node.url, request_kwargs={"timeout": 60}))
        owner = Account.from_key(node.private_keys[0])
        user = Account.from_key(node.private_keys[1])
        validators = [Account.create() for _ in range(2)]
        dep = deploy_network(w3, owner, validators, [VALIDATOR_STAKE] * 2, NET)
        WrappedVara(w3, dep.wrapped_vara).mint(owner, user.address, USER_WVARA)
        home = tmp_path_factory.mktemp("operator_cli")
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
    snapshot = net_module.rpc("evm_snapshot")
    try:
        yield net_module
    finally:
        net_module.rpc("evm_revert", snapshot)


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> subprocess.CompletedProcess[str]:
    from gexe.cli import main

    rc = main(list(args))
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, rc, out, err)


def ok(p: subprocess.CompletedProcess[str]) -> str:
    assert p.returncode == 0, p.stderr
    assert p.stderr == "", p.stderr
    return p.stdout


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


def status(net: Net, capsys: pytest.CaptureFixture[str], *extra: str) -> dict:  # type: ignore[type-arg]
    return json.loads(ok(run_main(capsys, "operator", "status", "--json", *extra, *net.net_args())))


def op(
    net: Net, capsys: pytest.CaptureFixture[str], *args: str
) -> subprocess.CompletedProcess[str]:
    return run_main(capsys, "operator", *args, *net.signer_args())


# ------------------------------------------------------------------ stake and election


def test_stake_is_elected_from_the_next_era(net: Net, capsys: pytest.CaptureFixture[str]) -> None:
    me = net.user.address
    s = status(net, capsys, me)
    assert (s["is_operator"], s["stake"], s["elected"], s["signer"]) == (False, 0, False, None)
    assert s["not_in_next_because"] == "no active stake"
    assert s["wvara_balance"] == USER_WVARA and s["era"]["index"] == 1

    out = ok(op(net, capsys, "stake", "300"))
    assert field(out, "stake") == "300 (active)"
    assert "no signer registered" in out
    s = status(net, capsys, me)
    assert not s["in_next_election"] and s["not_in_next_because"] == "no signer registered"
    assert net.staking.operator(me).stake == 300
    assert net.wvara.balance_of(me) == USER_WVARA - 300
    out = ok(op(net, capsys, "register"))  # default signer: the operator itself
    assert field(out, "signer") == me

    # Keystore's only key is the default operator; text output, era 1: not elected yet.
    out = ok(
        run_main(capsys, "operator", "status", "--keystore", str(net.keystore), *net.net_args())
    )
    assert field(out, "operator") == me
    assert field(out, "stake") == "300 (active)"
    assert field(out, "elected").startswith("no")
    assert field(out, "era").startswith("1, started at block")
    assert field(out, "next") == "in the election of era 2 (so far)"

    net.next_era()
    out = ok(run_main(capsys, "operator", "status", me, *net.net_args()))
    assert field(out, "elected").startswith("yes, in era 2: stake 300 of 500 (60.00%")
    s = status(net, capsys, me)
    assert s["elected"] and s["era_stake"] == 300 and s["era"]["total_stake"] == 500
    assert s["stake_share"] == pytest.approx(0.6) and s["era"]["validators"] == 3
    assert s["signer"] == me and s["is_operator"] and not s["excluded"]
    assert set(s) >= {
        "operator",
        "signer",
        "stake",
        "unbonding",
        "release_era",
        "withdrawable",
        "excluded",
        "era",
        "elected",
        "era_stake",
        "stake_share",
        "in_next_election",
        "not_in_next_because",
        "rewards",
        "claimable",
        "wvara_balance",
    }
    assert set(s["era"]) == {
        "index",
        "start_block",
        "start_timestamp",
        "next_era_from",
        "total_stake",
        "validators",
    }
    # Adding stake later uses the remaining allowance flow again (approve, deposit).
    ok(op(net, capsys, "stake", "100", "--json"))
    assert net.staking.operator(me).stake == 400


def test_stake_errors(net: Net, capsys: pytest.CaptureFixture[str]) -> None:
    assert_one_line_error(
        op(net, capsys, "stake", str(USER_WVARA + 1)), "holds 1000 WVARA", "needs 1001"
    )
    assert_one_line_error(op(net, capsys, "stake", "0"), "AMOUNT is 0")
    with pytest.raises(SystemExit) as exited:  # argparse usage error: one line, exit 2
        op(net, capsys, "stake", "12abc")
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a whole number" in err
    assert_one_line_error(
        run_main(capsys, "operator", "stake", "5", "--rpc", net.anvil.url, "--router", "0x12"),
        "not an Ethereum address",
    )
    assert_one_line_error(
        run_main(capsys, "operator", "status", "0xnothex", *net.net_args()),
        "OPERATOR",
        "not an Ethereum address",
    )
    assert_one_line_error(
        run_main(
            capsys, "operator", "status", net.user.address, "--rpc", net.anvil.url, "--router",
            net.deployment.wrapped_vara,
        ),
        "not a gexe Router",
    )  # fmt: skip
    assert_one_line_error(
        run_main(
            capsys, "operator", "status", "--keystore", str(net.keystore / "none"),
            *net.net_args(),
        ),
        "no keys in",
        "give the OPERATOR address",
    )  # fmt: skip
    assert net.staking.operator(net.user.address).stake == 0


# ------------------------------------------------------------------ signer


def test_register_rotate_and_refusals(net: Net, capsys: pytest.CaptureFixture[str]) -> None:
    me = net.user.address
    assert_one_line_error(op(net, capsys, "register"), "not an operator", "stake first")
    ok(op(net, capsys, "stake", "50"))
    ok(op(net, capsys, "register"))
    new = Account.create().address
    out = ok(op(net, capsys, "register", new))
    assert field(out, "signer") == new
    assert field(out, "rotated") == f"from {me} (era 1 keeps it; {new} from era 2)"
    assert net.staking.operator(me).signer == new
    assert net.staking.operator_of_signer(new) == me
    taken = net.validators[0].address
    assert_one_line_error(
        op(net, capsys, "register", taken), f"signer {taken} is already registered by operator"
    )
    assert_one_line_error(op(net, capsys, "register", "0x1234"), "SIGNER_ADDRESS", "not an")
    s = status(net, capsys, me)
    assert s["signer"] == new and s["in_next_election"] and not s["elected"]
    net.next_era()
    assert [s for s, _ in net.router.validators()].count(new) == 1


# ------------------------------------------------------------------ unbonding


def test_unstake_then_withdraw_after_the_release_era(
    net: Net, capsys: pytest.CaptureFixture[str]
) -> None:
    me = net.user.address
    assert_one_line_error(op(net, capsys, "unstake", "10"), "not an operator", "stake first")
    assert_one_line_error(op(net, capsys, "withdraw"), "not an operator")
    ok(op(net, capsys, "stake", "200"))
    assert_one_line_error(op(net, capsys, "withdraw"), "nothing to withdraw")
    assert_one_line_error(op(net, capsys, "unstake", "201"), "has 200 active stake", "201")
    out = ok(op(net, capsys, "unstake", "80"))
    assert field(out, "stake") == "120 (active)"
    assert field(out, "unbonding") == "80, withdrawable from era 3 (current era 1)"
    assert_one_line_error(op(net, capsys, "withdraw"), "still bonding until era 3", "current era 1")
    s = status(net, capsys, me)
    assert (s["stake"], s["unbonding"], s["release_era"], s["withdrawable"]) == (120, 80, 3, False)
    net.next_era()
    assert_one_line_error(op(net, capsys, "withdraw"), "still bonding until era 3", "current era 2")
    out = ok(run_main(capsys, "operator", "status", me, *net.net_args()))
    assert field(out, "unbonding") == "80, still bonding until era 3"
    net.next_era()
    assert status(net, capsys, me)["withdrawable"]
    before = net.wvara.balance_of(me)
    out = json.loads(ok(op(net, capsys, "withdraw", "--json")))
    assert out["withdrawn"] == 80 and out["wvara_balance"] == before + 80
    assert net.wvara.balance_of(me) == before + 80
    assert net.staking.operator(me).unbonding == 0


# ------------------------------------------------------------------ rewards


def test_claim_rewards_of_a_closed_era(net: Net, capsys: pytest.CaptureFixture[str]) -> None:
    me = net.user.address
    assert_one_line_error(op(net, capsys, "claim"), "nothing to claim")
    ok(op(net, capsys, "stake", "200"))
    ok(op(net, capsys, "register"))
    net.next_era()  # era 2: 100 + 100 + 200
    net.wvara.mint(net.owner, net.deployment.router, 4_000)  # what programs would have burned
    net.rpc("evm_mine")
    net.commit_burned(4_000, [*net.validators, net.user])
    assert net.router.era_info(2).reward_pool == 4_000
    s = status(net, capsys, me)
    assert s["rewards"] == [{"era": 2, "amount": 2_000, "closed": False}]
    assert s["claimable"] == 0
    assert_one_line_error(op(net, capsys, "claim"), "nothing to claim", "2000 pending")
    assert_one_line_error(op(net, capsys, "claim", "--era", "2"), "era 2 is not closed")

    start = net.next_era()
    net.close_previous_era(start)
    assert net.router.era_closed(2)
    out = ok(run_main(capsys, "operator", "status", me, *net.net_args()))
    assert field(out, "rewards") == "era 2: 2000 (claimable)"
    before = net.wvara.balance_of(me)
    out = ok(op(net, capsys, "claim"))
    assert field(out, "era 2") == "2000"
    assert field(out, "total") == "2000 WVARA"
    assert net.wvara.balance_of(me) == before + 2_000
    assert_one_line_error(op(net, capsys, "claim"), "nothing to claim")
    assert_one_line_error(op(net, capsys, "claim", "--era", "2"), "already claimed")
    assert_one_line_error(op(net, capsys, "claim", "--era", "1"), "not an elected operator")
    assert_one_line_error(op(net, capsys, "claim", "--era", "9"), "era 9 has not happened")
    assert status(net, capsys, me)["rewards"] == []


# ------------------------------------------------------------------ a running dev network


def test_status_on_a_running_devnet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from gexe.devnet import DevNet

    for var in ("GEXE_ETH_RPC", "GEXE_ROUTER", "GEXE_KEYSTORE"):
        monkeypatch.delenv(var, raising=False)
    with DevNet(tmp_path / "net", validators=4, progress=lambda _m: None) as d:
        env = dict(
            line.removeprefix("export ").split("=", 1)
            for line in (d.dir / "env.sh").read_text().splitlines()
            if line.startswith("export ")
        )
        monkeypatch.setenv("GEXE_ETH_RPC", env["GEXE_ETH_RPC"])
        monkeypatch.setenv("GEXE_ROUTER", env["GEXE_ROUTER"])
        info = json.loads((d.dir / "network.json").read_text())
        stake = 1000 * 10**12
        for v in info["validators"]:
            out = ok(run_main(capsys, "operator", "status", v["address"]))
            assert field(out, "operator") == v["address"]
            assert field(out, "stake") == f"{stake} (active)"
            assert field(out, "era").startswith("1, started at block")
            assert field(out, "elected") == (
                f"yes, in era 1: stake {stake} of {4 * stake} (25.00%, 4 validators)"
            )
            s = json.loads(ok(run_main(capsys, "operator", "status", v["address"], "--json")))
            assert s["elected"] and s["era_stake"] == stake and s["signer"] == v["address"]
        # the dev user is not an operator
        s = json.loads(ok(run_main(capsys, "operator", "status", d.users[0].address, "--json")))
        assert not s["is_operator"] and not s["elected"]

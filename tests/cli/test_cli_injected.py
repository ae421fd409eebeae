"""`gexe program send --injected` against a dev network with the native path on
(`DevNet(native=True)`: anvil, 4 validator processes, validator 0 the sequencer).

One network per module. The CLI signs with the dev network's user keystore (anvil dev
account 1) and sends through validator 1's RPC. Success cases run in-process through
`gexe.cli.main`; the refusal runs `python -m gexe` as a user does: one line on stderr,
a non-zero exit, no traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from gexe.devnet import DevNet


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevNet]:
    d = DevNet(tmp_path_factory.mktemp("injected") / "net", validators=4, native=True)
    d.start()
    try:
        yield d
    finally:
        d.stop()


@pytest.fixture(scope="module")
def ping(net: DevNet) -> str:
    return net.setup_examples(("ping",), timeout=60)["ping"]


def signer_args(net: DevNet) -> list[str]:
    return [
        "--keystore",
        str(net.dir / "user" / "keystore"),
        "--password-file",
        str(net.user_password_file),
    ]


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from gexe.cli import main

    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEXE_")}
    env.update(extra)
    return env


def assert_one_line_error(rc: int, out: str, err: str, *needles: str) -> None:
    assert rc != 0
    assert "Traceback" not in err and "Traceback" not in out
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("gexe: error: "), lines[0]
    for n in needles:
        assert n in lines[0], lines[0]


def test_send_injected_json(
    net: DevNet, ping: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GEXE_INJECTED_RPC", raising=False)
    rpc = net.procs[1].rpc_url
    rc, out, err = run_main(
        capsys,
        *("program", "send", ping, "PING", "--injected", "--rpc-node", rpc, "--json"),
        *("--timeout", "30"),
        *signer_args(net),
    )
    assert rc == 0, err
    assert err == ""
    d = json.loads(out)
    assert d["status"] == "preconfirmed"
    assert d["reply"]["payload_hex"] == "0x" + b"PONG".hex()
    assert d["reply"]["payload_text"] == "PONG"
    assert d["reply"]["success"] is True
    assert d["program_id"] == ping
    assert d["sender"] == net.users[0].address
    assert d["validators"] == 4
    assert d["promises"] >= 3 and d["promise_signers"] >= 3  # > 2/3 of equal stakes
    assert d["sequencer_block"]["height"] >= 1
    assert d["tx"].startswith("0x") and len(d["tx"]) == 66


def test_send_injected_human_from_env(
    net: DevNet, ping: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEXE_INJECTED_RPC", net.procs[2].rpc_url)
    rc, out, err = run_main(
        capsys, "program", "send", ping, "hello", "--injected", *signer_args(net)
    )
    assert rc == 0, err
    assert f"node        {net.procs[2].rpc_url}" in out
    assert 'reply       "hello"' in out  # ping echoes anything but PING
    assert "promises    " in out and "verified" in out
    assert "seq block   " in out


def test_refused_destination_is_one_line(net: DevNet, ping: str) -> None:
    not_a_program = net.deployment.router  # a contract, not a program
    p = subprocess.run(
        [sys.executable, "-m", "gexe", "program", "send", not_a_program, "PING", "--injected"]
        + signer_args(net),
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(GEXE_INJECTED_RPC=net.procs[3].rpc_url),
    )
    assert_one_line_error(
        p.returncode, p.stdout, p.stderr, "refused", "is not a program of this network"
    )


def test_user_errors_are_one_line(
    net: DevNet, ping: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GEXE_INJECTED_RPC", raising=False)
    base = ("program", "send", ping, "PING", "--injected")
    cases = [
        (("--value", "1"), ("cannot carry value",)),
        (("--rpc-node", "127.0.0.1:9944"), ("--rpc-node", "not an http(s)")),
        (("--rpc-node", "http://127.0.0.1:1"), ("http://127.0.0.1:1",)),  # nothing listens
    ]
    for extra, needles in cases:
        rc, out, err = run_main(capsys, *base, *extra, *signer_args(net))
        assert_one_line_error(rc, out, err, *needles)
    rc, out, err = run_main(
        capsys, "program", "send", ping, "PING", "--rpc-node", net.procs[1].rpc_url
    )
    assert_one_line_error(rc, out, err, "--rpc-node is for --injected")

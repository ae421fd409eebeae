"""`gexe program validate|run`: exit codes, stdout, stderr.

Every user error must end as exactly one line on stderr, a non-zero exit code and no
traceback. The must-show cases run the CLI as a subprocess, exactly as a user does;
the rest call `gexe.cli.main` in-process (the same code path, without the ~1 s
interpreter start-up per case).
"""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest
from gexe.runtime.ids import blake2b256

from gexe import programs

PING = str(programs.path("ping"))


def gexe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gexe", *args], capture_output=True, text=True, timeout=120
    )


def run_main(capsys, *args: str) -> subprocess.CompletedProcess[str]:
    """`gexe.cli.main(args)` in-process, returned like a finished subprocess."""
    from gexe.cli import main

    rc = main(list(args))
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, rc, out, err)


def assert_one_line_error(p: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert p.returncode != 0
    assert "Traceback" not in p.stderr and "Traceback" not in p.stdout
    lines = p.stderr.splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("gexe: error: "), lines[0]
    for n in needles:
        assert n in lines[0], lines[0]


def test_run_ping_json():
    p = gexe("program", "run", PING, "--send", "PING", "--send", "0x00ff", "--json")
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""
    out = json.loads(p.stdout)
    assert set(out) == {"code_id", "program_id", "results", "messages", "state_hash", "blocks"}
    assert out["code_id"] == "0x" + blake2b256(programs.path("ping").read_bytes()).hex()
    assert out["program_id"].startswith("0x" + "00" * 12) and len(out["program_id"]) == 66
    assert len(out["state_hash"]) == 66 and out["blocks"] >= 1
    init, ping, binary = out["results"]
    assert [r["label"] for r in out["results"]] == ["init", "send #1", "send #2"]
    assert init["reply"]["code"] == "0x00000000" and init["status"] == "success"
    assert ping["payload_hex"] == "0x" + b"PING".hex()
    assert ping["status"] == "success" and ping["gas_burned"] > 0
    assert ping["reply"] == {
        "payload_hex": "0x" + b"PONG".hex(),
        "payload_text": "PONG",
        "code": "0x00010000",
        "code_name": "Success(Manual)",
        "value": 0,
    }
    assert binary["reply"]["payload_hex"] == "0x00ff"
    assert binary["reply"]["payload_text"] is None
    assert out["messages"] == []


def test_run_ping_human():
    p = gexe("program", "run", PING, "--send", "PING")
    assert p.returncode == 0, p.stderr
    assert '"PONG"' in p.stdout and "Success(Manual) (0x00010000)" in p.stdout


def test_run_panicker_error_code():
    p = gexe("program", "run", str(programs.path("panicker")), "--send", "x", "--json")
    assert p.returncode == 0, p.stderr  # the program failed, the command did not
    r = json.loads(p.stdout)["results"][1]
    assert r["status"] == "trap"
    assert r["reply"]["code"] == "0x01000300"
    assert r["reply"]["code_name"] == "Error(Execution(UserspacePanic))"
    assert bytes.fromhex(r["reply"]["payload_hex"][2:]).startswith(b"panicked at 'boom'")


def test_run_looper_out_of_gas(capsys):
    p = run_main(
        capsys,
        "program",
        "run",
        str(programs.path("looper")),
        "--send",
        "",
        "--max-gas",
        "20000000",
        "--json",
    )
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)["results"][1]
    assert r["reply"]["code"] == "0x01000000" and r["gas_burned"] == 20_000_000


def test_run_source_is_the_sender(capsys):
    addr = "0x" + "12" * 20
    p = run_main(
        capsys,
        "program",
        "run",
        str(programs.path("sender")),
        "--source",
        addr,
        "--send",
        "0x" + "00" * 12 + "34" * 20 + "6869",
        "--json",
    )
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["results"][1]["reply"]["payload_text"] == "sent"
    (m,) = out["messages"]
    assert m["destination"] == "0x" + "00" * 12 + "34" * 20 and m["payload_hex"] == "0x6869"


def test_validate_ok(capsys):
    p = run_main(capsys, "program", "validate", PING)
    assert p.returncode == 0 and p.stderr == ""
    assert "valid Vara.eth program" in p.stdout
    p = run_main(capsys, "program", "validate", PING, "--json")
    info = json.loads(p.stdout)
    assert info["valid"] is True and info["exports"] == ["handle", "init"]


def test_validate_garbage(tmp_path):
    f = tmp_path / "garbage.wasm"
    f.write_bytes(random.Random(1).randbytes(300))
    p = gexe("program", "validate", str(f))
    assert_one_line_error(p, "garbage.wasm", "invalid program", "Validation")
    assert p.stdout == ""


def test_validate_garbage_json(tmp_path, capsys):
    f = tmp_path / "bad.wasm"
    f.write_bytes(b"\0asm\x01\0\0\0\x01\x04\x01\x60\x00")  # truncated type section
    p = run_main(capsys, "program", "validate", str(f), "--json")
    assert_one_line_error(p)
    verdict = json.loads(p.stdout)
    assert verdict["valid"] is False and verdict["reason"] == "Validation"


def test_validate_forbidden_import(tmp_path, capsys):
    import wasmtime

    f = tmp_path / "vara.wasm"
    f.write_bytes(
        wasmtime.wat2wasm(
            '(module (import "env" "memory" (memory 1)) '
            '(import "env" "gr_reserve_gas" (func (param i64 i32 i32))) (func (export "handle")))'
        )
    )
    assert_one_line_error(
        run_main(capsys, "program", "validate", str(f)), "UnknownImport", "gr_reserve_gas"
    )


def test_user_errors(tmp_path, capsys):
    garbage = tmp_path / "g.wasm"
    garbage.write_bytes(b"not wasm at all")
    cases = [
        (("program", "run", PING, "--send", "0xZZ"), "not valid hex"),
        (("program", "run", PING, "--init", "0x123"), "not valid hex"),
        (("program", "run", str(tmp_path / "missing.wasm")), "no such file"),
        (("program", "validate", str(tmp_path / "missing.wasm")), "no such file"),
        (("program", "run", str(tmp_path)), "is a directory"),
        (("program", "validate", str(tmp_path)), "is a directory"),
        (("program", "run", PING, "--source", "0x1234"), "--source"),
        (("program", "run", PING, "--source", "bob"), "--source"),
        (("program", "run", PING, "--max-gas", "0"), "--max-gas"),
        (("program", "run", str(garbage)), "invalid program"),
    ]
    for args, needle in cases:
        assert_one_line_error(run_main(capsys, *args), needle)


@pytest.mark.parametrize(
    "args",
    [
        ("program", "run", PING, "--max-gas", "lots"),
        ("program",),
        ("program", "frobnicate"),
        ("program", "run"),
    ],
)
def test_usage_error_is_one_line(capsys, args):
    with pytest.raises(SystemExit) as e:
        run_main(capsys, *args)
    assert e.value.code not in (0, None)
    out, err = capsys.readouterr()
    assert len(err.splitlines()) == 1 and "Traceback" not in err + out

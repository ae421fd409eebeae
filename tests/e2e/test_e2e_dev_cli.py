"""`gexe dev` as a user runs it: a subprocess that starts the whole network, runs the demo
and stops everything — with `--smoke`, after Ctrl-C, and on user errors (one line)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def gexe_dev() -> list[str]:
    """`python -m gexe dev`, or the module itself until the command is registered."""
    from gexe.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    if "dev" in (sub.choices or {}):
        return [sys.executable, "-m", "gexe", "dev"]
    return [sys.executable, "-m", "gexe.dev_cmd"]


def env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("GEXE_")}
    e["PYTHONUNBUFFERED"] = "1"
    return e


def started_pids(d: Path) -> list[int]:
    info = json.loads((d / "network.json").read_text())
    return [info["anvil"]["pid"], *(v["pid"] for v in info["validators"])]


def running(pid: int) -> bool:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"anvil" in cmd or b"validator" in cmd


def test_smoke_runs_the_demo_and_exits_0(tmp_path: Path) -> None:
    d = tmp_path / "dev"
    r = subprocess.run(
        [*gexe_dev(), "--smoke", "--dir", str(d)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env(),
    )
    out = r.stdout
    assert r.returncode == 0, out[-3000:] + r.stderr
    assert "all 4 replies arrived on chain" in out
    assert "PongReceived(answer=b'PONG')" in out
    assert "Reply: count = 1" in out
    assert "Reply: b'PONG' relayed by proxy" in out
    assert "UserspacePanic" in out
    for word in ("request", "executed", "committed", "reply"):
        assert out.count(f"  {word} ") >= 4, word
    assert "commitBatch" in out and "gas" in out
    assert not [p for p in started_pids(d) if running(p)]


def test_ctrl_c_stops_the_running_network_cleanly(tmp_path: Path) -> None:
    d = tmp_path / "dev"
    log = tmp_path / "out.txt"
    with log.open("w") as out:
        # its own session, so that SIGINT to the group is what a terminal's Ctrl-C does
        p = subprocess.Popen(
            [*gexe_dev(), "--dir", str(d), "--validators", "2"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env(),
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 240
        while "Ctrl-C stops it" not in log.read_text():
            assert p.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        text = log.read_text()
        info = json.loads((d / "network.json").read_text())
        assert info["anvil"]["url"] in text
        assert all(v["rpc"] in text and v["metrics"] in text for v in info["validators"])
        assert info["contracts"]["router"] in text
        pids = started_pids(d)
        assert all(running(x) for x in pids)
        # a second `gexe dev` on the same directory refuses to wipe a running network
        msg = one_line_error(["--smoke", "--dir", str(d)], tmp_path)
        assert "still running" in msg
        assert all(running(x) for x in pids) and (d / "network.json").is_file()
        os.killpg(p.pid, signal.SIGINT)
        assert p.wait(timeout=60) == 0, log.read_text()[-2000:]
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert "stopping" in log.read_text()
    assert not [x for x in pids if running(x)]
    for v in info["validators"]:
        assert "validator stopped" in Path(v["log"]).read_text()


def one_line_error(args: list[str], tmp_path: Path, extra_env: dict[str, str] | None = None):
    r = subprocess.run(
        [*gexe_dev(), *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={**env(), **(extra_env or {})},
        cwd=tmp_path,
    )
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gexe: error:"), r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    return lines[0]


def test_user_errors_are_one_line(tmp_path: Path) -> None:
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("keep me")
    msg = one_line_error(["--smoke", "--dir", str(foreign)], tmp_path)
    assert "not a gexe dev-network directory" in msg
    assert (foreign / "precious.txt").read_text() == "keep me"

    msg = one_line_error(
        ["--smoke", "--dir", str(tmp_path / "a")], tmp_path, {"GEXE_ANVIL": "/nonexistent/anvil"}
    )
    assert "make setup" in msg

    assert "--validators" in one_line_error(["--validators", "0"], tmp_path)


def test_smoke_fails_in_one_line_when_a_reply_does_not_arrive_in_time(tmp_path: Path) -> None:
    d = tmp_path / "dev"
    msg = one_line_error(
        ["--smoke", "--dir", str(d), "--validators", "1", "--timeout", "0.01"], tmp_path
    )
    assert "timed out" in msg
    assert not [p for p in started_pids(d) if running(p)]

"""No secret in logs: a validator (which is also the sequencer, so it loads its key,
signs batches and sends transactions) runs at debug level against anvil; its log,
stdout and stderr and every file it wrote outside the keystore are then searched for the
private key, the keystore password and the libp2p identity key — in hex, upper- and
lower-case, with and without 0x, and base64."""

from __future__ import annotations

import base64
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from gexe.contracts import Anvil, code_id, start_anvil
from gexe.node.keystore import import_key
from netkit import Net, ValidatorProc, make_validator

from gexe import programs

PASSWORD = "Pw-9q#Zr!redact-me-7731"
VALIDATED = 2


@pytest.fixture
def anvil() -> Iterator[Anvil]:
    node = start_anvil(accounts=4, block_time=1)
    try:
        yield node
    finally:
        node.stop()


def _forms(raw: bytes) -> list[str]:
    h = raw.hex()
    return [h, h.upper(), "0x" + h, base64.b64encode(raw).decode()]


def test_validator_logs_hold_no_secret(tmp_path: Path, anvil: Anvil) -> None:
    net = Net.deploy(anvil.url, anvil.private_keys, 1)
    key = net.validators[0]
    v: ValidatorProc = make_validator(
        tmp_path, 0, net, key, extra="[sequencer]\nenabled = true\nmax_batch_latency = 0\n"
    )
    # our own password and debug logging instead of netkit's defaults
    data = v.home / "data"
    shutil.rmtree(data / "keystore")
    import_key(data / "keystore", key.key, PASSWORD, scrypt_n=2**10)
    (v.home / "password.txt").write_text(PASSWORD + "\n")
    v.config.write_text(v.config.read_text().replace('log_level = "info"', 'log_level = "debug"'))
    v.start()
    try:
        # a code verdict reaches the chain only through a batch this node signed and sent
        code = programs.path("ping").read_bytes()
        cid = code_id(code)
        net.router.request_code_validation(net.owner, cid, code)
        deadline = time.monotonic() + 90
        while net.router.code_state(cid) != VALIDATED:
            assert time.monotonic() < deadline, f"no verdict committed:\n{v.tail(40)}"
            assert v.proc is not None and v.proc.poll() is None, v.tail(40)
            time.sleep(0.3)
        status = v.call("node_status")
        assert status["batches_signed"] >= 1
        v.call("code_get", "0x" + cid.hex())
    finally:
        assert v.stop(signal.SIGTERM) == 0

    log = v.log.read_text(errors="replace")
    assert "debug" in log and len(log.splitlines()) > 20  # it did log, at debug level
    p2p = (data / "p2p.key").read_bytes()
    secrets = [PASSWORD, *_forms(bytes(key.key)), *_forms(p2p)]
    texts = {"log (stdout+stderr)": log}
    for f in data.rglob("*"):
        if f.is_file() and "keystore" not in f.parts and f.name != "p2p.key":
            texts[str(f.relative_to(data))] = f.read_bytes().decode("latin-1")
    for where, text in texts.items():
        for s in secrets:
            assert s not in text, f"a secret ({s[:4]}…) appears in {where}"

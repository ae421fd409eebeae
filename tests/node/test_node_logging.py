"""Structured logging: JSON and key=value output, levels, and redaction of secrets."""

from __future__ import annotations

import io
import json
import logging

import pytest
from gexe.node.keystore import create_key, load_key_with
from gexe.node.logging import get_logger, setup_logging


@pytest.fixture
def output():
    buf = io.StringIO()
    level = logging.getLogger().level
    handler = setup_logging("debug", "json", buf)
    yield buf
    logging.getLogger().removeHandler(handler)
    logging.getLogger().setLevel(level)


def lines(buf: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buf.getvalue().splitlines()]


def test_json_lines_with_fields(output):
    log = get_logger("store").bind(node="v1")
    log.info("block committed", number=7, blobs=120, hash=b"\x01" * 4)
    log.debug("detail", ok=True, took=0.5)
    first, second = lines(output)
    assert first["level"] == "info" and first["component"] == "store"
    assert first["event"] == "block committed"
    assert (first["number"], first["blobs"], first["node"]) == (7, 120, "v1")
    assert first["hash"] == "0x01010101"
    assert second == {**second, "ok": True, "took": 0.5, "level": "debug"}


def test_text_format_and_level():
    buf = io.StringIO()
    handler = setup_logging("warning", "text", buf)
    try:
        log = get_logger("observer")
        log.info("hidden")
        log.warning("reorg detected", depth=2, reason="parent changed")
    finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(logging.WARNING)
    (line,) = buf.getvalue().splitlines()
    assert ' warning observer "reorg detected" depth=2 reason="parent changed"' in line
    with pytest.raises(ValueError):
        setup_logging("chatty", "text", buf)


def test_secret_fields_and_pairs_are_masked(output):
    log = get_logger("keys")
    log.info("loaded", password="pw-in-field", private_key="0x" + "aa" * 32, address="0xabc")
    logging.getLogger("web3.providers").warning(
        'retry with {"password": "pw-in-json"} api_key=xyz123 privkey: 0xdead'
    )
    text = output.getvalue()
    for secret in ("pw-in-field", "aa" * 32, "pw-in-json", "xyz123", "0xdead"):
        assert secret not in text
    assert "0xabc" in text and "***" in text


def test_loaded_keys_and_passwords_never_reach_the_log(output, tmp_path):
    pw_file = tmp_path / "pw"
    pw_file.write_text("Tr0ub4dor&3-secret\n")
    info = create_key(tmp_path / "ks", "Tr0ub4dor&3-secret", scrypt_n=1024)
    acct = load_key_with(info.path, password_file=pw_file)
    log = get_logger("validator")
    # careless code: the secrets passed as innocent-looking fields and inside messages
    log.info("signer ready", key=acct.key.hex(), note=f"pw was {'Tr0ub4dor&3-secret'}")
    log.info(f"raw bytes {acct.key.hex().upper()}")
    try:
        raise RuntimeError(f"failed with {acct.key.hex()} / Tr0ub4dor&3-secret")
    except RuntimeError:
        log.exception("crash")
    text = output.getvalue()
    key_hex = acct.key.hex().removeprefix("0x")
    assert key_hex not in text.lower()
    assert "Tr0ub4dor&3-secret" not in text
    assert "signer ready" in text and "***" in text
    assert any("exception" in entry for entry in lines(output))


def test_block_hashes_are_not_masked(output):
    h = "0x" + "12" * 32
    get_logger("observer").info("new head", hash=h)
    assert lines(output)[0]["hash"] == h

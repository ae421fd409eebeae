"""Encrypted keystores (eth-account V3) and the `gexe key` commands."""

from __future__ import annotations

import json
import stat

import pytest
from eth_account import Account
from gexe.node.keystore import (
    KeystoreError,
    create_key,
    find_key,
    import_key,
    list_keys,
    load_key,
    load_key_with,
    read_password,
)

from gexe.cli import main

FAST = 1024  # scrypt cost for tests; the default is 262144
KEY = "0x" + "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
ADDRESS = Account.from_key(KEY).address


def mode(p) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_create_list_load_with_file_and_env_passwords(tmp_path):
    ks = tmp_path / "keystore"
    pw_file = tmp_path / "pw.txt"
    pw_file.write_text("correct horse\n")
    password = read_password(password_file=pw_file)
    assert password == "correct horse"  # one trailing newline dropped
    info = create_key(ks, password, scrypt_n=FAST)
    assert mode(ks) == 0o700 and mode(info.path) == 0o600
    assert info.path.name.startswith("UTC--") and info.path.name.endswith(info.address[2:].lower())
    assert json.loads(info.path.read_text())["version"] == 3
    assert list_keys(ks) == [info]

    acct = load_key_with(info.path, password_file=pw_file)
    assert acct.address == info.address
    env = {"VALIDATOR_PW": "correct horse"}
    assert (
        load_key_with(info.address, keystore=ks, password_env="VALIDATOR_PW", environ=env).address
        == info.address
    )
    assert find_key(ks, info.address.lower()) == info


def test_import_from_hex_and_duplicates(tmp_path):
    ks = tmp_path / "ks"
    info = import_key(ks, KEY, "pw", scrypt_n=FAST)
    assert info.address == ADDRESS
    assert load_key(info.path, "pw").key.hex().removeprefix("0x") == KEY[2:]
    with pytest.raises(KeystoreError, match="already in"):
        import_key(ks, KEY[2:], "other", scrypt_n=FAST)
    with pytest.raises(KeystoreError, match="64 hex digits"):
        import_key(ks, "0x1234", "pw", scrypt_n=FAST)


def test_clear_errors(tmp_path):
    ks = tmp_path / "ks"
    info = create_key(ks, "right", scrypt_n=FAST)
    with pytest.raises(KeystoreError, match="wrong password") as e:
        load_key(info.path, "wrong")
    assert "right" not in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(KeystoreError, match="not found"):
        load_key(tmp_path / "missing.json", "x")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(KeystoreError, match="invalid JSON"):
        load_key(bad, "x")
    (tmp_path / "notks.json").write_text('{"hello": 1}')
    with pytest.raises(KeystoreError, match="no 'crypto'"):
        load_key(tmp_path / "notks.json", "x")
    with pytest.raises(KeystoreError, match="no key for"):
        load_key("0x" + "00" * 20, "x", keystore=ks)
    with pytest.raises(KeystoreError, match="is not set"):
        read_password(password_env="GEXE_TEST_SURELY_UNSET", environ={})
    with pytest.raises(KeystoreError, match="exactly one"):
        read_password()
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(KeystoreError, match="empty"):
        read_password(password_file=tmp_path / "empty")
    with pytest.raises(KeystoreError, match="password file not found"):
        read_password(password_file=tmp_path / "nope")


def test_existing_loose_directory_is_tightened(tmp_path):
    ks = tmp_path / "ks"
    ks.mkdir(mode=0o755)
    ks.chmod(0o755)
    create_key(ks, "pw", scrypt_n=FAST)
    assert mode(ks) == 0o700
    (ks / "README").write_text("not a key")  # other files are skipped when listing
    assert len(list_keys(ks)) == 1


def test_cli_new_import_list_print_addresses_only(tmp_path, capsys, monkeypatch):
    ks = tmp_path / "ks"
    keyfile = tmp_path / "key.hex"
    keyfile.write_text(KEY + "\n")
    monkeypatch.setenv("TEST_KS_PW", "s3cret-pass")
    assert (
        main(
            [
                "key",
                "import",
                str(keyfile),
                "--keystore",
                str(ks),
                "--password-env",
                "TEST_KS_PW",
                "--scrypt-n",
                str(FAST),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "key",
                "new",
                "--keystore",
                str(ks),
                "--password-env",
                "TEST_KS_PW",
                "--scrypt-n",
                str(FAST),
            ]
        )
        == 0
    )
    assert main(["key", "list", "--keystore", str(ks), "--json"]) == 0
    out, err = capsys.readouterr()
    assert ADDRESS in out
    listed = json.loads(out.strip().splitlines()[-1])
    assert len(listed) == 2 and ADDRESS in {k["address"] for k in listed}
    assert KEY[2:] not in out + err and "s3cret-pass" not in out + err
    for k in listed:
        assert mode(tmp_path / "ks" / k["file"].rsplit("/", 1)[1]) == 0o600


def test_cli_errors_are_one_line(tmp_path, capsys):
    code = main(
        [
            "key",
            "new",
            "--keystore",
            str(tmp_path / "ks"),
            "--password-file",
            str(tmp_path / "missing"),
        ]
    )
    _, err = capsys.readouterr()
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("gexe: error: ") and "not found" in err
    assert main(["key", "list", "--keystore", str(tmp_path / "empty")]) == 0
    assert "no keys" in capsys.readouterr().out

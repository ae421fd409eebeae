"""Secrets at rest: keystore files 0600 in a 0700 directory, the libp2p identity key
0600, the store private — whatever the umask — and the key commands never print a
private key or a password."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from eth_account import Account
from gexe.node.keystore import create_key, import_key, load_key
from gexe.node.store import Store
from gexe.validator.service import _p2p_key

FAST = 1024  # scrypt cost for tests
KEY = "0x" + "5d" * 31 + "01"
PASSWORD = "Vt7#pw-not-in-any-output"


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.fixture(params=[0o000, 0o022, 0o077], ids=["umask000", "umask022", "umask077"])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def test_keystore_is_private_under_any_umask(tmp_path: Path, umask: int):
    ks = tmp_path / "ks"
    made = create_key(ks, PASSWORD, scrypt_n=FAST)
    imported = import_key(ks, KEY, PASSWORD, scrypt_n=FAST)
    assert mode(ks) == 0o700
    for info in (made, imported):
        assert mode(info.path) == 0o600
        assert info.path.stat().st_uid == os.getuid()
    assert not [p for p in ks.iterdir() if p.name.startswith(".tmp-")]  # no leftovers


def test_loose_keystore_directory_is_tightened(tmp_path: Path):
    ks = tmp_path / "ks"
    ks.mkdir(mode=0o755)
    ks.chmod(0o777)
    import_key(ks, KEY, PASSWORD, scrypt_n=FAST)
    assert mode(ks) == 0o700


def test_keystore_file_holds_no_plaintext_key(tmp_path: Path):
    info = import_key(tmp_path / "ks", KEY, PASSWORD, scrypt_n=FAST)
    text = info.path.read_text().lower()
    assert KEY[2:] not in text and PASSWORD.lower() not in text
    assert load_key(info.path, PASSWORD).key.hex().removeprefix("0x") == KEY[2:]


def test_p2p_key_file_is_private(tmp_path: Path, umask: int):
    path = tmp_path / "data" / "p2p.key"
    key = _p2p_key(path)
    assert len(key) == 32 and mode(path) == 0o600
    assert _p2p_key(path) == key  # loaded, not replaced


def test_store_files_are_private(tmp_path: Path, umask: int):
    s = Store(tmp_path / "store")
    try:
        assert mode(tmp_path / "store") == 0o700
        files = [p for p in (tmp_path / "store").iterdir() if p.is_file()]
        assert files and all(mode(p) & 0o077 == 0 for p in files), [
            (p.name, oct(mode(p))) for p in files
        ]
    finally:
        s.close()


def test_key_commands_never_print_secrets(tmp_path: Path):
    pw = tmp_path / "pw.txt"
    pw.write_text(PASSWORD + "\n")
    keyfile = tmp_path / "key.hex"
    keyfile.write_text(KEY + "\n")
    ks = tmp_path / "ks"
    common = ["--keystore", str(ks), "--password-file", str(pw), "--scrypt-n", str(FAST)]
    runs = [
        ["key", "import", str(keyfile), *common],
        ["key", "new", *common],
        ["key", "list", "--keystore", str(ks)],
        ["key", "list", "--keystore", str(ks), "--json"],
        ["key", "import", str(keyfile), *common],  # a duplicate: an error path
        ["key", "import", str(pw), *common],  # not a key: an error naming the file
    ]
    secrets = [KEY[2:], KEY[2:].upper(), PASSWORD]
    for args in runs:
        p = subprocess.run(
            [sys.executable, "-m", "gexe", *args],
            capture_output=True,
            text=True,
            timeout=120,
            preexec_fn=lambda: os.umask(0),
        )
        out = p.stdout + p.stderr
        assert "Traceback" not in out
        for s in secrets:
            assert s not in out, (args, out)
    assert (
        Account.from_key(KEY).address
        in subprocess.run(
            [sys.executable, "-m", "gexe", "key", "list", "--keystore", str(ks)],
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
    )
    assert all(mode(p) == 0o600 for p in ks.iterdir()) and mode(ks) == 0o700

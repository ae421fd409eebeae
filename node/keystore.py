"""Encrypted validator keys: eth-account (Web3 Secret Storage, V3) keystore files.

A keystore is a directory (mode 0700) of JSON files (mode 0600), one per key, named as
geth names them (`UTC--<time>--<address>`), so geth, Foundry's `cast wallet` and
eth-account read them too. Keys are created or imported, listed (addresses only, no
password needed) and loaded with a password read from a file or from an environment
variable — never from a command-line literal.

Invariants:
- A private key or password never appears in a return value meant for display, an
  exception message, or a log line; every password and key this module loads is
  registered with the log redactor (`gexe.node.logging.add_secret`).
- Files are written atomically (temp file, fsync, rename) and never overwritten.
- Errors are `KeystoreError` with one line: what, where, what to do.

When modifying this part: keep the on-disk format standard (V3); the scrypt cost is a
parameter only so tests and throwaway dev networks can choose a cheap one.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import stat
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .logging import add_secret

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

# eth_account takes about a second to import; only commands that use keys pay for it.


def _account():  # type: ignore[no-untyped-def]
    from eth_account import Account

    return Account


DEFAULT_SCRYPT_N = 262_144  # eth-account's and geth's standard cost
DEFAULT_KEYSTORE = Path("~/.gexe/keystore")
_ADDRESS = re.compile(r"(0x)?[0-9a-fA-F]{40}")


class KeystoreError(Exception):
    """A keystore problem the user can fix; the message is one line."""


@dataclass(frozen=True, slots=True)
class KeyInfo:
    address: str  # EIP-55 checksummed, 0x-prefixed
    path: Path


# ------------------------------------------------------------------ passwords


def read_password(
    *,
    password_file: str | os.PathLike[str] | None = None,
    password_env: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> str:
    """The password from a file (one trailing newline dropped) or an env variable."""
    if (password_file is None) == (password_env is None):
        raise KeystoreError(
            "give exactly one password source: a password file or the name "
            "of an environment variable holding the password"
        )
    if password_file is not None:
        p = Path(password_file).expanduser()
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise KeystoreError(
                f"{p}: password file not found; create it or fix the path"
            ) from None
        except (OSError, UnicodeDecodeError) as e:
            raise KeystoreError(
                f"{p}: cannot read the password file: "
                f"{getattr(e, 'strerror', None) or type(e).__name__}"
            ) from None
        password = text.removesuffix("\n").removesuffix("\r")
        where = str(p)
    else:
        assert password_env is not None
        env = os.environ if environ is None else environ
        if password_env not in env:
            raise KeystoreError(
                f"environment variable {password_env} is not set; export it "
                "with the keystore password"
            )
        password = env[password_env]
        where = f"${password_env}"
    if not password:
        raise KeystoreError(f"the password in {where} is empty; keystores need a password")
    add_secret(password)
    return password


# ------------------------------------------------------------------ directory and files


def ensure_keystore_dir(directory: str | os.PathLike[str]) -> Path:
    """Create the keystore directory with mode 0700 (tightening an existing one)."""
    d = Path(directory).expanduser()
    try:
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not d.is_dir():
            raise NotADirectoryError
        if stat.S_IMODE(d.stat().st_mode) != 0o700:
            d.chmod(0o700)
    except (NotADirectoryError, FileExistsError):
        raise KeystoreError(
            f"{d}: exists and is not a directory; choose another keystore path"
        ) from None
    except OSError as e:
        raise KeystoreError(f"{d}: cannot create the keystore directory: {e.strerror}") from None
    return d


def _file_name(address: str) -> str:
    t = time.time()
    stamp = time.strftime("%Y-%m-%dT%H-%M-%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"
    return f"UTC--{stamp}--{address.lower().removeprefix('0x')}"


def _write_new(directory: Path, name: str, data: bytes) -> Path:
    final = directory / name
    tmp = directory / f".tmp-{secrets.token_hex(8)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        if final.exists():
            raise KeystoreError(f"{final}: already exists; not overwriting a key file")
        os.rename(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dfd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    return final


def _parse_private_key(key: str | bytes) -> bytes:
    if isinstance(key, str):
        text = key.strip().removeprefix("0x").removeprefix("0X")
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raw = b""
    else:
        raw = bytes(key)
    if len(raw) != 32:
        raise KeystoreError(
            "the private key must be 32 bytes written as 64 hex digits (optionally 0x-prefixed)"
        )
    return raw


def _save(
    directory: str | os.PathLike[str], raw: bytes, password: str, scrypt_n: int | None
) -> KeyInfo:
    if not password:
        raise KeystoreError("the password is empty; keystores need a password")
    n = DEFAULT_SCRYPT_N if scrypt_n is None else scrypt_n
    if n < 2 or n & (n - 1):
        raise KeystoreError(f"scrypt cost {n} must be a power of two")
    d = ensure_keystore_dir(directory)
    try:
        account = _account().from_key(raw)
    except (ValueError, TypeError):
        raise KeystoreError("the private key is not a valid secp256k1 key") from None
    add_secret(raw)
    for info in list_keys(d):
        if info.address == account.address:
            raise KeystoreError(f"key {account.address} is already in {d} ({info.path.name})")
    blob = _account().encrypt(raw, password, kdf="scrypt", iterations=n)
    path = _write_new(d, _file_name(account.address), json.dumps(blob).encode())
    return KeyInfo(account.address, path)


def create_key(
    directory: str | os.PathLike[str], password: str, *, scrypt_n: int | None = None
) -> KeyInfo:
    """Generate a new key and store it encrypted; return its address and file."""
    return _save(directory, secrets.token_bytes(32), password, scrypt_n)


def import_key(
    directory: str | os.PathLike[str],
    private_key: str | bytes,
    password: str,
    *,
    scrypt_n: int | None = None,
) -> KeyInfo:
    """Store an existing private key (hex text or 32 bytes) encrypted."""
    return _save(directory, _parse_private_key(private_key), password, scrypt_n)


def read_private_key_file(path: str | os.PathLike[str]) -> bytes:
    """A private key from a file holding its hex (whitespace ignored)."""
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KeystoreError(f"{p}: private key file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise KeystoreError(
            f"{p}: cannot read the private key file: "
            f"{getattr(e, 'strerror', None) or type(e).__name__}"
        ) from None
    try:
        raw = _parse_private_key(text)
    except KeystoreError as e:
        raise KeystoreError(f"{p}: {e}") from None
    add_secret(raw)
    return raw


# ------------------------------------------------------------------ reading


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise KeystoreError(
            f"{path}: keystore file not found; check the path or run `gexe key list`"
        ) from None
    except IsADirectoryError:
        raise KeystoreError(f"{path}: is a directory, expected a keystore file") from None
    except OSError as e:
        raise KeystoreError(f"{path}: cannot read the keystore file: {e.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        where = f" (line {e.lineno})" if isinstance(e, json.JSONDecodeError) else ""
        raise KeystoreError(f"{path}: not a keystore file: invalid JSON{where}") from None
    if not isinstance(data, dict) or not ("crypto" in data or "Crypto" in data):
        raise KeystoreError(f"{path}: not a keystore file: no 'crypto' section")
    return data


def _address(data: Mapping[str, Any], path: Path) -> str:
    raw = data.get("address")
    try:
        from eth_utils import to_checksum_address

        return to_checksum_address("0x" + str(raw).removeprefix("0x"))
    except ValueError:
        raise KeystoreError(f"{path}: keystore file has no valid 'address'") from None


def list_keys(directory: str | os.PathLike[str]) -> list[KeyInfo]:
    """Keys in a keystore directory, sorted by file name; other files are skipped."""
    d = Path(directory).expanduser()
    if not d.exists():
        return []
    if not d.is_dir():
        raise KeystoreError(f"{d}: is not a directory; give the keystore directory")
    out = []
    for p in sorted(d.iterdir()):
        if p.name.startswith(".") or not p.is_file():
            continue
        try:
            out.append(KeyInfo(_address(_read_json(p), p), p))
        except KeystoreError:
            continue
    return out


def find_key(directory: str | os.PathLike[str], address: str) -> KeyInfo:
    want = address.lower().removeprefix("0x")
    for info in list_keys(directory):
        if info.address.lower().removeprefix("0x") == want:
            return info
    raise KeystoreError(
        f"no key for {address} in {Path(directory).expanduser()}; run "
        "`gexe key list` to see the keys there"
    )


def load_key(
    key: str | os.PathLike[str], password: str, *, keystore: str | os.PathLike[str] | None = None
) -> LocalAccount:
    """Decrypt a key given as a keystore file path or as an address in `keystore`."""
    text = os.fspath(key)
    if keystore is not None and _ADDRESS.fullmatch(text):
        path = find_key(keystore, text).path
    else:
        path = Path(text).expanduser()
    data = _read_json(path)
    address = _address(data, path)
    try:
        raw = _account().decrypt(data, password)
    except ValueError as e:
        if "MAC mismatch" in str(e):
            raise KeystoreError(
                f"{path}: wrong password for key {address}; check the password "
                "file or environment variable"
            ) from None
        raise KeystoreError(
            f"{path}: cannot decrypt: {type(e).__name__}; the file may be "
            "damaged or use an unsupported cipher"
        ) from None
    add_secret(bytes(raw))
    account = _account().from_key(raw)
    if account.address != address:
        raise KeystoreError(
            f"{path}: decrypts to {account.address}, not the {address} it "
            "claims; the file was altered"
        )
    return account


def load_key_with(
    key: str | os.PathLike[str],
    *,
    keystore: str | os.PathLike[str] | None = None,
    password_file: str | os.PathLike[str] | None = None,
    password_env: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> LocalAccount:
    """`load_key` with the password read from a file or an environment variable."""
    password = read_password(
        password_file=password_file, password_env=password_env, environ=environ
    )
    return load_key(key, password, keystore=keystore)

"""`gexe key new|import|list`: manage the validator's encrypted keystore.

Prints addresses and file paths only, never a private key or password. Passwords come
from `--password-file F` or `--password-env VAR`, or from an interactive prompt when
stdin is a terminal — never from a command-line literal (shell history, `ps`).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path

from gexe.node.keystore import (
    DEFAULT_KEYSTORE,
    DEFAULT_SCRYPT_N,
    KeystoreError,
    create_key,
    import_key,
    list_keys,
    read_password,
    read_private_key_file,
)

from ._errors import UserError


def _keystore_default() -> Path:
    return Path(os.environ.get("GEXE_KEYSTORE") or DEFAULT_KEYSTORE).expanduser()


def _add_common(p: argparse.ArgumentParser, *, password: bool) -> None:
    p.add_argument(
        "--keystore",
        type=Path,
        default=None,
        metavar="DIR",
        help="keystore directory (default: $GEXE_KEYSTORE or ~/.gexe/keystore)",
    )
    if password:
        g = p.add_mutually_exclusive_group()
        g.add_argument(
            "--password-file",
            type=Path,
            metavar="FILE",
            help="read the keystore password from FILE",
        )
        g.add_argument(
            "--password-env",
            metavar="VAR",
            help="read the keystore password from environment variable VAR",
        )
        p.add_argument(
            "--scrypt-n",
            type=int,
            default=DEFAULT_SCRYPT_N,
            metavar="N",
            help="scrypt cost (power of two, default %(default)s); lower only "
            "for throwaway dev keys",
        )


def add_key_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    key = sub.add_parser("key", help="create, import and list validator keys")
    ksub = key.add_subparsers(dest="key_command", required=True, metavar="ACTION")

    n = ksub.add_parser("new", help="generate a key and store it encrypted")
    _add_common(n, password=True)
    n.set_defaults(func=cmd_new)

    i = ksub.add_parser("import", help="encrypt an existing private key into the keystore")
    i.add_argument(
        "key_file", metavar="KEYFILE", help="file holding the private key as hex ('-' reads stdin)"
    )
    _add_common(i, password=True)
    i.set_defaults(func=cmd_import)

    ls = ksub.add_parser("list", help="print the addresses in the keystore")
    _add_common(ls, password=False)
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=cmd_list)


def _password(args: argparse.Namespace) -> str:
    if args.password_file is None and args.password_env is None:
        if not sys.stdin.isatty():
            raise UserError("no password given; use --password-file FILE or --password-env VAR")
        first = getpass.getpass("keystore password: ")
        if not first:
            raise UserError("the password is empty; keystores need a password")
        if getpass.getpass("repeat password: ") != first:
            raise UserError("the passwords differ; run the command again")
        return first
    try:
        return read_password(password_file=args.password_file, password_env=args.password_env)
    except KeystoreError as e:
        raise UserError(str(e)) from None


def cmd_new(args: argparse.Namespace) -> int:
    directory = args.keystore or _keystore_default()
    password = _password(args)
    try:
        info = create_key(directory, password, scrypt_n=args.scrypt_n)
    except KeystoreError as e:
        raise UserError(str(e)) from None
    print(f"created {info.address}")
    print(f"  file {info.path}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    directory = args.keystore or _keystore_default()
    try:
        if args.key_file == "-":
            raw: str | bytes = sys.stdin.readline()
        else:
            raw = read_private_key_file(args.key_file)
        password = _password(args)
        info = import_key(directory, raw, password, scrypt_n=args.scrypt_n)
    except KeystoreError as e:
        raise UserError(str(e)) from None
    print(f"imported {info.address}")
    print(f"  file {info.path}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    directory = args.keystore or _keystore_default()
    try:
        keys = list_keys(directory)
    except KeystoreError as e:
        raise UserError(str(e)) from None
    if args.json:
        print(json.dumps([{"address": k.address, "file": str(k.path)} for k in keys]))
        return 0
    if not keys:
        print(f"no keys in {Path(directory).expanduser()}; create one with `gexe key new`")
        return 0
    for k in keys:
        print(f"{k.address}  {k.path}")
    return 0

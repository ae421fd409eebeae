"""The `gexe` command line: one entry point dispatching to sub-commands.

Every user-caused error ends as one line on stderr — what went wrong, where, what to
do — with a non-zero exit code and no traceback (`UserError`). Unexpected failures are
bugs: they still print one line, plus the traceback when GEXE_DEBUG=1.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

from . import __version__
from ._errors import UserError
from .code_cmd import add_code_commands
from .dev_cmd import add_dev_commands
from .key_cmd import add_key_commands
from .operator_cmd import add_operator_commands
from .program_cmd import add_program_commands
from .validator_cmd import add_validator_commands


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line (argparse prints the whole usage block by default)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="gexe", description="gexe: Gear programs on Ethereum")
    ap.add_argument("--version", action="version", version=f"gexe {__version__}")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_program_commands(sub)
    add_code_commands(sub)
    add_key_commands(sub)
    add_validator_commands(sub)
    add_operator_commands(sub)
    add_dev_commands(sub)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"gexe: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("gexe: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    except Exception as e:  # a bug: one line, traceback only on request
        if os.environ.get("GEXE_DEBUG"):
            traceback.print_exc()
        print(
            f"gexe: internal error: {type(e).__name__}: {e} (set GEXE_DEBUG=1 for the "
            "traceback; please report it)",
            file=sys.stderr,
        )
        return 70


if __name__ == "__main__":
    sys.exit(main())

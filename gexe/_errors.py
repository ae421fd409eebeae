"""`UserError`: an error the user can fix, printed as one line by the CLI."""

from __future__ import annotations


class UserError(Exception):
    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code

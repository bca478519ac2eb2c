"""Errors a user can act on.

A user mistake is a :class:`CasabookError`: a stable code and a one-line message that names the
file, the key and what was expected. The CLI prints it and exits 2; tracebacks are for bugs.
"""

from __future__ import annotations

from pathlib import Path


class CasabookError(Exception):
    """A mistake in the user's input, safe to show as one line."""

    exit_code = 2

    def __init__(self, code: str, message: str, *, file: Path | str | None = None,
                 key: str | None = None, line: int | None = None) -> None:
        self.code = code
        self.message = message
        self.file = str(file) if file is not None else None
        self.key = key
        self.line = line
        super().__init__(self.render())

    def render(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "") + ": "
        if self.key:
            where += f"{self.key}: "
        return f"{where}{self.message} [{self.code}]"

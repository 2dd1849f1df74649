"""The one exception type the CLI turns into a clean message and an exit code."""

from __future__ import annotations


class LbreportError(Exception):
    """A failure the user can act on: `message` is ready to print (already translated)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code

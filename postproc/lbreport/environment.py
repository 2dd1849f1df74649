"""Where a command writes and how, decided once (as httpie's `Environment`): the output and
error streams, whether each is a terminal, the width a report is laid out to, and the
language. The CLI builds one per command and hands it to whatever writes: the renderers, the
progress bars, `lbreport live`. Nothing else asks `isatty()` or builds a rich Console."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:  # rich only where something is drawn: a report's fixed cost pays no import
    from rich.console import Console

FILE_WIDTH = 110  # a file or a pipe gets plain text of a fixed, readable width


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed stream, or a file-like without isatty
        return False


@dataclass(frozen=True)
class Environment:
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    lang: str = "en"

    @classmethod
    def for_output(cls, out: TextIO, lang: str = "en") -> Environment:
        """Writing to `out` (a file, a string buffer in a test), errors to this process's."""
        return cls(stdout=out, lang=lang)

    def with_output(self, out: TextIO) -> Environment:
        return replace(self, stdout=out)

    @property
    def stdout_isatty(self) -> bool:
        return _isatty(self.stdout)

    @property
    def stderr_isatty(self) -> bool:
        return _isatty(self.stderr)

    @property
    def width(self) -> int | None:
        """None on a terminal (its own width), else FILE_WIDTH."""
        return None if self.stdout_isatty else FILE_WIDTH

    def report_console(self) -> tuple[Console, RStrip | TextIO]:
        """A console for a report on stdout, and the stream to flush when done: colours and the
        terminal's width on a terminal; plain text of FILE_WIDTH, without the trailing spaces
        rich pads table cells with, anywhere else (files, pastes, diffs)."""
        from rich.console import Console

        sink: RStrip | TextIO = self.stdout if self.stdout_isatty else RStrip(self.stdout)
        console = Console(file=sink, highlight=False, emoji=False, markup=False,
                          width=self.width)
        return console, sink

    def progress_console(self) -> Console | None:
        """A console for a progress bar on stderr; None when stderr is no terminal (no bar)."""
        if not self.stderr_isatty:
            return None
        from rich.console import Console

        return Console(file=self.stderr)


class RStrip:
    """Drops the trailing spaces rich pads table cells with."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._buf = ""

    def write(self, s: str) -> int:
        lines = (self._buf + s).split("\n")
        self._buf = lines.pop()
        for line in lines:
            self._out.write(line.rstrip(" ") + "\n")
        return len(s)

    def flush(self) -> None:
        if self._buf:
            self._out.write(self._buf.rstrip(" "))
            self._buf = ""
        self._out.flush()

    def isatty(self) -> bool:
        return False

"""The `lbreport` command: starts a report's tshark before Typer is even imported.

Importing the CLI (Typer, Click, their Rich and pydantic adapters) takes ~60 ms, which a
report's tshark could spend starting. So the command line is read here first, by its shape
only: `report CAPTURE` with options this module knows. That is a guess, never a decision:
the CLI parses the command line again with its own parser and starts the run only for what
that parser read (cli._prestart); pipeline.prestart keeps a run already started for the same
capture, lab and key log and replaces any other. A command line this module is unsure of
(an unknown option, `--help`, `--`, two positional arguments) starts nothing here.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

# The `report` command's options that take a value (cli.report's; tests/test_launch.py keeps
# them equal), and those whose value the run depends on.
REPORT_VALUE_OPTIONS = frozenset(
    {"--lab", "--format", "-f", "--output", "-o", "--keep-pdml", "--lang", "--keylog"})
_INPUTS = {"--lab": "lab", "--keylog": "keylog"}


def report_inputs(args: Sequence[str]) -> tuple[Path, Path | None, Path | None] | None:
    """(capture, lab file, key log) if `args` is surely a `report` command line, else None."""
    args = list(args)
    while args and (args[0] == "--lang" or args[0].startswith("--lang=")):  # the group's
        del args[: 1 if "=" in args[0] else 2]
    if not args or args[0] != "report":
        return None
    capture: str | None = None
    given: dict[str, str] = {}
    rest = iter(args[1:])
    for arg in rest:
        if arg.startswith("-") and arg != "-":
            name, eq, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
            if name not in REPORT_VALUE_OPTIONS:
                return None  # --help, --, a short option with its value attached, a typo
            if not eq:
                value = next(rest, None)  # type: ignore[assignment]
                if value is None:
                    return None
            if name in _INPUTS:
                given[_INPUTS[name]] = value
        elif capture is None:
            capture = arg
        else:
            return None
    if not capture:
        return None
    lab, keylog = (Path(given[k]) if k in given else None for k in ("lab", "keylog"))
    return Path(capture), lab, keylog


def main(args: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if args is None else args)
    inputs = report_inputs(args)
    if inputs is not None:
        from lbreport import pipeline

        pipeline.prestart(*inputs)
    from lbreport.cli import app

    try:
        app(args, prog_name="lbreport")  # standalone: it ends with SystemExit
    except SystemExit as done:
        if inputs is None:  # other commands end as Python ends
            raise
        _exit_now(done.code)


def _exit_now(code: object) -> None:
    """A report's end without the interpreter's teardown: finalizing the modules a report
    imports (Typer, Click, Rich, pydantic, lxml) takes 30-80 ms here, after everything was
    written. The exit handlers still run (they remove the unprivileged run's folder), and
    the output is flushed first; the exit status is what SystemExit would have given."""
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:
        print(code, file=sys.stderr)
        status = 1
    atexit._run_exitfuncs()  # noqa: SLF001 - the handlers os._exit would skip
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (`| head`)
            stream.flush()
    os._exit(status)

"""The terminal report: rich tables and a ladder diagram per request.

Packet text only ever reaches rich as `Text` (never parsed as markup) and after `printable()`
(no control character reaches the terminal).
"""

from __future__ import annotations

from typing import TextIO

from rich.console import Console
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from lbreport.lifecycle import TIMING_KEYS, Report, Request
from lbreport.messages import t
from lbreport.render import common
from lbreport.render.ladder import ladder
from lbreport.render.safe import printable


def _kv_table() -> Table:
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    return table


def header(console: Console, report: Report) -> None:
    console.print(Rule(Text(t("hdr.title", capture=printable(report.capture)), style="bold")))
    table = _kv_table()
    table.add_row(t("hdr.capture_point"), common.capture_point(report))
    roles = [printable(f"{r}: {', '.join(a)}") for r, a in report.roles.items()]
    table.add_row(t("hdr.roles"), Text("\n".join([*roles, common.roles_source(report)])))
    console.print(table)
    if report.truncated:
        console.print(Text(t("hdr.truncated", frame=report.last_frame), style="bold red"))
    console.print()


def request_block(console: Console, req: Request) -> None:
    title = Text(t("req.title", index=req.index) + "  ", style="bold")
    title.append(printable(f"{req.method} {req.uri}"))
    console.print(Rule(title, align="left"))
    table = _kv_table()
    table.add_row(t("req.client"), Text(printable(req.client)))
    if req.client_forwarded_for:
        table.add_row("", Text(t("req.client_xff", value=printable(req.client_forwarded_for))))
    table.add_row(t("req.status"), str(req.status) if req.status else t("req.no_status"))
    backend = req.backend or t("req.backend_unknown")
    table.add_row(t("req.backend"), Text(f"{backend}  ({common.evidence(req.evidence)})"))
    table.add_row(
        t("req.timings"),
        "\n".join(f"{t('timing.' + k)}: {common.ms(req.timings[k])}" for k in TIMING_KEYS),
    )
    # Escape each anomaly on its own: the newline between them is ours, not the packet's.
    anomalies = "\n".join(printable(common.anomaly(a)) for a in req.anomalies) or t("req.none")
    table.add_row(t("req.anomalies"), Text(anomalies,
                                           style="yellow" if req.anomalies else ""))
    console.print(table)
    console.print()
    console.print(Text("\n".join(ladder(req))), soft_wrap=True)
    console.print()


def summary(console: Console, report: Report) -> None:
    s = report.summary
    console.print(Rule(Text(t("sum.title"), style="bold")))
    table = _kv_table()
    table.add_row(t("sum.requests"), str(s.requests))
    table.add_row(t("sum.frames"), common.frames(report))
    table.add_row(t("sum.status_counts"), common.status_counts(s.status_counts))
    table.add_row(t("sum.backends"), ", ".join(f"{b}: {n}" for b, n in
                                               s.backend_distribution.items()))
    table.add_row(t("sum.balance"), common.balance(s.balance))
    table.add_row(*common.latency(s.latency))
    console.print(table)


class _RStrip:
    """Drops the trailing spaces rich pads table cells with (files, pastes, diffs)."""

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


def render(report: Report, out: TextIO) -> None:
    # Colours only on a terminal; a file gets plain text of a fixed, readable width.
    tty = out.isatty()
    sink = out if tty else _RStrip(out)
    console = Console(file=sink, highlight=False, emoji=False, markup=False,
                      width=None if tty else 110)
    header(console, report)
    for req in report.requests():
        request_block(console, req)
    summary(console, report)
    sink.flush()

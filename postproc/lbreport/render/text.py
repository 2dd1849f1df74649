"""The terminal report: rich tables and a ladder diagram per request.

Packet text only ever reaches rich as `Text` (never parsed as markup) and after `printable()`
(no control character reaches the terminal).
"""

from __future__ import annotations

import textwrap

from rich.cells import cell_len
from rich.console import Console
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from lbreport.environment import Environment
from lbreport.messages import t
from lbreport.model import Report, Request
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
    note = common.encrypted_note(report)
    if note:
        table.add_row(t("hdr.https"), note)
    weak = common.balancer_note(report)
    if weak:
        table.add_row(t("hdr.balancer"), weak)
    console.print(table)
    if report.truncated:
        console.print(Text(t("hdr.truncated", frame=report.last_frame), style="bold red"))
    console.print()


# Request blocks are laid out here, not by rich's Table and Rule: on a 5,000-request capture
# those cost ~2 ms a request (width measuring, wrapping), several times the whole JSON report.
# The layout is the one rich gave: label column as wide as the longest label, two spaces, the
# value wrapped at the console's width; a title rule padded with "─".
_REQUEST_LABELS = ("req.client", "req.status", "req.backend", "req.timings", "req.anomalies")


def _rule(title: str, width: int) -> str:
    room = width - 1
    if cell_len(title) > room:
        cut = Text(title)
        cut.truncate(max(room - 1, 1), overflow="ellipsis")
        title = cut.plain
    return title + " " + "─" * max(width - cell_len(title) - 1, 0)


def _rows(rows: list[tuple[str, str]], width: int) -> list[str]:
    """Label/value rows as lines, values wrapped to the width left after the labels."""
    label_width = max(cell_len(label) for label, _ in rows)
    room = max(width - label_width - 2, 20)
    out: list[str] = []
    for label, value in rows:
        first = True
        for line in value.split("\n"):
            for part in _wrap(line, room):
                out.append(f"{label.ljust(label_width) if first else ' ' * label_width}  {part}")
                first = False
    return out


def _wrap(line: str, room: int) -> list[str]:
    if len(line) <= room and cell_len(line) <= room:
        return [line]
    return textwrap.wrap(line, room, break_on_hyphens=False, drop_whitespace=True) or [""]


def request_block(console: Console, req: Request) -> None:
    title = t("req.title", index=req.index) + "  " + printable(common.request_text(req))
    rows = [(t("req.client"), printable(req.client))]
    if req.client_forwarded_for:
        rows.append(("", t("req.client_xff", value=printable(req.client_forwarded_for))))
    rows.append((t("req.status"), common.status_text(req)))
    rows.append((t("req.backend"), common.backend_text(req, "  ")))
    rows.append((t("req.timings"), "\n".join(
        f"{t('timing.' + k)}: {common.ms(req.timings[k])}" for k in req.timing_keys)))
    # Escape each anomaly on its own: the newline between them is ours, not the packet's.
    anomalies = "\n".join(printable(common.anomaly(a)) for a in req.anomalies) or t("req.none")
    rows.append((t("req.anomalies"), anomalies))
    lines = _rows(rows, console.width)
    body = "\n".join([*lines, "", *ladder(req), "", ""])
    rule = _rule(title, console.width)
    if not console.is_terminal:
        console.file.write(rule + "\n" + body)  # plain text: nothing for rich to style
        return
    # On a terminal: the title bold, the anomaly lines yellow.
    n_anomaly = len(anomalies.split("\n")) if req.anomalies else 0
    text = Text(rule + "\n", style="bold", end="")
    head = "\n".join(lines[:len(lines) - n_anomaly])
    text.append(head + ("\n" if n_anomaly else ""))
    if n_anomaly:
        text.append("\n".join(lines[len(lines) - n_anomaly:]), style="yellow")
    text.append("\n" + "\n".join(["", *ladder(req), "", ""]))
    console.print(text, soft_wrap=True, end="")


def summary(console: Console, report: Report) -> None:
    s = report.summary
    console.print(Rule(Text(t("sum.title"), style="bold")))
    table = _kv_table()
    table.add_row(t("sum.requests"), str(s.requests))
    table.add_row(t("sum.frames"), common.frames(report))
    table.add_row(t("sum.status_counts"), common.status_counts(s.status_counts))
    table.add_row(t("sum.backends"), common.backend_counts(report))
    if s.cache_hits:
        table.add_row(t("sum.cache_hits"), common.cache_hits(report))
    table.add_row(t("sum.balance"), common.balance(s.balance))
    for addr, n in s.other_balancers:
        table.add_row(t("sum.other_balancer"), Text(t("sum.other_balancer_line",
                                                      address=printable(addr), requests=n),
                                                    style="bold red"))
    table.add_row(*common.latency(s.latency))
    seen = common.requests_seen(report)
    if seen:
        table.add_row(t("sum.http_requests"), seen)
    if report.direct_requests:
        table.add_row(t("sum.direct"), t("sum.direct_count", count=len(report.direct_requests)))
    console.print(table)
    if report.direct_requests:
        # Apart from the balanced requests on purpose: M3 never saw these.
        console.print()
        console.print(Rule(Text(t("direct.title"), style="bold"), align="left"))
        console.print(Text(t("direct.note")))
        direct = Table(box=None, pad_edge=False, header_style="bold")
        for key in common.DIRECT_COLUMNS:
            direct.add_column(t(key))
        for d in report.direct_requests:
            direct.add_row(*(Text(printable(cell)) for cell in common.direct_row(d)))
        console.print(direct)


def render(report: Report, env: Environment) -> None:
    console, sink = env.report_console()
    header(console, report)
    for req in report.requests():
        request_block(console, req)
    summary(console, report)
    sink.flush()

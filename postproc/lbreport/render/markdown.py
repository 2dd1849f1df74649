"""What a student pastes into a lab write-up: a table per request, the ladder in a code block."""

from __future__ import annotations

from typing import TextIO

from lbreport.environment import Environment
from lbreport.messages import t
from lbreport.model import Report, Request
from lbreport.render import common
from lbreport.render.ladder import ladder
from lbreport.render.safe import markdown_cell, printable


def _row(key: str, value: str) -> str:
    return f"| {markdown_cell(key)} | {value} |\n"


def _request(req: Request, out: TextIO) -> None:
    out.write(f"\n## {t('req.title', index=req.index)}: "
              f"`{printable(common.request_text(req)).replace('`', chr(39))}`\n\n")
    out.write("| | |\n|---|---|\n")
    out.write(_row(t("req.client"), markdown_cell(req.client)))
    out.write(_row(t("req.request"), markdown_cell(common.request_text(req))))
    out.write(_row(t("req.status"), markdown_cell(common.status_text(req))))
    out.write(_row(t("req.backend"), markdown_cell(common.backend_text(req))))
    for k in req.timing_keys:
        out.write(_row(t("timing." + k), common.ms(req.timings[k])))
    anomalies = "<br>".join(markdown_cell(common.anomaly(a)) for a in req.anomalies)
    out.write(_row(t("req.anomalies"), anomalies or t("req.none")))
    out.write("\n```text\n" + "\n".join(ladder(req)) + "\n```\n")


def render(report: Report, env: Environment) -> None:
    out = env.stdout
    out.write(f"# {markdown_cell(t('hdr.title', capture=report.capture))}\n\n")
    out.write(f"- **{t('hdr.capture_point')}:** {common.capture_point(report)}\n")
    roles = "; ".join(f"{r}: {', '.join(a)}" for r, a in report.roles.items())
    out.write(f"- **{t('hdr.roles')}:** {markdown_cell(roles)} "
              f"({markdown_cell(common.roles_source(report))})\n")
    if report.truncated:
        out.write(f"- **{t('hdr.truncated', frame=report.last_frame)}**\n")
    note = common.encrypted_note(report)
    if note:
        out.write(f"- **{t('hdr.https')}:** {markdown_cell(note)}\n")
    weak = common.balancer_note(report)
    if weak:
        out.write(f"- **{t('hdr.balancer')}:** {markdown_cell(weak)}\n")
    for req in report.requests():
        _request(req, out)
    s = report.summary
    out.write(f"\n## {t('sum.title')}\n\n| | |\n|---|---|\n")
    out.write(_row(t("sum.requests"), str(s.requests)))
    out.write(_row(t("sum.frames"), common.frames(report)))
    out.write(_row(t("sum.status_counts"), markdown_cell(common.status_counts(s.status_counts))))
    out.write(_row(t("sum.backends"), markdown_cell(common.backend_counts(report))))
    if s.cache_hits:
        out.write(_row(t("sum.cache_hits"), markdown_cell(common.cache_hits(report))))
    out.write(_row(t("sum.balance"), markdown_cell(common.balance(s.balance))))
    title, value = common.latency(s.latency)
    out.write(_row(title, markdown_cell(value)))
    seen = common.requests_seen(report)
    if seen:
        out.write(_row(t("sum.http_requests"), markdown_cell(seen)))
    if report.direct_requests:
        out.write(_row(t("sum.direct"),
                       markdown_cell(t("sum.direct_count", count=len(report.direct_requests)))))
        # Apart from the balanced requests on purpose: M3 never saw these.
        out.write(f"\n## {markdown_cell(t('direct.title'))}\n\n"
                  f"{markdown_cell(t('direct.note'))}\n\n")
        out.write("| " + " | ".join(markdown_cell(t(k)) for k in common.DIRECT_COLUMNS) + " |\n")
        out.write("|" + "---|" * len(common.DIRECT_COLUMNS) + "\n")
        for d in report.direct_requests:
            out.write("| " + " | ".join(markdown_cell(c) for c in common.direct_row(d)) + " |\n")

"""One self-contained HTML page: summary with inline-SVG charts, a table of every request,
and each request's sequence diagram as inline SVG.

Self-contained on purpose: students open it from a mail or a USB stick, often offline, so
there is no CDN, no web font, no script. A Content-Security-Policy forbids scripts and every
external load as a second line of defence; the first is that every piece of text taken from
a packet goes through `_e()` (printable() for control characters, then html.escape) before it
reaches the page, in element text and in attributes alike.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from lbreport import __version__
from lbreport.environment import Environment
from lbreport.messages import language, step_name, t
from lbreport.model import Report, Request, Step, lane
from lbreport.render import common
from lbreport.render.safe import printable
from lbreport.vocabulary import ARP, BACK, FRONT, RESETS, STEPS, UNKNOWN, backend_role

# Why 'unsafe-inline' for styles only: the page's one <style> block. Nothing else may load.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'"

# Colours per leg; the back leg and ARP also differ by dash pattern, so the difference
# survives a black-and-white printout and colour blindness.
LEG_STYLE = {
    FRONT: ("#222222", ""),
    BACK: ("#7b3fb5", "7 4"),
    ARP: ("#c25e00", "2 3"),
}
FLAG_COLOUR = "#c0392b"
# Backends as in the LB-Lab profile (green M1, blue M2); others from a small palette.
BACKEND_COLOURS = {backend_role(1): "#2e9e4f", backend_role(2): "#2f6fd0"}
PALETTE = ("#d08a00", "#8e44ad", "#16a2a2", "#b5476b", "#6b8e23", "#7f6a4d")
UNKNOWN_COLOUR = "#9a9a9a"

# Sequence diagram geometry (px).
LANE_GAP = 170
LEFT = 170  # frame and time columns before the first lane
MS_X = LEFT - 56  # right edge of the time column, clear of the first lane's box
TOP = 44  # lane headers
ROW = 24
OPEN_FIRST = 3  # requests shown open; the rest are one click away (200-request captures)


def _e(value: object) -> str:
    """Text from packets (or anything else) made safe for HTML text and attribute values."""
    return html.escape(printable(str(value)), quote=True)


def backend_colour(backend: str | None, order: Sequence[str]) -> str:
    if not backend or backend == UNKNOWN:
        return UNKNOWN_COLOUR
    if backend in BACKEND_COLOURS:
        return BACKEND_COLOURS[backend]
    others = [b for b in order if b not in BACKEND_COLOURS]
    i = others.index(backend) if backend in others else len(others)
    return PALETTE[i % len(PALETTE)]


@dataclass(frozen=True, slots=True)
class _Row:
    """What the table and the charts need of one request (the first, light pass)."""

    index: int
    client: str
    request: str
    status: int | None
    backend: str | None
    backend_label: str  # the backend, or who answered instead (M3's cache; no balancer: n/a)
    evidence: str
    latency: float | None
    frames: int
    anomalies: tuple[str, ...]


# -- sequence diagram ----------------------------------------------------------------------


def _step_label(s: Step) -> str:
    name = step_name(s.step)
    return f"{name} {s.arp_target}" if s.arp_target else name


def diagram(report: Report, req: Request) -> str:
    order = report.lanes(req)
    x = {role: LEFT + i * LANE_GAP for i, role in enumerate(order)}
    width = LEFT + (len(order) - 1) * LANE_GAP + 90
    height = TOP + ROW * len(req.steps) + 16
    start = req.steps[0].time if req.steps else 0.0
    label = t("html.diagram", index=req.index)
    parts = [
        f'<svg class="seq" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'aria-label="{_e(label)}"><title>{_e(label)}</title>',
        f'<text class="colhead" x="8" y="{TOP - 18}">{_e(t("ladder.frame"))}</text>',
        f'<text class="colhead" x="{MS_X}" y="{TOP - 18}" text-anchor="end">'
        f'{_e(t("ladder.time"))}</text>',
    ]
    for role, lx in x.items():
        parts.append(
            f'<rect class="lanebox" x="{lx - 40}" y="6" width="80" height="22" rx="4"/>'
            f'<text class="lanename" x="{lx}" y="22" text-anchor="middle">{_e(role)}</text>'
            f'<line class="lifeline" x1="{lx}" y1="28" x2="{lx}" y2="{height - 4}"/>'
        )
    for i, s in enumerate(req.steps):
        y = TOP + ROW * i + 14
        parts.append(_arrow(s, x, y, (s.time - start) * 1000))
    parts.append("</svg>")
    return "".join(parts)


def _arrow(s: Step, x: dict[str, int], y: int, ms: float) -> str:
    colour, dash = LEG_STYLE.get(s.leg, LEG_STYLE[FRONT])
    a, b = x[lane(s.src_role)], x[lane(s.dst_role)]
    text = _step_label(s)
    flagged = bool(s.flags) or s.step in RESETS
    flags = f" [{', '.join(s.flags)}]" if s.flags else ""
    tip = f"{t('ladder.frame')} {s.frame} · +{ms:.3f} ms · {text}{flags} · " \
          f"{s.src_role} → {s.dst_role}"
    cls = f"arrow leg-{_e(s.leg or 'none')}" + (" flagged" if flagged else "")
    dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
    out = [f'<g class="{cls}"><title>{_e(tip)}</title>',
           f'<text class="frame" x="8" y="{y + 4}">{s.frame}</text>',
           f'<text class="ms" x="{MS_X}" y="{y + 4}" text-anchor="end">{ms:.3f}</text>']
    if a == b:  # a frame whose two ends share a lane: a small loop, not a zero-length arrow
        out.append(f'<path d="M{a} {y - 6} h24 v12 h-24" fill="none" stroke="{colour}" '
                   f'stroke-width="1.6"{dash_attr}/>')
        out.append(f'<text class="lbl" x="{a + 30}" y="{y + 4}">{_e(text + flags)}</text>')
    else:
        d = 1 if b > a else -1
        tip_x = b - d * 2
        base = tip_x - d * 9
        out.append(f'<line x1="{a}" y1="{y}" x2="{base}" y2="{y}" stroke="{colour}" '
                   f'stroke-width="1.6"{dash_attr}/>')
        out.append(f'<polygon points="{tip_x},{y} {base},{y - 4.5} {base},{y + 4.5}" '
                   f'fill="{colour}"/>')
        fill = FLAG_COLOUR if flagged else colour
        out.append(f'<text class="lbl" x="{(a + b) / 2:g}" y="{y - 4}" text-anchor="middle" '
                   f'style="fill:{fill}">{_e(text + flags)}</text>')  # CSS beats fill=""
    out.append("</g>")
    return "".join(out)


def legend() -> str:
    items = [(FRONT, t("html.leg.front")), (BACK, t("html.leg.back")), (ARP, t("html.leg.arp"))]
    rows = []
    for i, (leg, words) in enumerate(items):
        colour, dash = LEG_STYLE[leg]
        y = 14 + i * 20
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        rows.append(f'<line x1="6" y1="{y}" x2="56" y2="{y}" stroke="{colour}" stroke-width="2"'
                    f'{dash_attr}/><polygon points="62,{y} 53,{y - 4.5} 53,{y + 4.5}" '
                    f'fill="{colour}"/><text x="72" y="{y + 4}">{_e(words)}</text>')
    y = 14 + 3 * 20
    rows.append(f'<text x="6" y="{y + 4}" style="fill:{FLAG_COLOUR}" font-weight="bold">'
                f'{_e(STEPS[FRONT].syn)} [retrans]</text>'
                f'<text x="110" y="{y + 4}">{_e(t("html.flagged"))}</text>')
    return (f'<svg class="legend" xmlns="http://www.w3.org/2000/svg" width="520" height="{y + 12}" '
            f'role="img" aria-label="{_e(t("html.legend"))}">{"".join(rows)}</svg>')


# -- charts ------------------------------------------------------------------------------------


def backend_chart(report: Report, backends: Sequence[str]) -> str:
    dist = report.summary.backend_distribution
    expected = report.summary.balance.expected
    top = max([*dist.values(), *expected.values(), 1])
    bar_w = 360
    rows = []
    for i, (b, n) in enumerate(dist.items()):
        y = 8 + i * 28
        w = bar_w * n / top
        colour = backend_colour(b, backends)
        rows.append(f'<g><title>{_e(f"{b}: {n}")}</title>'
                    f'<text x="0" y="{y + 15}">{_e(b)}</text>'
                    f'<rect x="80" y="{y}" width="{w:.1f}" height="20" fill="{colour}"/>'
                    f'<text x="{80 + w + 6:.1f}" y="{y + 15}">{n}</text></g>')
        if b in expected:  # where the policy says the bar should end
            ex = 80 + bar_w * expected[b] / top
            rows.append(f'<line class="expected" x1="{ex:.1f}" y1="{y - 3}" x2="{ex:.1f}" '
                        f'y2="{y + 23}"><title>{_e(f"expected {expected[b]:g}")}</title></line>')
    y = 8 + 28 * len(dist)
    if expected:
        rows.append(f'<line class="expected" x1="80" y1="{y + 4}" x2="80" y2="{y + 20}"/>'
                    f'<text x="88" y="{y + 16}" class="muted">{_e(t("html.expected"))}</text>')
        y += 24
    height = y + 8
    return (f'<svg class="chart" id="chart-backends" xmlns="http://www.w3.org/2000/svg" '
            f'width="{80 + bar_w + 60}" height="{height}" role="img" '
            f'aria-label="{_e(t("html.chart_backends"))}">{"".join(rows)}</svg>')


def latency_chart(report: Report, rows: list[_Row], backends: Sequence[str]) -> str:
    lat = report.summary.latency
    values = sorted((r for r in rows if r.latency is not None), key=lambda r: r.latency or 0.0)
    if not values or not lat.basis:
        return f'<p class="muted">{_e(t("html.chart_latency_none"))}</p>'
    top = max(r.latency or 0.0 for r in values) or 1.0
    plot_h, left = 140, 60
    bar = max(2.0, min(36.0, 720 / len(values)))
    gap = 1.0 if bar < 6 else 3.0
    width = left + len(values) * bar + 40
    parts = []
    for i, r in enumerate(values):
        v = r.latency or 0.0
        h = max(1.0, plot_h * v / top)
        x = left + i * bar
        tip = t("html.bar", index=r.index, backend=r.backend_label,
                value=common.ms(v))
        parts.append(f'<rect x="{x:.1f}" y="{10 + plot_h - h:.1f}" width="{bar - gap:.1f}" '
                     f'height="{h:.1f}" fill="{backend_colour(r.backend, backends)}">'
                     f'<title>{_e(tip)}</title></rect>')
    for name, v in (("p50", lat.p50), ("p90", lat.p90)):
        if v is None:
            continue
        y = 10 + plot_h - plot_h * v / top
        parts.append(f'<line class="pct" x1="{left}" y1="{y:.1f}" x2="{width - 34:.1f}" '
                     f'y2="{y:.1f}"/><text class="pcttext" x="{width - 30:.1f}" y="{y + 4:.1f}">'
                     f'{name}</text>')
    parts.append(f'<text class="axis" x="{left - 4}" y="18" text-anchor="end">'
                 f'{_e(common.ms(top))}</text>'
                 f'<line class="axisline" x1="{left - 2}" y1="10" x2="{left - 2}" '
                 f'y2="{10 + plot_h}"/>')
    return (f'<svg class="chart" id="chart-latency" xmlns="http://www.w3.org/2000/svg" '
            f'width="{width:.0f}" height="{plot_h + 20}" role="img" '
            f'aria-label="{_e(t("html.chart_latency", basis=lat.basis))}">{"".join(parts)}</svg>')


# -- page ----------------------------------------------------------------------------------------

STYLE = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif;
       margin: 24px auto; max-width: 1200px; padding: 0 16px; color: #1d1d1d; }
h1 { font-size: 22px; margin: 0 0 8px; word-break: break-all; }
h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; }
table.kv th { text-align: left; padding: 2px 14px 2px 0; vertical-align: top; white-space: nowrap; }
table.kv td { padding: 2px 0; }
table.reqs { border-collapse: collapse; width: 100%; font-size: 13px; }
table.reqs th, table.reqs td { border-bottom: 1px solid #e4e4e4; padding: 3px 8px; text-align: left;
                               vertical-align: top; }
table.reqs th { background: #f3f3f3; position: sticky; top: 0; }
table.reqs td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.uri, .uri { word-break: break-all; font-family: ui-monospace, "DejaVu Sans Mono", monospace; }
.anom { color: #a4470b; }
.muted { color: #666; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px;
          margin-right: 5px; }
.charts { display: flex; flex-wrap: wrap; gap: 24px 40px; }
.charts figure { margin: 0; }
.charts figcaption { font-weight: 600; margin-bottom: 6px; }
details.req { border: 1px solid #ddd; border-radius: 6px; margin: 10px 0; padding: 4px 10px; }
details.req > summary { cursor: pointer; font-weight: 600; padding: 4px 0; }
details.req[open] > summary { border-bottom: 1px solid #eee; margin-bottom: 8px; }
.diagram { overflow-x: auto; }
svg text { font: 12px system-ui, "DejaVu Sans", sans-serif; fill: #222; }
svg.seq .lanebox { fill: #f2f4f8; stroke: #8a94a6; }
svg.seq .lanename { font-weight: 700; }
svg.seq .lifeline { stroke: #b8bfcc; stroke-dasharray: 3 3; }
svg.seq .frame, svg.seq .ms, svg.seq .colhead { fill: #666; font-variant-numeric: tabular-nums; }
svg.seq .lbl { font-size: 11.5px; }
svg.seq g.arrow:hover line { stroke-width: 3; }
svg .expected { stroke: #000; stroke-width: 2; stroke-dasharray: 3 2; }
svg .pct { stroke: #444; stroke-dasharray: 4 3; }
svg .pcttext, svg .axis { fill: #444; font-size: 11px; }
svg .axisline { stroke: #999; }
footer { margin: 32px 0 12px; color: #777; font-size: 12px; }
"""


def _rows(report: Report) -> list[_Row]:
    basis = report.summary.latency.basis
    return [
        _Row(
            index=req.index,
            client=req.client,
            request=common.request_text(req),
            status=req.status,
            backend=req.backend,
            backend_label=common.backend_name(req),
            evidence=req.evidence,
            latency=req.timings.get(basis) if basis else None,
            frames=len(req.steps),
            anomalies=tuple(common.anomaly(a) for a in req.anomalies),
        )
        for req in report.requests()
    ]


def _kv(pairs: Iterable[tuple[str, str]]) -> str:
    """Rows of (already escaped) header and value."""
    return '<table class="kv">' + "".join(
        f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in pairs) + "</table>"


def _header(report: Report) -> str:
    roles = "<br>".join(_e(f"{r}: {', '.join(a)}") for r, a in report.roles.items())
    pairs = [
        (_e(t("hdr.capture_point")), _e(common.capture_point(report))),
        (_e(t("hdr.roles")), f'{roles}<br><span class="muted">'
                             f'{_e(common.roles_source(report))}</span>'),
    ]
    note = common.encrypted_note(report)
    if note:
        pairs.append((_e(t("hdr.https")), _e(note)))
    weak = common.balancer_note(report)
    if weak:
        pairs.append((_e(t("hdr.balancer")), _e(weak)))
    out = f'<h1>{_e(t("hdr.title", capture=report.capture))}</h1>{_kv(pairs)}'
    if report.truncated:
        out += f'<p class="anom"><strong>{_e(t("hdr.truncated", frame=report.last_frame))}' \
               f"</strong></p>"
    return out


def _summary(report: Report, rows: list[_Row], backends: Sequence[str]) -> str:
    s = report.summary
    title, value = common.latency(s.latency)
    pairs = [
        (_e(t("sum.requests")), str(s.requests)),
        (_e(t("sum.frames")), _e(common.frames(report))),
        (_e(t("sum.status_counts")), _e(common.status_counts(s.status_counts))),
        (_e(t("sum.backends")), _e(common.backend_counts(report))),
    ]
    if s.cache_hits:
        pairs.append((_e(t("sum.cache_hits")), _e(common.cache_hits(report))))
    pairs += [(_e(t("sum.balance")), _e(common.balance(s.balance))), (_e(title), _e(value))]
    seen = common.requests_seen(report)
    if seen:
        pairs.append((_e(t("sum.http_requests")), _e(seen)))
    if report.direct_requests:
        pairs.append((_e(t("sum.direct")),
                      f'<a href="#direct">'
                      f'{_e(t("sum.direct_count", count=len(report.direct_requests)))}</a>'))
    basis = t(f"sum.latency_basis.{s.latency.basis}") if s.latency.basis else "-"
    charts = (
        f'<div class="charts"><figure><figcaption>{_e(t("html.chart_backends"))}</figcaption>'
        f"{backend_chart(report, backends)}</figure>"
        f'<figure><figcaption>{_e(t("html.chart_latency", basis=basis))}</figcaption>'
        f"{latency_chart(report, rows, backends)}</figure></div>"
    )
    return f'<h2 id="summary">{_e(t("sum.title"))}</h2>{_kv(pairs)}{charts}{_direct(report)}'


def _direct(report: Report) -> str:
    """Direct requests (client → backend, never through M3), apart from the balanced ones."""
    if not report.direct_requests:
        return ""
    heads = "".join(f"<th>{_e(t(k))}</th>" for k in common.DIRECT_COLUMNS)
    rows = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in common.direct_row(d)) + "</tr>"
                   for d in report.direct_requests)
    return (f'<h2 id="direct">{_e(t("direct.title"))}</h2><p class="muted">'
            f'{_e(t("direct.note"))}</p><table class="reqs" id="direct-requests"><thead><tr>'
            f"{heads}</tr></thead><tbody>{rows}</tbody></table>")


def _table(rows: list[_Row], backends: Sequence[str]) -> str:
    heads = [t("html.col.index"), t("req.client"), t("req.request"), t("req.status"),
             t("req.backend"), t("html.col.evidence"), t("html.col.latency"),
             t("html.col.frames"), t("req.anomalies")]
    out = ['<table class="reqs" id="requests"><thead><tr>',
           "".join(f"<th>{_e(h)}</th>" for h in heads), "</tr></thead><tbody>"]
    for r in rows:
        swatch = f'<span class="swatch" style="background:{backend_colour(r.backend, backends)}">' \
                 f"</span>"
        anomalies = "<br>".join(_e(a) for a in r.anomalies) or _e(t("req.none"))
        out.append(
            f'<tr><td class="num"><a href="#req-{r.index}">{r.index}</a></td>'
            f"<td>{_e(r.client)}</td>"
            f'<td class="uri" title="{_e(r.request)}">{_e(r.request)}</td>'
            f"<td>{_e(r.status or t('req.no_status'))}</td>"
            f"<td>{swatch}{_e(r.backend_label)}</td>"
            f"<td>{_e(r.evidence)}</td>"
            f'<td class="num">{_e(common.ms(r.latency))}</td>'
            f'<td class="num">{r.frames}</td>'
            f'<td class="{"anom" if r.anomalies else "muted"}">{anomalies}</td></tr>'
        )
    out.append("</tbody></table>")
    return "".join(out)


def _request(report: Report, req: Request, is_open: bool) -> str:
    backend = common.backend_name(req)
    status = str(req.status) if req.status else t("req.no_status")
    request = common.request_text(req)
    anomalies = "<br>".join(_e(common.anomaly(a)) for a in req.anomalies)
    pairs = [
        (_e(t("req.client")), _e(req.client)),
        (_e(t("req.request")), f'<span class="uri">{_e(request)}</span>'),
        (_e(t("req.status")), _e(common.status_text(req))),
        (_e(t("req.backend")), _e(common.backend_text(req))),
        (_e(t("req.timings")), "<br>".join(
            _e(f"{t('timing.' + k)}: {common.ms(req.timings[k])}") for k in req.timing_keys)),
        (_e(t("req.anomalies")),
         f'<span class="anom">{anomalies}</span>' if anomalies else _e(t("req.none"))),
    ]
    flag = f' · <span class="anom">{_e(t("html.anomalies_count", count=len(req.anomalies)))}' \
           f"</span>" if req.anomalies else ""
    summary = (f'{_e(t("req.title", index=req.index))} · <span class="uri">'
               f"{_e(request)}</span> · {_e(status)} · {_e(backend)}{flag}")
    return (f'<details class="req" id="req-{req.index}"{" open" if is_open else ""}>'
            f"<summary>{summary}</summary>{_kv(pairs)}"
            f'<div class="diagram">{diagram(report, req)}</div></details>\n')


def render(report: Report, env: Environment) -> None:
    out = env.stdout
    rows = _rows(report)
    backends = report.backends
    out.write(
        f'<!DOCTYPE html>\n<html lang="{language()}"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="generator" content="lbreport {__version__}">'
        f"<title>{_e(t('hdr.title', capture=report.capture))}</title>"
        f"<style>{STYLE}</style></head><body>\n"
    )
    out.write(_header(report))
    out.write(_summary(report, rows, backends))
    out.write(f'<h2 id="legend">{_e(t("html.legend"))}</h2>{legend()}')
    out.write(f'<h2>{_e(t("html.requests"))}</h2>{_table(rows, backends)}'
              f'<p class="muted">{_e(t("html.open_hint"))}</p>\n')
    for i, req in enumerate(report.requests()):
        out.write(_request(report, req, is_open=i < OPEN_FIRST))
    out.write(f'<footer>{_e(t("html.footer", version=__version__))}</footer></body></html>\n')

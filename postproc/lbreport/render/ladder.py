"""A request's packets as a ladder (sequence) diagram in plain text, one lane per role.

    frame      +ms  client          M3              M1
        1    0.000  │──────SYN──────>│               │
        2    0.081  │<───SYN/ACK─────│               │

Used by the text and Markdown renderers; the HTML renderer (issue 6) draws the same
lanes and arrows as SVG from `lanes()` and the request's steps.
"""

from __future__ import annotations

from lbreport.lifecycle import Request, _role_sort
from lbreport.messages import t
from lbreport.render.safe import printable

LANE = 18  # columns between two lanes: the longest label ("up-FIN-backend") fits


def lanes(request: Request) -> list[str]:
    roles = {s.src_role or "?" for s in request.steps} | {s.dst_role or "?" for s in request.steps}
    return _role_sort(roles)


def ladder(request: Request) -> list[str]:
    order = lanes(request)
    pos = {role: i * LANE for i, role in enumerate(order)}
    width = (len(order) - 1) * LANE + 1
    names = "".join(printable(r)[: LANE - 1].ljust(LANE) for r in order).rstrip()
    lines = [f"{t('ladder.frame'):>6} {t('ladder.time'):>9}  {names}"]
    start = request.steps[0].time if request.steps else 0.0
    for s in request.steps:
        row = [" "] * width
        for x in pos.values():
            row[x] = "│"
        a, b = pos[s.src_role or "?"], pos[s.dst_role or "?"]
        if a != b:
            lo, hi = min(a, b), max(a, b)
            for x in range(lo + 1, hi):
                row[x] = "─"
            if b > a:
                row[b - 1] = ">"
            else:
                row[b + 1] = "<"
            text = f"{s.step} {s.arp_target}" if s.arp_target else s.step
            label = printable(text)[: hi - lo - 3]
            at = lo + 1 + (hi - lo - 1 - len(label)) // 2
            row[at : at + len(label)] = list(label)
        line = "".join(row)
        if s.flags:
            line += "  [" + ",".join(printable(f) for f in s.flags) + "]"
        ms = (s.time - start) * 1000
        lines.append(f"{s.frame:>6} {ms:>9.3f}  {line}")
    return lines

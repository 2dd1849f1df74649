"""A request's packets as a ladder (sequence) diagram in plain text, one lane per role.

    frame      +ms  client          M3              M1
        1    0.000  │──────SYN──────>│               │
        2    0.081  │<───SYN/ACK─────│               │

Used by the text and Markdown renderers, with the request's own lanes (`Request.lanes`);
the HTML renderer draws the same arrows as SVG, on every role's lane (`Report.lanes`).
"""

from __future__ import annotations

from lbreport.messages import step_name, t
from lbreport.model import Request, Step, lane
from lbreport.render.safe import printable

LANE = 18  # columns between two lanes: the longest label ("up-FIN-backend") fits


def _label(s: Step) -> str:
    name = step_name(s.step)  # the reader's language (--lang); JSON keeps the contract's name
    return f"{name} {s.arp_target}" if s.arp_target else name


def ladder(request: Request) -> list[str]:
    order = request.lanes
    # Wider lanes only when a (translated) label would not fit: English output is unchanged.
    gap = max([LANE, *(len(_label(s)) + 4 for s in request.steps)])
    pos = {role: i * gap for i, role in enumerate(order)}
    width = (len(order) - 1) * gap + 1
    names = "".join(printable(r)[: gap - 1].ljust(gap) for r in order).rstrip()
    lines = [f"{t('ladder.frame'):>6} {t('ladder.time'):>9}  {names}"]
    start = request.steps[0].time if request.steps else 0.0
    for s in request.steps:
        row = [" "] * width
        for x in pos.values():
            row[x] = "│"
        a, b = pos[lane(s.src_role)], pos[lane(s.dst_role)]
        if a != b:
            lo, hi = min(a, b), max(a, b)
            for x in range(lo + 1, hi):
                row[x] = "─"
            if b > a:
                row[b - 1] = ">"
            else:
                row[b + 1] = "<"
            label = printable(_label(s))[: hi - lo - 3]
            at = lo + 1 + (hi - lo - 1 - len(label)) // 2
            row[at : at + len(label)] = list(label)
        line = "".join(row)
        if s.flags:
            line += "  [" + ",".join(printable(f) for f in s.flags) + "]"
        ms = (s.time - start) * 1000
        lines.append(f"{s.frame:>6} {ms:>9.3f}  {line}")
    return lines

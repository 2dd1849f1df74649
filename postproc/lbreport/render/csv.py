"""One row per request, for a spreadsheet. Cells from packets are defused (formula injection)."""

from __future__ import annotations

import csv

from lbreport.environment import Environment
from lbreport.messages import t
from lbreport.model import TIMING_KEYS, Report
from lbreport.render.json import anomaly_text
from lbreport.render.safe import csv_cell

COLUMNS = [
    "index", "client", "method", "uri", "status", "backend", "backend_evidence", "frames",
    *TIMING_KEYS, "anomalies",
]  # fmt: skip


def render(report: Report, env: Environment) -> None:
    out = env.stdout
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([t(f"csv.{c}") for c in COLUMNS])  # English: exactly COLUMNS
    for req in report.requests():
        timings = ["" if req.timings[k] is None else f"{req.timings[k]:.6f}" for k in TIMING_KEYS]
        writer.writerow([
            req.index,
            csv_cell(req.client),
            csv_cell(req.method),
            csv_cell(req.uri),
            req.status or "",
            req.backend or "",
            req.evidence,
            len(req.steps),
            *timings,
            # Cells stay data (README): the contract's strings, as in the JSON.
            csv_cell("; ".join(anomaly_text(a) for a in req.anomalies)),
        ])  # fmt: skip

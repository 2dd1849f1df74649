"""The JSON contract, schema "lbreport/1" (documented in the README).

Streamed: the header, then one request per line, then the summary, so a 50k-request capture
never becomes one giant dict. Keys are never translated.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any, TextIO

from lbreport import SCHEMA
from lbreport.lifecycle import Report, Request, Step
from lbreport.render import common


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 6)


def roles_json(roles: dict[str, list[str]]) -> dict[str, Any]:
    """"client" is always a list; another role is its address, or a list when it has several
    (e.g. IPv4 and IPv6)."""
    return {r: a if r == "client" or len(a) != 1 else a[0] for r, a in roles.items()}


def _step(s: Step) -> dict[str, Any]:
    step = {
        "frame": s.frame,
        "time": round(s.time, 6),
        "src_role": s.src_role,
        "dst_role": s.dst_role,
        "leg": s.leg,
        "step": s.step,
        "flags": list(s.flags),
    }
    if s.arp_target:
        step["arp_target"] = s.arp_target
    return step


def request_json(req: Request) -> dict[str, Any]:
    return {
        "index": req.index,
        "client": req.client,
        "method": req.method,
        "uri": req.uri,
        "status": req.status,
        "backend": req.backend,
        "backend_evidence": req.evidence,
        "upstream_statuses": [{"backend": b, "status": s} for b, s in req.upstream_statuses],
        "steps": [_step(s) for s in req.steps],
        "timings": {k: _round(v) for k, v in req.timings.items()},
        "anomalies": [str(a) for a in req.anomalies],
    }


def summary_json(report: Report) -> dict[str, Any]:
    s = report.summary
    balance = asdict(s.balance)
    balance["explanation"] = common.balance(s.balance)
    latency = {k: (_round(v) if isinstance(v, float) else v) for k, v in asdict(s.latency).items()}
    return {
        "requests": s.requests,
        "frames_total": s.frames_total,
        "frames_in_requests": s.frames_in_requests,
        "frames_other": s.frames_other,
        "backend_distribution": s.backend_distribution,
        "status_counts": s.status_counts,
        "balance": balance,
        "latency": latency,
    }


def render(report: Report, out: TextIO) -> None:
    head = {
        "schema": SCHEMA,
        "capture": report.capture,
        "capture_point": report.capture_point,
        "roles_source": report.roles_source,
        "truncated": report.truncated,
        "roles": roles_json(report.roles),
    }
    out.write(json.dumps(head, indent=2, ensure_ascii=False)[:-2])  # drop "\n}" to go on
    out.write(',\n  "requests": [')
    sep = "\n    "
    for req in report.requests():
        out.write(sep)
        out.write(json.dumps(request_json(req), ensure_ascii=False))
        sep = ",\n    "
    out.write("\n  ],\n  \"summary\": ")
    out.write(json.dumps(summary_json(report), indent=2, ensure_ascii=False).replace("\n", "\n  "))
    out.write("\n}\n")

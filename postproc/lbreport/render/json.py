"""The JSON contract, schema "lbreport/1" (documented in the README).

Streamed: the header, then one request per line, then the summary, so a 50k-request capture
never becomes one giant dict. Keys are never translated.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from typing import Any

from lbreport import SCHEMA
from lbreport.environment import Environment
from lbreport.model import Anomaly, DirectRequest, Report, Request, Step
from lbreport.render import common
from lbreport.vocabulary import CLIENT


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 6)


def roles_json(roles: dict[str, list[str]]) -> dict[str, Any]:
    """"client" is always a list; another role is its address, or a list when it has several
    (e.g. IPv4 and IPv6)."""
    return {r: a if r == CLIENT or len(a) != 1 else a[0] for r, a in roles.items()}


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


def _request_head(req: Request) -> dict[str, Any]:
    """A request's keys before its steps, in the contract's order."""
    return {
        "index": req.index,
        "client": req.client,
        "method": req.method,
        "uri": req.uri,
        "status": req.status,
        "backend": req.backend,
        "backend_evidence": req.evidence,
        "upstream_statuses": [{"backend": b, "status": s} for b, s in req.upstream_statuses],
        "client_sent_forwarded_for": req.client_forwarded_for or None,
        # Added after the older keys, never instead of them.
        "scheme": req.scheme or None,
        "http_version": req.http_version or None,
        "encrypted": req.encrypted,
        "status_source": req.status_source or None,
        "answered_by_balancer": req.answered_by_balancer,
        "interim": list(req.interim),
        "no_response_reason": req.no_response_reason or None,
    }


def anomaly_text(a: Anomaly) -> str:
    """The contract's string for an anomaly ("code" or "code: detail"), exactly as lbreport/1
    has always written it; JSON and CSV are read by programs, so never translated."""
    detail = ""
    if a.code == "missing-step":
        detail = a.steps[0]
    elif a.code == "repeated-step":
        detail = f"{a.steps[0]} ×{a.count}"
    elif a.code == "rst":
        detail = "→".join(a.path)
    elif a.code == "retransmission":
        detail = f"{a.count} frame(s)"
    elif a.code == "http-5xx":
        detail = str(a.status)
    elif a.code == "upstream-5xx":
        detail = f"{a.status} ({a.backend})"
    elif a.code == "failover":
        detail = " → ".join(a.path)
    return f"{a.code}: {detail}" if detail else a.code


def _request_tail(req: Request) -> dict[str, Any]:
    """A request's keys after its steps."""
    return {
        "timings": {k: _round(v) for k, v in req.timings.items()},
        "anomalies": [anomaly_text(a) for a in req.anomalies],
    }


def request_json(req: Request) -> dict[str, Any]:
    return {**_request_head(req), "steps": [_step(s) for s in req.steps], **_request_tail(req)}


def _request_line(req: Request, tails: dict[tuple[Any, ...], str]) -> str:
    """`json.dumps(request_json(req), ensure_ascii=False)`, byte for byte, but each step's
    labels are encoded once per distinct combination (a few dozen per capture) instead of
    once per frame: the steps are most of a report's JSON."""
    head = json.dumps(_request_head(req), ensure_ascii=False)
    tail = json.dumps(_request_tail(req), ensure_ascii=False)
    steps = []
    for s in req.steps:
        key = (s.src_role, s.dst_role, s.leg, s.step, s.flags, s.arp_target)
        labels = tails.get(key)
        if labels is None:
            labels = tails[key] = json.dumps(_step(s), ensure_ascii=False).split(", ", 2)[2]
        time = round(s.time, 6)
        # json writes finite floats as repr(); anything else goes through json itself.
        time_text = repr(time) if math.isfinite(time) else json.dumps(time)
        steps.append(f'{{"frame": {s.frame}, "time": {time_text}, {labels}')
    return f'{head[:-1]}, "steps": [{", ".join(steps)}], {tail[1:]}'


def summary_json(report: Report) -> dict[str, Any]:
    s = report.summary
    balance = asdict(s.balance)
    balance["policy"] = s.balance.policy or None  # null: no policy declared
    balance["explanation"] = common.balance(s.balance)
    latency = {k: (_round(v) if isinstance(v, float) else v) for k, v in asdict(s.latency).items()}
    return {
        "requests": s.requests,
        "frames_total": s.frames_total,
        "frames_in_requests": s.frames_in_requests,
        "frames_other": s.frames_other,
        "frames_other_by_kind": s.frames_other_by_kind,
        "backend_distribution": s.backend_distribution,
        "status_counts": s.status_counts,
        "balance": balance,
        "latency": latency,
        "encrypted": s.encrypted,
        "encrypted_both_legs": s.encrypted_both_legs,
        "other_balancers": [{"address": a, "requests": n} for a, n in s.other_balancers],
        "cache_hits": s.cache_hits,
        "balancer_evidence": (None if s.balancer_evidence is None
                              else list(s.balancer_evidence)),
        **_requests_seen(report),
    }


def _requests_seen(report: Report) -> dict[str, Any]:
    """tshark's count of HTTP requests and where each went (null: the plugin did not count):
    http_requests_seen = front + upstream + direct + outside + http_request_copies + missing."""
    r = report.summary.requests_seen
    if r is None:
        return {"http_requests_seen": None, "http_request_copies": None,
                "http_requests_accounted": None}
    return {
        "http_requests_seen": r.seen,
        "http_request_copies": r.copies,
        "http_requests_accounted": {
            "front": r.front, "upstream": r.upstream, "direct": r.direct, "outside": r.outside,
            "other_balancers": r.other_balancers, "missing": r.missing,
            "orphan_responses": r.orphan_responses,
        },
    }


def direct_json(d: DirectRequest) -> dict[str, Any]:
    return {"index": d.index, "client": d.client, "backend": d.backend or None,
            "method": d.method, "uri": d.uri, "status": d.status, "frames": d.frames}


def render(report: Report, env: Environment) -> None:
    out = env.stdout
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
    tails: dict[tuple[Any, ...], str] = {}
    for req in report.requests():
        out.write(sep)
        out.write(_request_line(req, tails))
        sep = ",\n    "
    out.write("\n  ],\n  \"direct_requests\": ")
    direct = [direct_json(d) for d in report.direct_requests]
    out.write(json.dumps(direct, indent=2, ensure_ascii=False).replace("\n", "\n  "))
    out.write(",\n  \"summary\": ")
    out.write(json.dumps(summary_json(report), indent=2, ensure_ascii=False).replace("\n", "\n  "))
    out.write("\n}\n")

"""Sentences shared by the human-readable renderers (text, Markdown, HTML)."""

from __future__ import annotations

from lbreport.messages import has, step_name, t
from lbreport.model import (
    Anomaly,
    Balance,
    DirectRequest,
    Latency,
    PolicyCheck,
    Report,
    Request,
)
from lbreport.vocabulary import (
    BALANCER,
    CACHE,
    CLIENT,
    FRONT,
    NO_BALANCER,
    STEPS,
    UNKNOWN,
    WEAK_BALANCER_EVIDENCE,
)


def capture_point(report: Report) -> str:
    cp = report.capture_point
    if cp in (CLIENT, BALANCER, UNKNOWN, NO_BALANCER):
        return t(f"cp.{cp}")
    return t("cp.backend", role=cp)


def balancer_note(report: Report) -> str:
    """Said in the header when the only sign of a balancer is X-Forwarded-For: weak, since a
    client can write that header itself ("" otherwise)."""
    if report.summary.balancer_evidence == (WEAK_BALANCER_EVIDENCE,):
        return t("note.xff_only")
    return ""


def roles_source(report: Report) -> str:
    if report.roles_source == "configured":
        return t("hdr.roles_configured", source=report.lab_source)
    if report.lab_addresses_seen:
        return t("hdr.roles_inferred_partly", count=report.lab_addresses_seen)
    return t("hdr.roles_inferred")


def anomaly(a: Anomaly) -> str:
    """An anomaly in the reader's language: its details go into the catalogue's sentence, and
    the step names in it through the step catalogue (as on the ladder). A missing response
    says why when the capture shows it."""
    if a.code == "no-response" and a.reason:
        return t(f"noresp.{a.reason}")
    return t(f"anom.{a.code}", step=", ".join(step_name(s) for s in a.steps), count=a.count,
             status=a.status, backend=a.backend, path=" → ".join(a.path),
             src=a.path[0] if a.path else "", dst=a.path[-1] if a.path else "")


def evidence(ev: str) -> str:
    return t(f"evidence.{ev}") if has(f"evidence.{ev}") else ev


def ms(seconds: float | None) -> str:
    return t("timing.na") if seconds is None else f"{seconds * 1000:.3f} ms"


def _counts(d: dict[str, float] | dict[str, int]) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in d.items())


def _and(items: list[str]) -> str:
    """"a", "a and b", "a, b and c" in the reader's language."""
    if len(items) < 2:
        return "".join(items)
    return t("bal.and", head=", ".join(items[:-1]), last=items[-1])


def _policy(b: Balance, name: str) -> str:
    if name == "weights":
        return t("policy.weights", weights=_counts(b.weights))
    return t(f"policy.{name}") if has(f"policy.{name}") else name


def _why(b: Balance, c: PolicyCheck) -> str:
    """Why a check is not consistent, in words (its reason code and counterexample)."""
    if c.reason == "rotation":
        return t("bal.why.rotation", index=c.request)
    if c.reason == "client-split":
        return t("bal.why.client-split", client=c.client, backends=_and(list(c.backends)))
    if c.reason == "busier":
        chosen, other = c.backends
        return t("bal.why.busier", index=c.request, backend=chosen, busy=c.in_flight[chosen],
                 other=other, idle=c.in_flight[other])
    return t(f"bal.why.{c.reason}") if has(f"bal.why.{c.reason}") else c.reason


_NOT_JUDGED = {
    "backend-view": "bal.not_judged_backend",
    "no-known-backend": "bal.not_judged_unknown",
    "single-backend": "bal.not_judged_single",
    "one-request": "bal.not_judged_one",
    "no-balancer": "bal.not_judged_no_balancer",
}


def balance(b: Balance) -> str:
    """One verdict, never contradicting itself: the declared policy's check decides it, and
    what else the sequence fits is added; with none declared, every known policy is named
    with its result."""
    if b.verdict == "not-judged" and b.reason in _NOT_JUDGED:
        return t(_NOT_JUDGED[b.reason])
    checks = {c.policy: c for c in b.checks}
    parts: list[str] = []
    if b.policy:
        mine = checks[b.policy]
        name = _policy(b, b.policy)
        if b.policy in ("round-robin", "weights") and mine.reason in ("", "rotation", "counts"):
            key = "bal.matches" if b.verdict == "matches" else "bal.differs"
            parts.append(t(key, policy=name, expected=_counts(b.expected),
                           observed=_counts(b.observed)))
            if b.policy == "round-robin":
                parts.append(t("bal.sequence") if b.verdict == "matches" else
                             t("bal.sequence_broken", index=b.rotation_broken_at))
        elif b.verdict == "matches":
            parts.append(t("bal.matches_least_conn", count=mine.decisions)
                         if b.policy == "least-conn" else t("bal.matches_ip_hash"))
        elif b.verdict == "differs":
            parts.append(t("bal.differs_why", policy=name, why=_why(b, mine)))
        else:
            parts.append(t("bal.not_judged_policy", policy=name, why=_why(b, mine)))
        others = [_policy(b, p) for p in b.consistent_with if p != b.policy]
        if b.verdict != "matches" and others:
            parts.append(t("bal.also", policies=_and(others)))
    else:
        verdicts = [t("bal.with", policies=_and([_policy(b, p) for p in b.consistent_with]))
                    if b.consistent_with else t("bal.with_none")]
        for c in b.checks:
            if c.result == "inconsistent":
                verdicts.append(t("bal.not_with", policy=_policy(b, c.policy), why=_why(b, c)))
        for c in b.checks:
            if c.result == "undecided":
                verdicts.append(t("bal.cannot", policy=_policy(b, c.policy), why=_why(b, c)))
        parts.append(t("bal.none", observed=_counts(b.observed), verdicts="; ".join(verdicts)))
        if "round-robin" not in b.consistent_with:  # maybe weighted: only the lab file can say
            parts.append(t("bal.weights_hint"))
    if any(c.policy == "least-conn" and c.result != "undecided" for c in b.checks) and (
            b.policy in ("", "least-conn")):
        parts.append(t("bal.least_conn_basis"))
    if b.unknown:
        parts.append(t("bal.unknown_some", count=b.unknown))
    return " ".join(parts)


def latency(lat: Latency) -> tuple[str, str]:
    """(title, value) for the summary."""
    if not lat.basis:
        return t("sum.latency", basis="-"), t("sum.latency_none")
    title = t("sum.latency", basis=t(f"sum.latency_basis.{lat.basis}"))
    value = f"p50 {ms(lat.p50)} · p90 {ms(lat.p90)} · p99 {ms(lat.p99)} · max {ms(lat.max)}"
    return title, value


def backend_counts(report: Report) -> str:
    """Requests per backend, or why there are none to count (no balancer)."""
    if report.capture_point == NO_BALANCER:
        return t("sum.backends_no_balancer")
    return ", ".join(f"{b}: {n}" for b, n in report.summary.backend_distribution.items())


def cache_hits(report: Report) -> str:
    """The sentence on cache hits ("" without any)."""
    n = report.summary.cache_hits
    return t("sum.cache_hits_line", count=n) if n else ""


def requests_seen(report: Report) -> str:
    """Every HTTP request tshark read, accounted for like frames ("" if not counted)."""
    r = report.summary.requests_seen
    if r is None:
        return ""
    other = t("sum.http_requests_other", count=r.other_balancers) if r.other_balancers else ""
    text = t("sum.http_requests_line", seen=r.seen, front=r.front, upstream=r.upstream,
             direct=r.direct, outside=r.outside, other=other, copies=r.copies)
    if r.missing > 0:
        text += t("sum.http_requests_missing", count=r.missing)
        if r.orphan_responses:
            text += t("sum.http_requests_orphans", count=r.orphan_responses)
    return text


def status_counts(counts: dict[str, int]) -> str:
    names = {"none": t("sum.no_status"), "encrypted": t("sum.status_encrypted")}
    return ", ".join(f"{names.get(k, k)}: {v}" for k, v in counts.items())


def frames(report: Report) -> str:
    """`total = in requests + other (ssh 99, dns 2, …)`: the kinds explain "other"."""
    s = report.summary
    if set(s.frames_other_by_kind) <= {"other"}:  # no kinds (an older plugin): nothing to add
        return t("sum.frames_detail", total=s.frames_total, inreq=s.frames_in_requests,
                 other=s.frames_other)
    kinds = ", ".join(f"{t('sum.kind.other') if k == 'other' else k} {n}"
                      for k, n in s.frames_other_by_kind.items())
    return t("sum.frames_by_kind", total=s.frames_total, inreq=s.frames_in_requests,
             other=s.frames_other, kinds=kinds)


DIRECT_COLUMNS = ("html.col.index", "req.client", "req.backend", "req.request", "req.status",
                  "html.col.frames")


def direct_row(d: DirectRequest) -> tuple[str, ...]:
    """A direct request's cells, in DIRECT_COLUMNS' order (packet text: escape when shown)."""
    return (str(d.index), d.client, d.backend or t("req.backend_unknown"),
            f"{d.method} {d.uri}".strip(), str(d.status) if d.status else t("req.no_status"),
            str(d.frames))


# -- HTTPS -------------------------------------------------------------------------------


def encrypted_note(report: Report) -> str:
    """Said once, in the header, when some requests were seen only as TLS records: why method,
    URI and status are missing (or where they came from instead) and how to read them."""
    s = report.summary
    if not s.encrypted:
        return ""
    if s.encrypted_both_legs:
        return t("note.encrypted_both", count=s.encrypted_both_legs)
    if report.capture_point == BALANCER:
        return t("note.encrypted_m3", count=s.encrypted)
    return t("note.encrypted", count=s.encrypted)


def request_text(req: Request) -> str:
    """"GET /uri", or "(encrypted)" where TLS hid them (packet text: escape when shown)."""
    text = f"{req.method} {req.uri}".strip()
    return text or (t("req.encrypted") if req.encrypted else "")


def status_text(req: Request) -> str:
    if not req.status:
        if req.encrypted and any(s.step == STEPS[FRONT].response for s in req.steps):
            return t("req.status_encrypted")
        return t("req.no_status")
    if req.encrypted and req.status_source == "back-leg":
        return t("req.status_back_leg", status=req.status)
    if req.interim:
        return t("req.status_interim", status=req.status,
                 interim=", ".join(map(str, req.interim)))
    return str(req.status)


def backend_text(req: Request, sep: str = " ") -> str:
    """The backend and its evidence, or who answered instead (M3's cache, a redirect by M3
    itself, the web server where there is no balancer)."""
    if req.answered_by_balancer:
        if req.evidence == CACHE:
            return t("req.by_cache")
        return t("req.by_balancer", status=req.status)
    if req.no_balancer and not req.backend:
        return t("req.backend_no_balancer")
    return f"{req.backend or t('req.backend_unknown')}{sep}({evidence(req.evidence)})"


def backend_name(req: Request) -> str:
    """The backend in a word, for a table cell or a title (no evidence)."""
    if req.backend:
        return req.backend
    if req.evidence == CACHE:
        return t("req.cache")
    return t("req.backend_na") if req.no_balancer else t("req.backend_unknown")

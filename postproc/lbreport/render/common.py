"""Sentences shared by the human-readable renderers (text, Markdown; later HTML)."""

from __future__ import annotations

from lbreport.lifecycle import Anomaly, Balance, Latency, Report
from lbreport.messages import has, t


def capture_point(report: Report) -> str:
    cp = report.capture_point
    if cp in ("client", "M3", "unknown"):
        return t(f"cp.{cp}")
    return t("cp.backend", role=cp)


def roles_source(report: Report) -> str:
    if report.roles_source == "configured":
        return t("hdr.roles_configured", source=report.lab_source)
    return t("hdr.roles_inferred")


def anomaly(a: Anomaly) -> str:
    return t(f"anom.{a.code}", detail=a.detail)


def evidence(ev: str) -> str:
    return t(f"evidence.{ev}") if has(f"evidence.{ev}") else ev


def ms(seconds: float | None) -> str:
    return t("timing.na") if seconds is None else f"{seconds * 1000:.3f} ms"


def _counts(d: dict[str, float] | dict[str, int]) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in d.items())


def balance(b: Balance) -> str:
    policy = t("policy.weights", weights=_counts(b.weights)) if b.policy == "weights" else t(
        "policy.round-robin"
    )
    if b.verdict == "not-judged":
        key = {
            "backend-view": "bal.not_judged_backend",
            "no-known-backend": "bal.not_judged_unknown",
            "single-backend": "bal.not_judged_single",
        }[b.reason]
        return t(key)
    key = "bal.matches" if b.verdict == "matches" else "bal.differs"
    parts = [t(key, policy=policy, expected=_counts(b.expected), observed=_counts(b.observed))]
    if b.policy == "round-robin":
        if b.rotation_broken_at is None:
            parts.append(t("bal.sequence"))
        else:
            parts.append(t("bal.sequence_broken", index=b.rotation_broken_at))
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


def status_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{t('sum.no_status') if k == 'none' else k}: {v}" for k, v in counts.items())


def frames(report: Report) -> str:
    s = report.summary
    return t("sum.frames_detail", total=s.frames_total, inreq=s.frames_in_requests,
             other=s.frames_other)

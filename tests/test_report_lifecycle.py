"""The pure middle: packet records → requests, timings, anomalies, verdicts; the lab file.
No tshark here: records are built the way the plugin labels frames (docs/fields.md)."""

from __future__ import annotations

import dataclasses

import pytest
from lbreport.config import classic_lab, parse_lab, preferences
from lbreport.environment import Environment
from lbreport.errors import LbreportError
from lbreport.lifecycle import LifecycleBuilder
from lbreport.model import Anomaly, Report
from lbreport.pdml import Record

CLIENT = "192.168.56.1:40000"


def _frames(req: int, steps: list[tuple[str, str, str, str]], start_frame: int = 1,
            t0: float = 100.0, backend: str = "M1", evidence: str = "back-leg",
            status: int = 200, flags: dict[int, str] | None = None) -> list[Record]:
    records = []
    for i, (src, dst, leg, step) in enumerate(steps):
        extra: dict = {}
        if step in ("request", "up-request"):
            extra = {"method": "GET", "uri": "/ejemplo.html"}
        if step in ("response", "up-response"):
            extra = {"status": status}
        records.append(Record(
            frame=start_frame + i, time=t0 + i * 0.001, req=req, src_role=src, dst_role=dst,
            leg=leg, step=step, client=CLIENT, backend=backend, evidence=evidence,
            flags=(flags or {}).get(i, ""), **extra))  # fmt: skip
    return records


FRONT = [("client", "M3", "front", s) for s in ("SYN",)] + [
    ("M3", "client", "front", "SYN/ACK"), ("client", "M3", "front", "ACK"),
    ("client", "M3", "front", "request")]
BACK = [("M3", "M1", "back", "up-SYN"), ("M1", "M3", "back", "up-SYN/ACK"),
        ("M3", "M1", "back", "up-ACK"), ("M3", "M1", "back", "up-request"),
        ("M1", "M3", "back", "up-response")]
END = [("M3", "client", "front", "response"), ("client", "M3", "front", "ACK-resp"),
       ("client", "M3", "front", "FIN-client"), ("M3", "client", "front", "FIN-M3"),
       ("client", "M3", "front", "last-ACK")]


def _report(records: list[Record], **finish) -> Report:
    b = LifecycleBuilder()
    for r in records:
        b.add(r)
    return b.finish(**finish)


def test_canonical_m3_view() -> None:
    rep = _report(_frames(1, FRONT + BACK + END) + [Record(frame=15, time=101.0)])
    (req,) = list(rep.requests())
    assert rep.capture_point == "M3"
    assert req.anomalies == ()
    assert req.status == 200 and req.backend == "M1" and req.method == "GET"
    assert req.timings["handshake_rtt"] == pytest.approx(0.001)
    assert req.timings["request_to_upstream"] == pytest.approx(0.004)
    assert req.timings["backend_time"] == pytest.approx(0.001)
    assert req.timings["time_to_first_byte"] == pytest.approx(0.006)
    s = rep.summary
    assert (s.frames_total, s.frames_in_requests, s.frames_other) == (15, 14, 1)


def test_capture_points() -> None:
    assert _report(_frames(1, FRONT + END)).capture_point == "client"
    assert _report(_frames(1, BACK)).capture_point == "M1"
    assert _report([Record(frame=1, time=1.0)]).capture_point == "unknown"


def test_anomalies() -> None:
    no_response = _report(_frames(1, FRONT, evidence="none", backend=""))
    assert next(no_response.requests()).anomalies == (Anomaly("no-response"),)

    refused = [("M3", "M1", "back", "up-SYN"), ("M1", "M3", "back", "up-RST")]
    failover = FRONT + refused + [(s, d, leg, st) for s, d, leg, st in
                                  ((x.replace("M1", "M2"), y.replace("M1", "M2"), z, w)
                                   for x, y, z, w in BACK)] + END
    req = next(_report(_frames(1, failover, backend="M2")).requests())
    assert Anomaly("failover", path=("M1", "M2")) in req.anomalies
    assert Anomaly("rst", path=("M1", "M3")) in req.anomalies
    assert not any(a.code == "missing-step" for a in req.anomalies)  # refused ≠ missing SYN/ACK

    retrans = _report(_frames(1, FRONT + [FRONT[-1]] + BACK + END, flags={4: "retrans"}))
    assert next(retrans.requests()).anomalies == (Anomaly("retransmission", count=1),)

    twice = _report(_frames(1, FRONT + [FRONT[-1]] + BACK + END))
    assert Anomaly("repeated-step", steps=("request",), count=2) in next(
        twice.requests()).anomalies

    no_fin = _report(_frames(1, FRONT + BACK + END[:3]))
    assert Anomaly("missing-step", steps=("FIN-M3",)) in next(no_fin.requests()).anomalies

    bad = _report(_frames(1, FRONT + END, status=502, backend="", evidence="none"))
    assert Anomaly("http-5xx", status=502) in next(bad.requests()).anomalies


# Each code's structured form → the lbreport/1 string (JSON, CSV) and the two sentences.
_PHRASED = [
    (Anomaly("no-response"), "no-response", "no response", "sin respuesta"),
    (Anomaly("missing-step", steps=("request",)), "missing-step: request",
     "missing step: request", "falta el paso: petición"),
    (Anomaly("repeated-step", steps=("up-FIN-backend",), count=2),
     "repeated-step: up-FIN-backend ×2", "repeated step: up-FIN-backend ×2",
     "paso repetido: up-FIN-servidor ×2"),
    (Anomaly("rst", path=("M1", "M3")), "rst: M1→M3", "connection reset (RST): M1→M3",
     "conexión abortada (RST): M1→M3"),
    (Anomaly("retransmission", count=2), "retransmission: 2 frame(s)",
     "retransmission: 2 frame(s)", "retransmisión: 2 trama(s)"),
    (Anomaly("http-5xx", status=502), "http-5xx: 502", "server error: HTTP 502",
     "error del servidor: HTTP 502"),
    (Anomaly("upstream-5xx", status=503, backend="M1"), "upstream-5xx: 503 (M1)",
     "a backend answered HTTP 503 (M1)", "un servidor final respondió HTTP 503 (M1)"),
    (Anomaly("failover", path=("M1", "M2")), "failover: M1 → M2",
     "failover between backends: M1 → M2",
     "el balanceador cambió de servidor final (failover): M1 → M2"),
    (Anomaly("no-upstream"), "no-upstream", "no upstream request from M3 in the capture",
     "no aparece en la captura la petición de M3 a ningún servidor final"),
]


@pytest.mark.parametrize(("anomaly", "contract", "en", "es"), _PHRASED,
                         ids=[a.code for a, *_ in _PHRASED])
def test_anomaly_words_come_from_the_renderers(anomaly: Anomaly, contract: str, en: str,
                                               es: str) -> None:
    from lbreport.messages import set_language
    from lbreport.render.common import anomaly as sentence
    from lbreport.render.json import anomaly_text

    assert anomaly_text(anomaly) == contract
    try:
        set_language("es")
        assert sentence(anomaly) == es
    finally:
        set_language("en")
    assert sentence(anomaly) == en


def _many(backends: list[str]) -> list[Record]:
    records: list[Record] = []
    for i, b in enumerate(backends, start=1):
        steps = [(s.replace("M1", b), d.replace("M1", b), leg, st) for s, d, leg, st in
                 FRONT + BACK + END]
        records += _frames(i, steps, start_frame=len(records) + 1, t0=100.0 + i, backend=b)
    return records


def test_the_model_answers_complete_error_backends_lanes() -> None:
    ok = next(_report(_frames(1, FRONT + BACK + END)).requests())
    assert (ok.is_complete, ok.is_error) == (True, False)
    unanswered = next(_report(_frames(1, FRONT, evidence="none", backend="")).requests())
    assert (unanswered.is_complete, unanswered.is_error) == (False, True)
    # A 502 went through every step: complete, and an error.
    bad = next(_report(_frames(1, FRONT + BACK + END, status=502)).requests())
    assert (bad.is_complete, bad.is_error) == (True, True)
    no_fin = next(_report(_frames(1, FRONT + BACK + END[:3])).requests())
    assert (no_fin.is_complete, no_fin.is_error) == (False, False)

    rep = _report(_frames(1, FRONT + BACK + END), capture="x.pcapng", truncated=True)
    assert (rep.capture, rep.truncated, rep.last_frame) == ("x.pcapng", True, 14)
    records = _frames(1, FRONT + BACK + END)
    records[0] = dataclasses.replace(records[0], role_defs=(
        f"client={CLIENT}", "M3=10.0.0.3", "M2=10.0.0.2", "broadcast="))
    rep = _report(records)
    assert rep.backends == ("M1", "M2")  # M2 named but idle: still a backend
    # A lab file's backends are the farm's; one that served a request is one too.
    assert _report(records, configured_backends=["M4"]).backends == ("M1", "M4")
    req = next(rep.requests())
    assert req.lanes == ["client", "M3", "M1"]
    assert rep.lanes(req) == ["client", "M3", "M1", "M2", "broadcast"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        rep.capture = "patched"  # type: ignore[misc]


def test_round_robin_verdicts() -> None:
    ok = _report(_many(["M1", "M2"] * 5)).summary.balance
    assert ok.verdict == "matches" and ok.rotation_broken_at is None
    skewed = _report(_many(["M1", "M1", "M1", "M2"])).summary.balance
    assert skewed.verdict == "differs" and skewed.rotation_broken_at == 2
    weights = _report(_many(["M1", "M1", "M2"] * 3), policy="weights",
                      weights={"M1": 2, "M2": 1}).summary.balance
    assert weights.verdict == "matches"
    assert weights.expected == {"M1": 6.0, "M2": 3.0}
    backend_view = _report(_frames(1, BACK)).summary.balance
    assert backend_view.verdict == "not-judged" and backend_view.reason == "backend-view"


def test_latency_percentiles_are_observed_values() -> None:
    # Spread latencies, fed out of order: nearest rank (ceil(n·p/100)-th smallest) by hand:
    # sorted 1 2 3 5 8 13 21 34 55 89 ms → p50 5th = 8, p90 9th = 55, p99 10th = 89. A mean
    # (23.1), an interpolated median (10.5) or p90 (58.4), or unsorted input all fail.
    ttfb_ms = [34, 1, 89, 8, 3, 55, 2, 21, 13, 5]
    records: list[Record] = []
    for i, ms in enumerate(ttfb_ms, start=1):
        frames = _frames(i, FRONT + END, start_frame=len(records) + 1, t0=100.0 + i)
        at = next(k for k, r in enumerate(frames) if r.step == "response")
        records += frames[:at] + [dataclasses.replace(r, time=r.time + ms / 1000)
                                  for r in frames[at:]]
    lat = _report(records).summary.latency
    assert lat.basis == "time_to_first_byte" and lat.count == 10
    # Each ttfb is the step gap (1 ms) plus the added delay.
    assert lat.p50 == pytest.approx(0.009)
    assert lat.p90 == pytest.approx(0.056)
    assert lat.p99 == pytest.approx(0.090)
    assert lat.max == pytest.approx(0.090)


def test_classic_lab_preferences() -> None:
    prefs = preferences(classic_lab())
    assert "lblab.balancer:192.168.56.103" in prefs
    assert "lblab.backends:M1=192.168.56.101,M2=192.168.56.102" in prefs
    assert "lblab.markers:M1=Soy la máquina 1;M2=Soy la máquina 2" in prefs
    assert "lblab.ports:80" in prefs


def test_lab_validation_names_the_key() -> None:
    with pytest.raises(LbreportError, match=r"backends\.M3"):
        parse_lab({"farm": {"balancer": ["10.0.0.3"]}, "backends": {"M3": ["10.0.0.1"]}},
                  source="x", path="lab.toml")
    with pytest.raises(LbreportError, match=r"policy\.weights\.M9"):
        parse_lab({"farm": {"balancer": ["10.0.0.3"]}, "backends": {"M1": ["10.0.0.1"]},
                   "policy": {"kind": "weights", "weights": {"M9": 1}}},
                  source="x", path="lab.toml")
    lab = parse_lab({"farm": {"balancer": ["fd00:56::103"]}, "backends": {"M1": ["fd00:56::101"]}},
                    source="x", path="lab.toml")
    assert preferences(lab)[:2] == ["lblab.balancer:fd00:56::103", "lblab.backends:M1=fd00:56::101"]


def test_spilled_requests_read_back_identically(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the memory budget requests go to a spill file, in chunks when they are seen again
    later: every output must be the same as with everything held in memory."""
    import dataclasses
    import io

    from lbreport import store
    from lbreport.render import renderer

    # Interleaved requests (three in flight), some frames with an unknown backend, and a late
    # frame of request 1 after everything else.
    records = _many(["M1", "M2", "M1", "M2", "M2", "M1"] * 4)
    order = sorted(records, key=lambda r: (r.frame % 15, r.req // 3, r.frame))
    records = [dataclasses.replace(r, frame=i, time=100.0 + i / 1000)
               for i, r in enumerate(order, start=1)]
    records[5] = dataclasses.replace(records[5], backend="", evidence="")
    late = dataclasses.replace(records[0], frame=len(records) + 1, time=200.0, step="ACK-resp")
    records.append(late)

    def outputs() -> list[str]:
        rep = _report(records)
        texts = []
        for fmt in ("json", "csv", "markdown"):
            out = io.StringIO()
            renderer(fmt)(rep, Environment.for_output(out))
            texts.append(out.getvalue())
        return texts

    held = outputs()
    monkeypatch.setattr(store, "MAX_HELD_REQUESTS", 2)
    monkeypatch.setattr(store, "MAX_HELD_STEPS", 15)
    b = LifecycleBuilder()
    for r in records:
        b.add(r)
    spill = b._store.spill
    assert spill is not None and spill.more  # spilled, some requests in several chunks
    assert outputs() == held


@pytest.mark.parametrize("budget", [(100, 3), (2, 100), (2, 2)], ids=["steps", "requests", "both"])
def test_no_frame_lost_when_the_budget_spills_the_request_being_added(
        monkeypatch: pytest.MonkeyPatch, budget: tuple[int, int]) -> None:
    """The budget is checked before a frame is stored: the request it belongs to may be the
    one spilled (its earlier frames are the oldest), or a new one with no frame yet."""
    import io

    from lbreport import store
    from lbreport.render import renderer

    # Request 1's frames come first and last, around requests 2-4 (each a new request).
    parts = [_frames(i, FRONT + BACK + END, t0=100.0 + i, backend=f"M{i % 2 + 1}")
             for i in (1, 2, 3, 4)]
    records = parts[0][:4] + parts[1] + parts[2] + parts[3] + parts[0][4:]
    records = [dataclasses.replace(r, frame=n) for n, r in enumerate(records, start=1)]

    def json_report() -> str:
        out = io.StringIO()
        renderer("json")(_report(records), Environment.for_output(out))
        return out.getvalue()

    held = json_report()
    monkeypatch.setattr(store, "MAX_HELD_REQUESTS", budget[0])
    monkeypatch.setattr(store, "MAX_HELD_STEPS", budget[1])
    assert json_report() == held

"""HTTP as it is (captures/http/, issue 19, and every other capture): each response belongs to
the request tshark pairs it with (a response tshark could not read shifts no later one),
1xx answers are interim steps and never the response, what follows a 101 is that request's,
a cache hit is answered by the balancer (no backend), and no time is negative."""

from __future__ import annotations

from pathlib import Path

import pytest
from anywhere_common import frame_fields, table, truth

ROOT = Path(__file__).resolve().parent.parent
HTTP = sorted((ROOT / "captures" / "http").glob("*.pcapng"))
PUBLIC = ROOT.parent / "shared" / "public-captures"
EVERY = sorted(p for p in (ROOT / "captures").rglob("*.pcapng") if "lab" not in p.parts)
if PUBLIC.is_dir():
    EVERY += sorted(p for p in PUBLIC.iterdir() if p.suffix in (".pcap", ".pcapng"))


@pytest.mark.parametrize("capture", EVERY, ids=lambda p: p.name)
def test_each_response_is_in_its_requests_request(capture: Path) -> None:
    rows = frame_fields(capture, "frame.number", "lblab.req", "http.request_in",
                        "http.response.code")
    req_of = {r[0]: r[1] for r in rows}
    pairs = [(r[0], r[2]) for r in rows if r[2] and r[3] and not r[3].startswith("1")]
    for response, request in pairs:
        if req_of[request]:  # a request that is in the report
            assert req_of[response] == req_of[request], (capture.name, response, request)


def _unanswered(capture: Path) -> int:
    """Requests tshark pairs with no response (its segment was lost, or the capture ends)."""
    rows = frame_fields(capture, "http.request.method", "http.response_in")
    return sum(1 for r in rows if r[0] and not r[1])


@pytest.mark.parametrize("capture", HTTP, ids=lambda p: p.stem)
def test_requests_statuses_and_backends_are_the_truths(capture: Path) -> None:
    t = truth(capture)
    rows, meta = table(capture)
    key = lambda r: (r["client"], r["method"], r["uri"])  # noqa: E731 - arrival order may differ
    got, want_all = sorted(rows, key=key), sorted(t["requests"], key=key)
    assert [key(r) for r in got] == [key(r) for r in want_all]
    # A response tshark could not read leaves its request unanswered, never another's status.
    unanswered = [r for r in got if r["status"] == ""]
    assert len(unanswered) == _unanswered(capture)
    assert all("no-response" in r["anomalies"] for r in unanswered)
    for row, want in zip(got, want_all, strict=True):
        assert row["status"] in (str(want["status"]), ""), (row, want)
        assert float(row["ttfb_ms"] or 0) >= 0 and float(row["total_ms"] or 0) >= 0, row
        if want.get("cache") == "hit":
            assert (row["backend"], row["evidence"]) == ("", "cache"), row
        elif row["evidence"] in ("back-leg", "marker"):
            assert row["backend"] == want["backend"], (row, want)
        if t["capture_point"] == "M3" and want.get("cache") != "hit":
            assert row["evidence"] == "back-leg", row
    assert int(meta["frames"][0]) == t["frames"]


def test_interim_answers_are_steps_of_their_own() -> None:
    for capture in (p for p in HTTP if p.stem.startswith("upload-100-continue")):
        t = truth(capture)
        rows = frame_fields(capture, "lblab.req", "lblab.step", "lblab.interim")
        interim = [r for r in rows if r[1] == "interim"]
        assert len(interim) == sum(len(r.get("interim", [])) for r in t["requests"]) > 0
        assert all(r[2] == "100" and r[0] for r in interim), interim
        table_rows, _ = table(capture)
        assert [r["status"] for r in table_rows] == [str(r["status"]) for r in t["requests"]]
        assert not any("repeated-step" in r["anomalies"] for r in table_rows)


def test_an_upgraded_connection_stays_with_its_request() -> None:
    for capture in (p for p in HTTP if p.stem.startswith("websocket")):
        rows = frame_fields(capture, "frame.number", "lblab.req", "http.response.code",
                            "websocket.opcode", "tcp.stream")
        upgraded = {r[4]: r[1] for r in rows if r[2] == "101"}
        assert upgraded, capture.name
        ws = [r for r in rows if r[3]]
        assert ws and all(r[1] == upgraded[r[4]] for r in ws), capture.name

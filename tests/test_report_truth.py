"""`lbreport report --format json` agrees with every reference capture's ground truth
(real tshark, the real plugin, CliRunner end to end)."""

from __future__ import annotations

import functools
import json
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from craft import TRUTH_FILES, invoke

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")


@functools.cache
def report_json(capture: Path) -> dict[str, Any]:
    """The JSON report; an HTTPS capture with its key log (`<name>.keys`): the truth is what
    the decrypted traffic says (tests/test_https.py checks the reports without it)."""
    keys = capture.with_suffix(".keys")
    extra = ("--keylog", str(keys)) if keys.is_file() else ()
    result = invoke("report", str(capture), "--format", "json", *extra)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _pairs(truth_path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    truth = json.loads(truth_path.read_text())
    return truth, report_json(truth_path.with_name(truth["capture"]))


def _backend_view(truth: dict[str, Any]) -> bool:
    return truth["capture_point"] not in ("client", "M3")


def _visible(truth: dict[str, Any]) -> list[dict[str, Any]]:
    """A backend's capture only sees the requests that backend served."""
    if _backend_view(truth):
        return [r for r in truth["requests"] if r["backend"] == truth["capture_point"]]
    return truth["requests"]


def _by_client(requests: list[dict[str, Any]], backend_view: bool) -> dict[str, list[tuple]]:
    """Requests per client connection, in order. Requests arriving within the same
    millisecond (ab -c) are logged by the balancer in no reliable order, so the truth is
    compared per client ip:port (the port is unknown in a backend's view)."""
    grouped: dict[str, list[tuple]] = defaultdict(list)
    for r in requests:
        client = r["client"].rsplit(":", 1)[0] if backend_view else r["client"]
        grouped[client].append((r["method"], r["uri"], r["status"], r["backend"]))
    return dict(grouped)


ids = [p.name.removesuffix(".truth.json") for p in TRUTH_FILES]


@pytest.mark.parametrize("truth_path", TRUTH_FILES, ids=ids)
def test_requests_match_truth(truth_path: Path) -> None:
    truth, rep = _pairs(truth_path)
    visible = _visible(truth)
    assert rep["schema"] == "lbreport/1"
    assert len(rep["requests"]) == len(visible)
    assert [r["index"] for r in rep["requests"]] == list(range(1, len(visible) + 1))
    backend_view = _backend_view(truth)
    got = _by_client(rep["requests"], backend_view)
    want = _by_client(visible, backend_view)
    if truth["capture_point"] == "client":
        # From the client's seat a response without a body (304, HEAD) names no backend and
        # M3 asked no ARP for it: "unknown" is then the honest answer, and the only other one
        # allowed is the truth.
        for client, reqs in got.items():
            for i, (method, uri, status, backend) in enumerate(reqs):
                expected = want.get(client, [])[i:i + 1]
                if (backend is None and expected and (status == 304 or method == "HEAD")):
                    reqs[i] = (method, uri, status, expected[0][3])
    if any(r.get("http_version") == "2" for r in visible):
        # HTTP/2 streams of one connection are in flight together and logged in no reliable
        # order: compare them as sets (their URIs differ).
        got = {c: sorted(v, key=repr) for c, v in got.items()}
        want = {c: sorted(v, key=repr) for c, v in want.items()}
    assert got == want


@pytest.mark.parametrize("truth_path", TRUTH_FILES, ids=ids)
def test_capture_point_roles_and_evidence(truth_path: Path) -> None:
    truth, rep = _pairs(truth_path)
    assert rep["capture_point"] == truth["capture_point"]
    for role, addrs in rep["roles"].items():
        addrs = addrs if isinstance(addrs, list) else [addrs]
        assert set(addrs) <= set(truth["roles"].get(role, [])), role
    evidence = {r["backend_evidence"] for r in rep["requests"] if r["backend"]}
    if truth["capture_point"] != "client":
        # The back leg is in the capture: every known backend is certain.
        assert evidence <= {"back-leg"}
    for r in rep["requests"]:
        assert (r["backend"] is None) == (r["backend_evidence"] == "none")


@pytest.mark.parametrize("truth_path", TRUTH_FILES, ids=ids)
def test_every_frame_counted(truth_path: Path) -> None:
    truth, rep = _pairs(truth_path)
    s = rep["summary"]
    assert s["frames_in_requests"] + s["frames_other"] == s["frames_total"] == truth["frames"]
    in_steps = sum(len(r["steps"]) for r in rep["requests"])
    assert in_steps == s["frames_in_requests"]
    frames = [st["frame"] for r in rep["requests"] for st in r["steps"]]
    assert len(frames) == len(set(frames)), "a frame belongs to at most one request"


@pytest.mark.parametrize("truth_path", TRUTH_FILES, ids=ids)
def test_summary_consistent(truth_path: Path) -> None:
    truth, rep = _pairs(truth_path)
    s = rep["summary"]
    assert s["requests"] == len(rep["requests"])
    assert sum(s["status_counts"].values()) == s["requests"]
    assert sum(s["backend_distribution"].values()) == s["requests"]
    assert s["balance"]["verdict"] in ("matches", "differs", "not-judged")
    lat = s["latency"]
    if lat["count"]:
        assert lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]


def test_roles_source() -> None:
    """The classic addresses use the embedded lab; other addresses are inferred."""
    by_name = {p.name.removesuffix(".truth.json"): p for p in TRUTH_FILES}
    if "classic-m3" in by_name:
        assert _pairs(by_name["classic-m3"])[1]["roles_source"] == "configured"
    if "three-backends" in by_name:
        truth, rep = _pairs(by_name["three-backends"])
        assert rep["roles_source"] == "inferred"
        assert set(rep["summary"]["backend_distribution"]) == set(truth["roles"]) - {"client",
                                                                                     "M3"}


def _failing(truth: dict[str, Any]) -> bool:
    return any(len(set(r.get("upstreams", []))) > 1 or (r["status"] or 0) >= 500
               for r in truth["requests"])


# Generated from the truths' content: only captures with a failover or a 5xx, so each case
# has something to find (and the list itself must not be empty).
FAILING = [p for p in TRUTH_FILES if _failing(json.loads(p.read_text()))]


def test_some_capture_has_failures() -> None:
    assert FAILING


@pytest.mark.parametrize("truth_path", FAILING, ids=[p.name.split(".")[0] for p in FAILING])
def test_failover_and_5xx_are_anomalies(truth_path: Path) -> None:
    truth, rep = _pairs(truth_path)
    assert truth["capture_point"] in ("client", "M3")  # the requests pair one to one
    for t_req, r in zip(truth["requests"], rep["requests"], strict=True):
        codes = [a.split(":", 1)[0] for a in r["anomalies"]]
        tried = list(dict.fromkeys(t_req.get("upstreams", [])))
        # The failover names the backends in the order M3 tried them (what the truth logs).
        assert ("failover" in codes) == (len(tried) > 1 and truth["capture_point"] == "M3"), r
        if len(tried) > 1 and truth["capture_point"] == "M3":
            assert f"failover: {' → '.join(tried)}" in r["anomalies"], (tried, r["anomalies"])
        assert ("http-5xx" in codes) == ((t_req["status"] or 0) >= 500), r
        if (t_req["status"] or 0) >= 500:
            assert f"http-5xx: {t_req['status']}" in r["anomalies"]

"""Frames in no request explained by kind, and direct requests (client → backend, not through
M3) listed apart (issue 10): the compact `lblab.pkt` parts, the lifecycle, every renderer,
and end to end on captures/noise-*.pcapng against their truth.

The end-to-end tests need the plugin to publish `lblab.kind` and `lblab.direct`."""

from __future__ import annotations

import functools
import io
import json
import shutil
from typing import Any

import pytest
from craft import CAPTURES, invoke
from lbreport.environment import Environment
from lbreport.lifecycle import LifecycleBuilder
from lbreport.model import Report
from lbreport.pdml import PdmlReader, Record
from lbreport.render import html, markdown, text
from lbreport.render import json as json_render

# -- lblab.pkt: parts 10 (kind) and 11 (direct index), at the end -------------------------------


def _pdml(*pkts: str) -> bytes:
    packets = "".join(
        f'<packet><proto name="geninfo"><field name="num" show="{i}"/>'
        f'<field name="timestamp" value="{1000 + i}.5"/></proto>'
        f'<proto name="lblab"><field name="lblab.pkt" show="{p}"/></proto></packet>'
        for i, p in enumerate(pkts, start=1)
    )
    return f'<?xml version="1.0"?><pdml creator="test">{packets}</pdml>'.encode()


def test_compact_parts_kind_and_direct() -> None:
    old, kind, direct = PdmlReader(io.BytesIO(_pdml(
        "3;request;client;M3;front;M1;marker;;",  # a 9-part string (older plugin)
        "0;;client;M3;;;;;;ssh",
        "0;request;client;M1;direct;;;;;direct;2",
    )))  # fmt: skip
    assert (old.req, old.step, old.backend, old.kind, old.direct) == (3, "request", "M1", "", 0)
    assert (kind.req, kind.kind, kind.direct) == (0, "ssh", 0)
    assert (direct.leg, direct.dst_role, direct.kind, direct.direct) == ("direct", "M1",
                                                                         "direct", 2)


# -- lifecycle and renderers ---------------------------------------------------------------------


def _balanced(req: int, frame: int, t0: float, backend: str) -> list[Record]:
    steps = [("client", "M3", "SYN", {}), ("M3", "client", "SYN/ACK", {}),
             ("client", "M3", "request", {"method": "GET", "uri": "/ejemplo.html"}),
             ("M3", "client", "response", {"status": 200}),
             ("client", "M3", "FIN-client", {}), ("M3", "client", "FIN-M3", {}),
             ("client", "M3", "last-ACK", {})]
    return [Record(frame=frame + i, time=t0 + i * 0.001, req=req, src_role=s, dst_role=d,
                   leg="front", step=st, client=f"192.168.56.1:{40000 + req}", backend=backend,
                   evidence="marker", **extra)
            for i, (s, d, st, extra) in enumerate(steps)]


def _direct(index: int, frame: int, t0: float) -> list[Record]:
    client = f"192.168.56.1:{39000 + index}"
    steps = [("client", "M1", {}), ("M1", "client", {}),
             ("client", "M1", {"method": "GET", "uri": "/ejemplo.html"}),
             ("M1", "client", {"status": 200}), ("client", "M1", {})]
    return [Record(frame=frame + i, time=t0 + i * 0.001, src_role=s, dst_role=d, leg="direct",
                   kind="direct", direct=index, client=client, **extra)
            for i, (s, d, extra) in enumerate(steps)]


def _noisy_report() -> Report:
    records = _balanced(1, 1, 100.0, "M1") + _balanced(2, 8, 101.0, "M2")
    frame = 15
    for kind, count in (("ssh", 6), ("dns", 2), ("arp", 2), ("", 1), ("icmp", 2)):
        for _ in range(count):
            records.append(Record(frame=frame, time=102.0, src_role="client", dst_role="M3",
                                  kind=kind))
            frame += 1
    records += _direct(1, frame, 103.0)
    builder = LifecycleBuilder()
    for r in records:
        builder.add(r)
    return builder.finish(capture="noisy.pcapng")


def test_other_frames_by_kind_and_direct_requests() -> None:
    rep = _noisy_report()
    s = rep.summary
    assert (s.requests, s.frames_total, s.frames_in_requests, s.frames_other) == (2, 32, 14, 18)
    # Count descending, then name; a frame with no kind is "other"; the sum explains "other".
    assert list(s.frames_other_by_kind.items()) == [
        ("ssh", 6), ("direct", 5), ("arp", 2), ("dns", 2), ("icmp", 2), ("other", 1)]
    assert sum(s.frames_other_by_kind.values()) == s.frames_other
    (d,) = rep.direct_requests
    assert (d.index, d.client, d.backend, d.method, d.uri, d.status, d.frames) == (
        1, "192.168.56.1:39001", "M1", "GET", "/ejemplo.html", 200, 5)
    # Never a balanced request, never in the verdict.
    assert [r.index for r in rep.requests()] == [1, 2]
    assert s.balance.observed == {"M1": 1, "M2": 1} and s.balance.unknown == 0


def test_a_direct_frame_with_a_request_index_stays_out_of_requests() -> None:
    builder = LifecycleBuilder()
    for r in _balanced(1, 1, 100.0, "M1"):
        builder.add(r)
    builder.add(Record(frame=9, time=101.0, req=1, leg="direct", direct=1, src_role="client",
                       dst_role="M2", method="GET", uri="/x"))
    rep = builder.finish()
    assert rep.summary.frames_in_requests == 7
    assert rep.summary.frames_other_by_kind == {"direct": 1}
    assert rep.direct_requests[0].backend == "M2"


def _render(module: Any, report: Report) -> str:
    out = io.StringIO()
    module.render(report, Environment.for_output(out))
    return out.getvalue()


def test_every_format_explains_other_and_lists_direct_requests() -> None:
    rep = _noisy_report()
    doc = json.loads(_render(json_render, rep))
    assert doc["summary"]["frames_other_by_kind"] == {
        "ssh": 6, "direct": 5, "arp": 2, "dns": 2, "icmp": 2, "other": 1}
    assert doc["direct_requests"] == [{
        "index": 1, "client": "192.168.56.1:39001", "backend": "M1", "method": "GET",
        "uri": "/ejemplo.html", "status": 200, "frames": 5}]
    assert [r["index"] for r in doc["requests"]] == [1, 2]
    out = _render(text, rep)
    words = " ".join(out.split())  # rich wraps the summary's cells
    assert "32 total = 14 in requests + 18 other (ssh 6, direct 5, arp 2, dns 2, icmp 2, other 1)" \
        in words
    assert "Direct requests (not through the balancer)" in out
    assert "192.168.56.1:39001" in out and "GET /ejemplo.html" in out
    md = _render(markdown, rep)
    assert "## Direct requests (not through the balancer)" in md
    assert "| 1 | 192.168.56.1:39001 | M1 | GET /ejemplo.html | 200 | 5 |" in md
    assert "(ssh 6, direct 5" in md
    page = _render(html, rep)
    assert 'id="direct-requests"' in page and "(ssh 6, direct 5" in page


def test_no_other_frames_keeps_the_old_sentence() -> None:
    builder = LifecycleBuilder()
    for r in _balanced(1, 1, 100.0, "M1"):
        builder.add(r)
    rep = builder.finish()
    assert rep.summary.frames_other_by_kind == {} and rep.direct_requests == ()
    doc = json.loads(_render(json_render, rep))
    assert doc["direct_requests"] == [] and doc["summary"]["frames_other_by_kind"] == {}
    assert "7 total = 7 in requests + 0 other\n" in _render(text, rep)


# -- end to end: captures/noise-*.pcapng (needs the plugin's lblab.kind / lblab.direct) ---------

needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")


@functools.cache
def _report(name: str) -> dict[str, Any]:
    result = invoke("report", str(CAPTURES / f"{name}.pcapng"), "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _truth(name: str) -> dict[str, Any]:
    return json.loads((CAPTURES / f"{name}.truth.json").read_text())


@needs_tshark
@pytest.mark.parametrize("name", ["noise-client", "noise-m3"])
def test_noise_other_traffic_by_kind(name: str) -> None:
    truth, rep = _truth(name), _report(name)
    s = rep["summary"]
    by_kind = s["frames_other_by_kind"]
    assert sum(by_kind.values()) == s["frames_other"]
    assert s["frames_total"] == truth["frames"]
    assert s["requests"] == len(truth["requests"])
    # ARP that a request waited on is in that request; any other ARP is "arp".
    arp_in_requests = sum(1 for r in rep["requests"] for st in r["steps"]
                          if st["step"].startswith("ARP"))
    want = {k: n for k, n in truth["other_traffic"].items() if n}
    got = dict(by_kind)
    got["arp"] = got.get("arp", 0) + arp_in_requests
    assert {k: n for k, n in got.items() if n} == want
    assert list(by_kind) == sorted(by_kind, key=lambda k: (-by_kind[k], k))


@needs_tshark
def test_noise_client_direct_request() -> None:
    truth, rep = _truth("noise-client"), _report("noise-client")
    keys = ("client", "backend", "method", "uri", "status")
    assert [{k: d[k] for k in keys} for d in rep["direct_requests"]] == [
        {k: d[k] for k in keys} for d in truth["direct_requests"]]
    assert rep["direct_requests"][0]["frames"] == truth["other_traffic"]["direct"]
    # Not a balanced request, not in the verdict.
    direct_clients = {d["client"] for d in truth["direct_requests"]}
    assert not direct_clients & {r["client"] for r in rep["requests"]}
    assert sum(rep["summary"]["balance"]["observed"].values()) == len(truth["requests"])


@needs_tshark
def test_noise_m3_sees_no_direct_request() -> None:
    """The direct fetch never reaches M3 (truth: direct 0 frames)."""
    rep = _report("noise-m3")
    assert rep["direct_requests"] == []
    assert "direct" not in rep["summary"]["frames_other_by_kind"]


@needs_tshark
def test_noise_client_text_explains_other() -> None:
    result = invoke("report", str(CAPTURES / "noise-client.pcapng"))
    assert result.exit_code == 0, result.output
    words = " ".join(result.stdout.split())  # rich wraps the summary's cells
    assert "149 total = " in words and "other (ssh 99, " in words
    assert "Direct requests (not through the balancer)" in result.stdout


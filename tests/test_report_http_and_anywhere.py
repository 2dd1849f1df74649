"""lbreport's report of what the plugin says on the issue-18/19 captures (captures/http/,
captures/anywhere/, ../shared/public-captures/): interim answers, cache hits, a capture with
no balancer, other balancers, direct fetches only, requests conserved like frames, why a
request got no response, and `lbreport roles` on them; in English and Spanish where words
matter. Truth: the *.truth.json beside each capture (from the servers' own logs)."""

from __future__ import annotations

import functools
import io
import json
import subprocess
from pathlib import Path

import pytest
from craft import invoke
from lbreport.environment import Environment
from lbreport.lifecycle import LifecycleBuilder
from lbreport.pdml import PdmlReader, Record
from lbreport.render import text as render_text

ROOT = Path(__file__).resolve().parent.parent
HTTP = ROOT / "captures" / "http"
ANYWHERE = ROOT / "captures" / "anywhere"
PUBLIC = ROOT.parent / "shared" / "public-captures"
PUBLIC_CAPTURES = sorted(p for p in PUBLIC.iterdir() if p.suffix in (".pcap", ".pcapng")) \
    if PUBLIC.is_dir() else []
# The one public capture with no request tshark could read (HTTP/2 headers it cannot decode).
UNDECODABLE_H2 = "arkime-http2-nghttp2.pcap"
needs_public = pytest.mark.skipif(not PUBLIC.is_dir(), reason=f"{PUBLIC} is absent (the public "
                                  "captures may not be copied into the project)")
EVERY = [*sorted((ROOT / "captures").glob("*.pcapng")), *sorted(HTTP.glob("*.pcapng")),
         *sorted(ANYWHERE.glob("*.pcapng")), *PUBLIC_CAPTURES]


def _truth(capture: Path) -> dict:
    return json.loads(capture.with_suffix(".truth.json").read_text(encoding="utf-8"))


def _keylog(capture: Path) -> list[str]:
    keys = capture.with_suffix(".keys")
    return ["--keylog", str(keys)] if keys.exists() else []


@functools.cache
def _json(capture: Path) -> dict:
    result = invoke("report", str(capture), "-f", "json", *_keylog(capture))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _human(capture: Path, fmt: str, lang: str, *extra: str) -> str:
    result = invoke("report", str(capture), "-f", fmt, "--lang", lang, *extra)
    assert result.exit_code == 0, result.output
    return result.stdout


def _key(r: dict) -> tuple[str, str, str]:
    return (r["client"], r["method"], r["uri"])


# -- requests conserved like frames; no negative time (every capture) --------------------------


def _tshark_requests(capture: Path) -> int:
    """tshark's own count: every HTTP/1 request method and HTTP/2 :method it dissects."""
    out = subprocess.run(["tshark", "-n", "-r", str(capture), *(
        ["-o", f"tls.keylog_file:{capture.with_suffix('.keys')}"] if _keylog(capture) else []),
        "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=|",
        "-e", "http.request.method", "-e", "http2.headers.method"],
        capture_output=True, text=True, check=True).stdout
    return sum(len(col.split("|")) for line in out.splitlines() for col in line.split("\t")
               if col)


@pytest.mark.parametrize("capture", [c for c in EVERY if c.name != UNDECODABLE_H2],
                         ids=lambda p: p.name)
def test_requests_are_conserved_and_no_time_is_negative(capture: Path) -> None:
    rep = _json(capture)
    s = rep["summary"]
    a = s["http_requests_accounted"]
    assert s["http_requests_seen"] == _tshark_requests(capture)
    assert s["http_requests_seen"] == (a["front"] + a["upstream"] + a["direct"] + a["outside"]
                                       + s["http_request_copies"] + a["missing"])
    assert a["missing"] == 0
    assert a["direct"] == len(rep["direct_requests"])
    assert a["other_balancers"] == sum(o["requests"] for o in s["other_balancers"])
    for r in rep["requests"]:
        assert all(v is None or v >= 0 for v in r["timings"].values()), r["index"]
    assert all(v is None or v >= 0 for v in (s["latency"]["p50"], s["latency"]["max"]))


def test_requests_conserved_in_words() -> None:
    capture = HTTP / "lossy-browser-m3.pcapng"
    line = "28 = 14 from clients + 14 from M3 to backends + 0 direct + 0 in no request (+ 0 " \
           "retransmitted copies)"
    assert "HTTP requests tshark read" in _human(capture, "text", "en")
    assert line in _human(capture, "markdown", "en")
    assert line in _human(capture, "html", "en")
    es = _human(capture, "markdown", "es")
    assert "| Peticiones HTTP que leyó tshark | 28 = 14 de clientes + 14 de M3 a los servidores " \
           "finales + 0 directas + 0 fuera de toda petición (+ 0 copias retransmitidas) |" in es


def test_two_proxies_names_the_other_balancer_everywhere() -> None:
    capture = ANYWHERE / "two-proxies.pcapng"
    rep = _json(capture)
    want = [{"address": o["address"], "requests": o["requests"]}
            for o in _truth(capture)["other_balancers"]]
    assert rep["summary"]["other_balancers"] == want == [
        {"address": "192.168.56.113", "requests": 3}]
    a = rep["summary"]["http_requests_accounted"]
    assert (a["outside"], a["other_balancers"]) == (6, 3)  # 3 into it, 3 it forwarded
    result = invoke("report", str(capture))
    assert "192.168.56.113 (3 request(s))" in result.stderr
    text = " ".join(result.stdout.split())
    assert "another balancer, 192.168.56.113, received 3 HTTP request(s)" in text
    assert "6 in no request (3 into other balancers)" in text


def test_every_other_balancer_of_frame_1_is_kept() -> None:
    """lblab.other_balancer repeats on frame 1, one per balancer left out: all are read."""
    pdml = ('<?xml version="1.0"?><pdml><packet><proto name="geninfo"><field name="num" show="1"/>'
            '<field name="timestamp" value="1000.5"/></proto><proto name="lblab">'
            '<field name="lblab.other_balancer" show="10.0.0.3=4"/>'
            '<field name="lblab.other_balancer" show="10.0.0.9=0"/></proto></packet></pdml>')
    (record,) = PdmlReader(io.BytesIO(pdml.encode()))
    assert record.other_balancers == ("10.0.0.3=4", "10.0.0.9=0")
    builder = LifecycleBuilder()
    builder.add(record)
    assert builder.finish().summary.other_balancers == (("10.0.0.3", 4), ("10.0.0.9", 0))


@needs_public
def test_http2_with_no_decodable_request_says_so() -> None:
    result = invoke("report", str(PUBLIC / UNDECODABLE_H2))
    assert result.exit_code == 1
    assert "tshark read 1 HTTP response(s)" in result.stderr
    assert "request headers could not be decoded" in result.stderr
    assert "none of its" not in result.stderr
    es = invoke("report", str(PUBLIC / UNDECODABLE_H2), "--lang", "es")
    assert "no pudo descodificar sus cabeceras" in es.stderr


# -- interim answers ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["upload-100-continue-client", "upload-100-continue-m3"])
def test_interim_answers_are_not_the_response(name: str) -> None:
    capture = HTTP / f"{name}.pcapng"
    truth = sorted(_truth(capture)["requests"], key=_key)
    got = sorted(_json(capture)["requests"], key=_key)
    assert [r["interim"] for r in got] == [r.get("interim", []) for r in truth]
    assert [r["status"] for r in got] == [r["status"] for r in truth]
    for r in got:
        assert not any(a.startswith("repeated-step") for a in r["anomalies"]), r
        assert r["timings"]["time_to_first_byte"] > 0
        if r["interim"]:
            assert 0 <= r["timings"]["time_to_interim"] < r["timings"]["time_to_first_byte"]
            assert any(s["step"] == "interim" for s in r["steps"])
        else:
            assert r["timings"]["time_to_interim"] is None


@needs_public
def test_zeek_100_continue() -> None:
    (r,) = _json(PUBLIC / "zeek-http_100-continue.pcap")["requests"]
    assert (r["status"], r["interim"]) == (200, [100])
    assert 0 < r["timings"]["time_to_interim"] < r["timings"]["time_to_first_byte"]
    assert not any(a.startswith("repeated-step") for a in r["anomalies"])


def test_interim_in_words() -> None:
    capture = HTTP / "upload-100-continue-client.pcapng"
    en = _human(capture, "text", "en")
    assert "200 (after the interim answer(s) 100)" in en
    assert "time to the interim answer (request → interim)" in en
    assert "interim" in en.split("Request 1 ", 1)[1].split("Request 2 ", 1)[0]
    es = _human(capture, "text", "es")
    assert "200 (tras la(s) respuesta(s) provisional(es) 100)" in es
    assert "provisional" in es.split("Petición 1 ", 1)[1].split("Petición 2 ", 1)[0]


# -- cache hits ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["varnish-m3", "varnish-client"])
def test_cache_hits_are_answered_by_the_balancer(name: str) -> None:
    capture = HTTP / f"{name}.pcapng"
    truth = sorted(_truth(capture)["requests"], key=_key)
    rep = _json(capture)
    got = sorted(rep["requests"], key=_key)
    assert [_key(r) for r in got] == [_key(r) for r in truth]
    for r, want in zip(got, truth, strict=True):
        hit = want["cache"] == "hit"
        assert r["answered_by_balancer"] is hit, (r["index"], want["cache"])
        if hit:
            assert (r["backend"], r["backend_evidence"]) == (None, "cache")
            assert "no-upstream" not in r["anomalies"]
        else:
            assert r["backend"] == want["backend"]
    s = rep["summary"]
    hits = sum(1 for w in truth if w["cache"] == "hit")
    assert s["cache_hits"] == hits == 15
    # The verdict counts only requests that reached a backend: none is "unknown".
    assert sum(s["backend_distribution"].values()) == s["requests"] - hits
    assert s["balance"]["unknown"] == 0 and "unknown" not in s["backend_distribution"]


def test_cache_hits_in_words() -> None:
    capture = HTTP / "varnish-m3.pcapng"
    for fmt in ("text", "markdown", "html"):
        en = _human(capture, fmt, "en")
        assert "15 request(s) answered by the balancer from its cache" in en.replace("\n", " ")
        es = _human(capture, fmt, "es")
        assert "respondidas por el balanceador desde su caché" in es.replace("\n", " ")
    assert "none: answered from the balancer's cache" in _human(capture, "text", "en")
    assert "ninguno: respondió la caché del balanceador" in _human(capture, "text", "es")


# -- no balancer -------------------------------------------------------------------------------


@needs_public
@pytest.mark.parametrize("capture", [c for c in PUBLIC_CAPTURES if c.name != UNDECODABLE_H2],
                         ids=lambda p: p.name)
def test_public_captures_show_no_balancer(capture: Path) -> None:
    rep = _json(capture)
    assert rep["capture_point"] == "no-balancer"
    assert rep["summary"]["balancer_evidence"] == []
    assert set(rep["roles"]) <= {"client", "server"}
    assert rep["summary"]["balance"]["reason"] == "no-balancer"
    for r in rep["requests"]:
        assert r["backend"] is None and r["backend_evidence"] == "none"
        assert not any("FIN-M3" in a for a in r["anomalies"]), r["anomalies"]


@needs_public
def test_espn_61_requests_to_13_servers() -> None:
    rep = _json(PUBLIC / "cs-http_espn.pcapng")
    assert len(rep["requests"]) == 61 and len(rep["roles"]["server"]) == 13
    assert rep["summary"]["backend_distribution"] == {}


def test_gateway_client_is_no_balancer() -> None:
    capture = ANYWHERE / "gateway-client.pcapng"
    truth = _truth(capture)
    rep = _json(capture)
    assert truth["balancer"] is None and rep["capture_point"] == "no-balancer"
    assert sorted(_key(r) for r in rep["requests"]) == sorted(_key(r) for r in truth["requests"])


@pytest.mark.parametrize("lang, words", [
    ("en", ("no balancer: nothing in this capture shows a load balancer",
            "n/a (no balancer: the web server answered itself)",
            "not judged: this capture shows no balancer")),
    ("es", ("sin balanceador: nada en esta captura muestra un balanceador de carga",
            "no aplica (sin balanceador: respondió el propio servidor web)",
            "sin evaluar: esta captura no muestra ningún balanceador")),
])
def test_no_balancer_in_words(lang: str, words: tuple[str, ...]) -> None:
    capture = ANYWHERE / "gateway-client.pcapng"
    for fmt in ("text", "markdown", "html"):
        out = " ".join(_human(capture, fmt, lang).split())
        for w in words:
            assert w in out, (fmt, w)


def _frame1(**facts: object) -> Record:
    return Record(frame=1, time=1000.0, **facts)  # type: ignore[arg-type]


def _request_frames(req: int, frame: int, **extra: object) -> list[Record]:
    steps = [("client", "server", "request", {"method": "GET", "uri": "/", "conn": 0}),
             ("server", "client", "response", {"status": 200, "conn": 0}),
             ("client", "server", "FIN-client", {}), ("server", "client", "FIN-server", {}),
             ("client", "server", "last-ACK", {})]
    return [Record(frame=frame + i, time=1000.0 + frame + i, req=req, src_role=s, dst_role=d,
                   leg="front", step=st, client="10.0.0.1:40000", **{**e, **extra})
            for i, (s, d, st, e) in enumerate(steps)]


def test_a_web_server_closes_with_fin_server() -> None:
    builder = LifecycleBuilder()
    builder.add(_frame1(balancer_evidence="", http_requests_seen=1, http_request_copies=0))
    for r in _request_frames(1, 2):
        builder.add(r)
    rep = builder.finish()
    (req,) = rep.requests()
    assert rep.capture_point == "no-balancer" and req.anomalies == () and req.no_balancer
    # Without the closing FIN-server, the missing step is named as the server's.
    builder = LifecycleBuilder()
    builder.add(_frame1(balancer_evidence=""))
    for r in _request_frames(1, 2)[:3]:
        builder.add(r)
    (req,) = builder.finish().requests()
    assert [(a.code, a.steps) for a in req.anomalies] == [("missing-step", ("FIN-server",))]


@pytest.mark.parametrize("lang, weak", [
    ("en", "the only sign of a balancer is the X-Forwarded-For header, which is weak evidence"),
    ("es", "la única señal de un balanceador es la cabecera X-Forwarded-For, un indicio débil"),
])
def test_x_forwarded_for_alone_is_said_to_be_weak(lang: str, weak: str) -> None:
    from lbreport.messages import set_language

    builder = LifecycleBuilder()
    builder.add(_frame1(balancer_evidence="x-forwarded-for"))
    set_language(lang)
    out = io.StringIO()
    render_text.render(builder.finish(), Environment.for_output(out))
    assert weak in " ".join(out.getvalue().split())
    builder = LifecycleBuilder()
    builder.add(_frame1(balancer_evidence="back-leg,x-forwarded-for"))
    out = io.StringIO()
    render_text.render(builder.finish(), Environment.for_output(out))
    assert "X-Forwarded-For" not in out.getvalue()


# -- why a request got no response ---------------------------------------------------------------


def test_lost_segments_explain_the_missing_responses() -> None:
    capture = HTTP / "lossy-browser-client.pcapng"
    rep = _json(capture)
    unanswered = [r for r in rep["requests"] if "no-response" in r["anomalies"]]
    assert len(unanswered) == 4
    assert {r["no_response_reason"] for r in unanswered} == {"lost-segment"}
    assert all(r["no_response_reason"] is None for r in rep["requests"] if r["status"])
    en = _human(capture, "text", "en")
    assert en.count("no response: the response's first segment was not captured (lost)") == 4
    es = _human(capture, "text", "es")
    assert es.count("sin respuesta: no se capturó el primer segmento de la respuesta") == 4


def test_a_capture_cut_short_says_so(tmp_path: Path) -> None:
    """classic-client up to its first response's frame, that frame cut in the middle."""
    cut = tmp_path / "cut.pcap"
    subprocess.run(["tshark", "-r", str(ROOT / "captures" / "classic-client.pcapng"), "-c", "7",
                    "-F", "pcap", "-w", str(cut)], check=True, capture_output=True)
    cut.write_bytes(cut.read_bytes()[:-40])
    result = invoke("report", str(cut), "-f", "json")
    assert result.exit_code == 3, result.output  # reported up to the cut, and marked
    rep = json.loads(result.stdout)
    assert rep["truncated"]
    (r,) = rep["requests"]
    assert "no-response" in r["anomalies"] and r["no_response_reason"] == "cut-short"
    text = invoke("report", str(cut)).stdout
    assert "no response: the capture was cut short before it" in text


# -- direct fetches only; roles ------------------------------------------------------------------


@pytest.fixture(scope="module")
def direct_only(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """noise-client's direct fetch of M1 alone (its TCP stream 3): no request through M3."""
    path = tmp_path_factory.mktemp("direct") / "direct-only.pcapng"
    subprocess.run(["tshark", "-r", str(ROOT / "captures" / "noise-client.pcapng"),
                    "-Y", "tcp.stream == 3", "-w", str(path)], check=True, capture_output=True)
    return path


def test_direct_fetches_only_are_a_report(direct_only: Path) -> None:
    lab = ROOT / "postproc" / "lbreport" / "data" / "classic.toml"
    result = invoke("report", str(direct_only), "--lab", str(lab), "-f", "json")
    assert result.exit_code == 0, result.output
    rep = json.loads(result.stdout)
    assert rep["requests"] == []
    assert [(d["client"], d["backend"], d["uri"], d["status"]) for d in rep["direct_requests"]] \
        == [("192.168.56.1:39928", "M1", "/ejemplo.html", 200)]
    text = invoke("report", str(direct_only), "--lab", str(lab)).stdout
    assert "Direct requests (not through the balancer)" in text


def test_no_lab_file_does_not_say_no_address_matched(direct_only: Path) -> None:
    result = invoke("report", str(direct_only))
    assert result.exit_code == 0, result.output
    assert "no lab addresses matched" not in result.stdout
    assert "2 of the lab's addresses are in the capture" in result.stdout


@pytest.mark.parametrize("name, balancer, backends", [
    ("loopback-farm", "127.0.0.1:80", {"M1": "127.0.0.1:81", "M2": "127.0.0.1:82"}),
    ("loopback-farm-v6", "[::1]:80", {"M1": "[::1]:81", "M2": "[::1]:82"}),
])
def test_roles_of_a_one_host_farm_make_a_lab_file_that_works(
        name: str, balancer: str, backends: dict[str, str], tmp_path: Path) -> None:
    capture = ANYWHERE / f"{name}.pcapng"
    result = invoke("roles", str(capture))
    assert result.exit_code == 0, result.output
    assert f'balancer = ["{balancer}"]' in result.stdout
    assert "ports = [80, 81, 82]" in result.stdout  # every port HTTP requests went to
    for role, addr in backends.items():
        assert f'{role} = ["{addr}"]' in result.stdout
    lab = tmp_path / "lab.toml"
    lab.write_text(result.stdout, encoding="utf-8")
    configured = invoke("report", str(capture), "--lab", str(lab), "-f", "json")
    assert configured.exit_code == 0, configured.output
    rep = json.loads(configured.stdout)
    assert rep["roles_source"] == "configured" and rep["roles"]["M3"] == balancer
    assert [_key(r) for r in rep["requests"]] == [_key(r) for r in _json(capture)["requests"]]
    assert {r["backend"] for r in rep["requests"]} == set(backends)


@pytest.mark.parametrize("lang, words", [
    ("en", "nothing in this capture shows a load balancer"),
    ("es", "nada en esta captura muestra un balanceador de carga"),
])
def test_roles_with_no_balancer_writes_no_lab_file(lang: str, words: str) -> None:
    result = invoke("roles", str(ANYWHERE / "gateway-client.pcapng"), "--lang", lang)
    assert result.exit_code == 1
    assert words in result.stderr and "[farm]" not in result.stdout

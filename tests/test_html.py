"""`lbreport report --format html`: real tshark, the real plugin, and the page loaded in real
headless Chromium (tests/chromium.py): one inline-SVG sequence diagram per request, legs drawn
differently, no console error, nothing external, and packet text that never runs as script."""

from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path

import pytest
from chromium import load, png_size, screenshot
from craft import CAPTURES, exchange, invoke, write_pcap
from lxml import html as lxml_html

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")

TITLE_MARK = "pwned"
# Each payload would set document.title if the page let it through: as an element
# (<script>), as an attribute breakout into an event handler, and as an SVG onload.
HOSTILE_URIS = [
    b"/<script>document.title='pwned-script'</script>",
    b"/\"><img/src/onerror=document.title='pwned-img'>",
    b"/'><svg/onload=document.title='pwned-svg'>",
]


def _report(capture: Path, out: Path, *extra: str) -> Path:
    result = invoke("report", str(capture), "--format", "html", "-o", str(out), *extra)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    return out


def _json(capture: Path) -> dict:
    result = invoke("report", str(capture), "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("html")
    return {name: _report(CAPTURES / f"{name}.pcapng", d / f"{name}.html")
            for name in ("classic-client", "classic-m3", "ab-concurrency")}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("hostile-html")
    frames: list[bytes] = []
    for i, uri in enumerate(HOSTILE_URIS):
        frames += exchange(b"GET " + uri + b" HTTP/1.1", 41000 + i)
    return write_pcap(d / "hostile.pcap", frames)


def _dom(page: Path) -> lxml_html.HtmlElement:
    loaded = load(page)
    assert loaded.console == [], loaded.console  # no error, no CSP violation, nothing at all
    return lxml_html.fromstring(loaded.dom)


@pytest.mark.parametrize("name", ["classic-client", "classic-m3", "ab-concurrency"])
def test_one_diagram_per_request_in_chromium(pages: dict[str, Path], name: str) -> None:
    """Checked against the truth file (what the lab's logs say happened), not against
    lbreport's own JSON: a bug shared by the model and both renderers still fails here."""
    truth = json.loads((CAPTURES / f"{name}.truth.json").read_text(encoding="utf-8"))
    dom = _dom(pages[name])
    requests = truth["requests"]
    diagrams = dom.xpath("//details[@class='req']//svg[contains(@class,'seq')]")
    assert len(diagrams) == len(requests)
    seen: set[int] = set()
    for svg in diagrams:
        # One arrow per packet, in frame order, each a frame of the capture, none in two
        # requests.
        numbers = svg.xpath(".//g[contains(@class,'arrow')]/text[@class='frame']")
        frames = [int(f.text) for f in numbers]
        assert frames and frames == sorted(frames) and 1 <= frames[0] <= frames[-1] <= \
            truth["frames"]
        assert not seen & set(frames)
        seen |= set(frames)
        lanes = [tx.text for tx in svg.xpath(".//text[@class='lanename']")]
        assert lanes[:2] == ["client", "M3"]
        assert set(truth["roles"]) <= set(lanes)
    # The table has the truth's requests (request line, status, backend where the capture
    # point can tell: M3 sees the back leg), and the two charts are there.
    rows = dom.xpath("//table[@id='requests']/tbody/tr")
    cells = sorted((r.xpath("string(td[3])"), r.xpath("string(td[4])")) for r in rows)
    assert cells == sorted((f"{q['method']} {q['uri']}", str(q["status"])) for q in requests)
    if truth["capture_point"] == "M3":
        backends = sorted(r.xpath("string(td[5])") for r in rows)
        assert backends == sorted(q["backend"] for q in requests)
    assert dom.xpath("//svg[@id='chart-backends']") and dom.xpath("//svg[@id='chart-latency']")
    bars = dom.xpath("//svg[@id='chart-latency']/rect")
    assert len(bars) == sum(1 for q in requests if q["status"] is not None)


def test_large_capture_is_collapsed_but_complete(pages: dict[str, Path]) -> None:
    dom = _dom(pages["ab-concurrency"])
    details = dom.xpath("//details[@class='req']")
    assert len(details) == 200
    assert [d.get("id") for d in details] == [f"req-{i}" for i in range(1, 201)]
    assert sum(1 for d in details if d.get("open") is not None) == 3
    # The backend chart says 100 / 100, as the summary does.
    counts = dom.xpath("//svg[@id='chart-backends']/g/text[last()]/text()")
    assert counts == ["100", "100"]


def test_back_leg_and_arp_are_drawn_differently(pages: dict[str, Path]) -> None:
    dom = _dom(pages["classic-m3"])
    style: dict[str, set[tuple[str | None, str | None]]] = {}
    for g in dom.xpath("//svg[contains(@class,'seq')]//g[contains(@class,'arrow')]"):
        leg = re.search(r"leg-(\w+)", g.get("class")).group(1)
        line = g.xpath("./line")[0]
        style.setdefault(leg, set()).add((line.get("stroke"), line.get("stroke-dasharray")))
    assert set(style) == {"front", "back", "arp"}
    for leg in style:  # one look per leg, and no two legs look alike
        assert len(style[leg]) == 1, style
    looks = [next(iter(v)) for v in style.values()]
    assert len(set(looks)) == 3
    assert style["front"] == {("#222222", None)}
    assert all(dash for _, dash in looks if _ != "#222222")
    # …and the legend explains all three.
    legend = dom.xpath("//svg[contains(@class,'legend')]//line")
    assert {(ln.get("stroke"), ln.get("stroke-dasharray")) for ln in legend} == set(looks)


def test_self_contained(pages: dict[str, Path]) -> None:
    text = pages["classic-client"].read_text(encoding="utf-8")
    assert "<script" not in text.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", text, re.I)
    assert "@import" not in text and "url(" not in text
    # Only SVG's namespace names a URL, and it is never fetched.
    assert set(re.findall(r"https?://[^\s\"'<>]+", text)) <= {"http://www.w3.org/2000/svg"}
    assert "Content-Security-Policy" in text and "default-src 'none'" in text


def test_hostile_uris_are_text_not_markup(hostile: Path, tmp_path: Path) -> None:
    uris = [r["uri"] for r in _json(hostile)["requests"]]
    assert uris == [u.decode() for u in HOSTILE_URIS]  # the capture really carries them
    page = _report(hostile, tmp_path / "hostile.html")
    loaded = load(page)
    dom = lxml_html.fromstring(loaded.dom)
    assert TITLE_MARK not in dom.findtext(".//title")
    assert loaded.console == [], loaded.console  # CSP had nothing to refuse: nothing got in
    assert not dom.xpath("//img") and not dom.xpath("//script")
    assert not dom.xpath("//svg[@onload]") and not dom.xpath("//*[@onerror]")
    cells = dom.xpath("//table[@id='requests']//td[@class='uri']")
    assert [c.text_content() for c in cells] == [f"GET {u}" for u in uris]
    assert [c.get("title") for c in cells] == [f"GET {u}" for u in uris]


def test_escaping_alone_stops_the_payload(hostile: Path, tmp_path: Path) -> None:
    """The CSP is a second line of defence; take it away and the escaping must still hold.
    The control: the same page with one payload put back raw does run it, so this harness
    would see a failure."""
    text = _report(hostile, tmp_path / "hostile.html").read_text(encoding="utf-8")
    no_csp = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", text)
    assert no_csp != text
    bare = tmp_path / "no-csp.html"
    bare.write_text(no_csp, encoding="utf-8")
    dom = lxml_html.fromstring(load(bare).dom)
    assert TITLE_MARK not in dom.findtext(".//title")

    payload = HOSTILE_URIS[1].decode()
    escaped = html.escape(payload, quote=True)
    assert escaped in no_csp
    control = tmp_path / "control.html"
    control.write_text(no_csp.replace(escaped, payload, 1), encoding="utf-8")
    assert load(control).dom.count("<title>pwned-img</title>") == 1


def test_screenshot_renders(pages: dict[str, Path], tmp_path: Path) -> None:
    png = screenshot(pages["classic-m3"], tmp_path / "m3.png", 1280, 1400)
    assert png_size(png) == (1280, 1400)
    assert png.stat().st_size > 60_000  # text, bars and arrows; a blank page is ~5 KB


def test_spanish_html(tmp_path: Path) -> None:
    page = _report(CAPTURES / "classic-m3.pcapng", tmp_path / "es.html", "--lang", "es")
    dom = _dom(page)
    assert dom.get("lang") == "es"
    labels = dom.xpath("//details[@id='req-1']//g[contains(@class,'arrow')]/text[@class='lbl']")
    words = [lb.text for lb in labels]
    assert words[:5] == ["SYN", "SYN/ACK", "ACK", "petición", "ACK-petición"]
    assert "up-petición" in words and "up-FIN-servidor" in words and "ARP-quién-tiene M1" in words
    assert dom.xpath("//h2[@id='summary']")[0].text == "Resumen"
    assert "Petición 1" in dom.xpath("//details[@id='req-1']/summary")[0].text_content()

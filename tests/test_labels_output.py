"""The report's run reads the labels the plugin writes once the capture is read (`tshark -q
-z lblab,labels`, one dissection) instead of tshark's two-pass PDML. Both must give exactly
the same packet records: on every capture of the project (lab, HTTP as it is, captures from
anywhere), on the public captures, on hostile bytes crafted into a capture, and on a slice of
the fuzz corpus (damaged times, cut files, odd link types). Real tshark, the real plugin.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from craft import HOSTILE_REQUEST_LINES, exchange, plugin_failing_on, write_pcap
from fuzz.gen import DEFAULT_SEED, Builder, plan
from lbreport import pipeline, tshark
from lbreport.labels import HEADER, LabelsReader
from lbreport.pdml import PdmlReader, Record

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")

ROOT = Path(__file__).resolve().parent.parent
PUBLIC = ROOT.parent / "shared" / "public-captures"
CAPTURES = sorted((ROOT / "captures").rglob("*.pcapng"))
if PUBLIC.is_dir():
    CAPTURES += sorted(p for p in PUBLIC.iterdir() if p.suffix in (".pcap", ".pcapng"))


def _keylog(capture: Path) -> Path | None:
    keys = capture.with_suffix(".keys")
    return keys if keys.exists() else None


def _run(argv: list[str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(argv, capture_output=True, check=False, timeout=300)


def both(capture: Path, keylog: Path | None = None
         ) -> tuple[tuple[list[Record], LabelsReader, int], tuple[list[Record], PdmlReader, int]]:
    """(records, reader, tshark's exit status) of the labels run and of the PDML run that
    lbreport would start for this capture."""
    labels_plan = pipeline._plan(capture, None, keylog)
    pdml_plan = pipeline._plan(capture, None, keylog, pdml=True)
    assert labels_plan.labels and not pdml_plan.labels, "the plugin offers -z lblab,labels"
    assert "-2" not in labels_plan.argv and "-2" in pdml_plan.argv
    out = _run(labels_plan.argv)
    assert "Lua" not in out.stderr.decode("utf-8", "replace"), out.stderr
    labels = LabelsReader(io.BytesIO(out.stdout))
    labelled = list(labels)
    ref = _run(pdml_plan.argv)
    pdml = PdmlReader(io.BytesIO(ref.stdout))
    return (labelled, labels, out.returncode), (list(pdml), pdml, ref.returncode)


def assert_same(capture: Path, keylog: Path | None = None) -> list[Record]:
    (labelled, labels, code), (reference, pdml, ref_code) = both(capture, keylog)
    assert labels.started and labels.complete and not labels.write_error
    assert code == ref_code
    assert (labels.lua_errors, pdml.lua_errors) == (0, 0), labels.first_lua_error
    assert len(labelled) == len(reference)
    for mine, theirs in zip(labelled, reference, strict=True):
        assert mine == theirs, f"frame {theirs.frame}"
    return labelled


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_same_records_as_the_pdml(capture: Path) -> None:
    records = assert_same(capture, _keylog(capture))
    assert records, "tshark read frames"


def test_hostile_bytes_give_the_same_records(tmp_path: Path) -> None:
    """URIs a client writes: terminal escapes, formulas, table breakers, and the characters
    the labels' lines escape (backslash, tab) or XML escapes (<, &, quotes), invalid UTF-8."""
    lines = [*HOSTILE_REQUEST_LINES, b"GET /a\\tb\\\\c\\x41\t&amp;<\"'> HTTP/1.1",
             b"GET /caf\xc3\xa9/\xe3\x28/\xff HTTP/1.1", b"GET /nul\x00after HTTP/1.1"]
    frames: list[bytes] = []
    for i, line in enumerate(lines):
        frames += exchange(line, 41000 + i)
    records = assert_same(write_pcap(tmp_path / "hostile.pcap", frames))
    uris = [r.uri for r in records if r.uri]
    assert len(uris) == len(lines)
    assert any("\\" in u for u in uris) and any("<" in u for u in uris)


# Every 4th case of the fuzz corpus that is a capture at all (damaged times, cuts, merges,
# other link types, hostile HTTP): same records, or both runs refused the file.
FUZZ = [c for c in plan(DEFAULT_SEED) if not c.recipe.startswith("noncapture")][::4]


@pytest.fixture(scope="module")
def fuzz_builder(tmp_path_factory: pytest.TempPathFactory) -> Builder:
    return Builder(tmp_path_factory.mktemp("labels-fuzz"))


@pytest.mark.parametrize("case", FUZZ, ids=[c.id for c in FUZZ])
def test_fuzz_corpus_gives_the_same_records(case, fuzz_builder: Builder) -> None:  # noqa: ANN001
    path = fuzz_builder.build(case)
    (labelled, labels, code), (reference, pdml, ref_code) = both(path)
    if not labels.started:
        # tshark refused the file before reading a frame: the PDML run read nothing either.
        assert code != 0 and not reference, (code, len(reference))
        return
    assert labels.complete and not labels.write_error
    assert code == ref_code
    assert (labels.lua_errors, pdml.lua_errors) == (0, 0), labels.first_lua_error
    # A file cut inside a packet: the PDML of the last packet may be cut too (not read).
    assert labelled[: len(reference)] == reference
    assert len(labelled) - len(reference) <= 1


def test_a_lua_error_is_read_from_the_labels(tmp_path: Path) -> None:
    """A Lua error while recording a frame: that frame's `lua_error`, with the message; the
    report refuses to go on (tests/test_cli_bad_input.py runs that through the CLI)."""
    broken = plugin_failing_on(2, "broken on purpose", tmp_path)
    argv = [shutil.which("tshark") or "tshark", "-n", "-q", "-Y", "frame",
            "-r", str(ROOT / "captures" / "classic-client.pcapng"), "-X", f"lua_script:{broken}",
            "-o", tshark.TWO_PASS_PREF, "-z", tshark.LABELS_STAT]
    out = _run(argv)
    assert out.stdout.startswith(HEADER)
    reader = LabelsReader(io.BytesIO(out.stdout))
    records = list(reader)
    assert reader.complete and len(records) == 32
    assert reader.lua_errors == 1 and reader.first_lua_error_frame == 2
    assert "broken on purpose" in reader.first_lua_error


def test_escaped_values_read_back() -> None:
    """The line format itself: separators and the escape character inside values, repeated
    fields, booleans, and lines that are not labels (another plugin's output, before the
    header or after the footer) skipped."""
    data = (b"someone else's line\n" + HEADER + b"\n"
            b"1\t1700000000.000000001\trole_def=M1=10.0.0.1\trole_def=M3=10.0.0.3\t"
            b"lab_applied=1\tpkt=1;request;client;M3;front;M1;back-leg;;;;\n"
            b"2\t1700000000.5\turi=/a\\tb\\\\x41\\nc\tencrypted=0\tmethod=GET\n"
            b"2b\tnot a frame\n\n"
            b"lblab-labels-end\t2\n"
            b"3\tanother plugin's table after ours\n")
    reader = LabelsReader(io.BytesIO(data))
    first, second = list(reader)
    assert reader.complete and reader.frames == 2
    assert first.role_defs == ("M1=10.0.0.1", "M3=10.0.0.3") and first.lab_applied
    assert (first.req, first.step, first.backend, first.evidence) == (1, "request", "M1",
                                                                      "back-leg")
    assert second.uri == "/a\tb\\x41\nc" and second.encrypted is False
    assert second.time == 1700000000.5 and second.method == "GET"


def _json(capture: Path) -> dict:
    from lbreport.environment import Environment
    from lbreport.render import json as json_out

    out = io.StringIO()
    json_out.render(pipeline.build_report(capture), Environment.for_output(out))
    return json.loads(out.getvalue())


def test_a_plugin_without_the_labels_gets_the_pdml_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """A plugin older than `-z lblab,labels` (installed in Wireshark's folder, say) registers
    no `lblab.lua_error`: the report runs the two-pass PDML, and says the same."""
    capture = ROOT / "captures" / "classic-m3.pcapng"
    labelled = _json(capture)
    monkeypatch.setattr(tshark.Runner, "writes_labels", property(lambda _self: False))
    plan = pipeline._plan(capture, None, None)
    assert not plan.labels and plan.argv.count("pdml") == 1 and "-2" in plan.argv
    assert _json(capture) == labelled
    assert labelled["summary"]["requests"] > 0


def test_a_lua_error_while_writing_the_labels_stops_the_report(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Resolving (once the capture is read, before any label is written) fails: the plugin
    ends its output with the error instead of the footer, and the report says so and stops."""
    from craft import CAPTURES as REFERENCE
    from craft import assert_clean_failure, invoke

    source = tshark.REPO_PLUGIN.read_text()
    head = "local function resolve()\n"
    assert source.count(head) == 1, "the plugin's resolve function"
    broken = tmp_path / "lblab.lua"
    broken.write_text(source.replace(head, head + "    error('resolve broken on purpose')\n"))
    monkeypatch.setattr(tshark, "REPO_PLUGIN", broken)
    result = invoke("report", str(REFERENCE / "classic-client.pcapng"))
    assert_clean_failure(result, "Lua", "resolve broken on purpose")

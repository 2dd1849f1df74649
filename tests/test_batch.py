"""`lbreport batch DIR`: every reference capture is a row that agrees with its truth file; broken
files are rows with their error, never the end of the run; only an unusable folder fails."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from pathlib import Path

import pytest
from craft import CAPTURES, SYN, assert_clean_failure, invoke, tcp_frame, write_pcap

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")

# Every capture of the folder, subfolders too (captures/http/, captures/anywhere/: read with
# their own truth checks elsewhere; here each must be a row without an error).
REFERENCE = sorted(p.relative_to(CAPTURES).as_posix() for p in CAPTURES.rglob("*.pcapng")
                   if "lab" not in p.parts)


def _csv(out: str) -> dict[str, dict[str, str]]:
    rows = list(csv.DictReader(io.StringIO(out)))
    return {r["file"]: r for r in rows}


def _visible(truth: dict) -> list[dict]:
    """A backend's capture only sees the requests that backend served."""
    if truth["capture_point"] in ("client", "M3"):
        return truth["requests"]
    return [r for r in truth["requests"] if r["backend"] == truth["capture_point"]]


def test_every_reference_capture_is_a_row() -> None:
    result = invoke("batch", str(CAPTURES), "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = _csv(result.stdout)
    assert sorted(rows) == REFERENCE  # every capture, and nothing else (README, truth, lab/)
    assert len(REFERENCE) >= 11
    for name, row in rows.items():
        assert row["error"] == "", (name, row["error"])
        if "/" in name:
            continue
        truth = json.loads((CAPTURES / name.replace(".pcapng", ".truth.json")).read_text())
        visible = _visible(truth)
        assert row["error"] == "", (name, row["error"])
        assert int(row["requests"]) == len(visible), name
        assert row["cut short"] == "no"
        expected_point = truth["capture_point"]
        assert row["capture point"] in (expected_point, "backend"), name
        if (CAPTURES / name.replace(".pcapng", ".keys")).exists():
            continue  # HTTPS without the key log: backends need the back leg or ARP
        for backend in {r["backend"] for r in visible if r["backend"]}:
            count = sum(1 for r in visible if r["backend"] == backend)
            # From the client's seat a 304 or a HEAD names no backend (no body) and M3 may
            # ask no ARP for it: those may be missing from the count, nothing else.
            unknowable = sum(1 for r in visible if r["backend"] == backend
                             and expected_point == "client"
                             and (r["status"] == 304 or r["method"] == "HEAD"))
            found = re.search(rf"\b{re.escape(backend)}: (\d+) \(", row["backends (evidence)"])
            got = int(found.group(1)) if found else 0
            assert count - unknowable <= got <= count, (name, backend, row)
        assert 0 <= int(row["complete"]) <= int(row["requests"])
    # What the captures are known for.
    assert rows["ab-concurrency.pcapng"]["complete"] == "200"
    assert rows["classic-client.pcapng"]["backends (evidence)"] == (
        "M1: 2 (marker 2); M2: 1 (marker 1)")
    assert rows["classic-m3.pcapng"]["backends (evidence)"] == (
        "M1: 2 (back-leg 2); M2: 1 (back-leg 1)")
    down = rows["backend-down.pcapng"]
    assert int(down["anomalies"]) > 0 and "failover" in down["anomaly kinds"]
    assert rows["backend-m2.pcapng"]["capture point"] == "M2"


@pytest.fixture(scope="module")
def klass(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A class's folder: good captures (one in a student's subfolder), and the broken ones
    students hand in."""
    d = tmp_path_factory.mktemp("class")
    shutil.copy(CAPTURES / "classic-client.pcapng", d / "ana.pcapng")
    (d / "luis").mkdir()
    shutil.copy(CAPTURES / "classic-m3.pcapng", d / "luis" / "m3.pcapng")
    (d / "notes.pcapng").write_text("this is my lab report, not a capture\n")
    (d / "empty.pcap").write_bytes(b"")
    whole = (CAPTURES / "classic-client.pcapng").read_bytes()
    (d / "cut.pcapng").write_bytes(whole[: len(whole) - 40])  # ends inside the last packet
    # A real capture with no HTTP at all: one SSH SYN.
    write_pcap(d / "ssh.pcap", [tcp_frame("192.168.56.1", "192.168.56.103", 40000, 22, SYN, 1, 0)])
    (d / "README.md").write_text("not a capture: skipped\n")
    return d


def test_broken_captures_are_rows_with_their_error(klass: Path, tmp_path: Path) -> None:
    target = tmp_path / "class.csv"
    result = invoke("batch", str(klass), "--format", "csv", "--jobs", "2", "-o", str(target))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    rows = _csv(target.read_text(encoding="utf-8"))
    assert sorted(rows) == ["ana.pcapng", "cut.pcapng", "empty.pcap", "luis/m3.pcapng",
                            "notes.pcapng", "ssh.pcap"]
    assert rows["ana.pcapng"]["requests"] == "3" and rows["ana.pcapng"]["error"] == ""
    assert rows["luis/m3.pcapng"]["capture point"] == "M3"
    assert "not a" in rows["notes.pcapng"]["error"] and rows["notes.pcapng"]["requests"] == ""
    assert "empty file" in rows["empty.pcap"]["error"]
    assert "none of its 1 frames is an HTTP request" in rows["ssh.pcap"]["error"]
    cut = rows["cut.pcapng"]  # what was read is reported, and the row says it was cut short
    assert cut["error"] == "" and cut["cut short"] == "yes" and int(cut["requests"]) >= 2


def test_markdown_is_the_default_and_jobs_do_not_change_it(klass: Path) -> None:
    one = invoke("batch", str(klass), "--jobs", "1")
    two = invoke("batch", str(klass), "--jobs", "2")
    assert one.exit_code == 0 and two.exit_code == 0, one.output + two.output
    assert one.stdout == two.stdout  # rows in file order, whatever order workers finish in
    lines = one.stdout.splitlines()
    assert lines[0].startswith("# lbreport batch: ")
    assert lines[2].startswith("| file | requests | complete |")
    assert sum(1 for ln in lines if ln.startswith("| ")) == 1 + 6
    assert lines[-1] == "6 capture(s): 3 reported, 3 with an error."


def test_spanish_headers(klass: Path) -> None:
    result = invoke("batch", str(klass), "--format", "csv", "--lang", "es", "--jobs", "2")
    assert result.exit_code == 0, result.output
    header = result.stdout.splitlines()[0]
    assert header.startswith("fichero,peticiones,completas,servidores finales (prueba)")
    assert "No existe" not in result.stdout
    assert "fichero vacío" in _csv_es(result.stdout)["empty.pcap"]["error"]


def _csv_es(out: str) -> dict[str, dict[str, str]]:
    return {r["fichero"]: r for r in csv.DictReader(io.StringIO(out))}


def test_unusable_folder_fails(tmp_path: Path) -> None:
    assert_clean_failure(invoke("batch", str(tmp_path / "nope")), "No such directory")
    (tmp_path / "f.pcap").write_bytes(b"")
    assert_clean_failure(invoke("batch", str(tmp_path / "f.pcap")), "is not a directory")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    assert_clean_failure(invoke("batch", str(tmp_path / "empty")), "holds no capture files")
    assert_clean_failure(invoke("batch", str(CAPTURES), "--jobs", "0"), "--jobs")

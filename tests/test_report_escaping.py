"""Text from packets is attacker-controlled: a crafted capture (real bytes, real tshark, the
real plugin) whose URIs hold terminal escape sequences, spreadsheet formulas and Markdown
table breakers comes out harmless in every format."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from pathlib import Path

import pytest
from craft import assert_clean_failure, hostile_capture, invoke
from lbreport.render.safe import csv_cell, markdown_cell, printable

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # all but \t and \n


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return hostile_capture(tmp_path_factory.mktemp("hostile") / "hostile.pcap")


def _run(capture: Path, fmt: str) -> str:
    result = invoke("report", str(capture), "--format", fmt)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_the_capture_really_carries_the_payloads(hostile: Path) -> None:
    uris = [r["uri"] for r in json.loads(_run(hostile, "json"))["requests"]]
    assert len(uris) == 5
    assert "x1b]0;owned" in uris[0]  # the title-setting escape sequence, made visible
    assert uris[1].startswith("=cmd|'")
    assert uris[2].startswith("+cmd") and uris[3].startswith("@SUM")


def test_text_has_no_control_characters(hostile: Path) -> None:
    out = _run(hostile, "text")
    assert not CONTROL.search(out)
    assert "\\x1b" in out  # shown, not executed


def test_csv_defuses_formulas(hostile: Path) -> None:
    out = _run(hostile, "csv")
    assert not CONTROL.search(out)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 5
    for row in rows:
        for cell in row.values():
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    assert rows[1]["uri"].startswith("'=cmd")


def test_markdown_tables_stay_tables(hostile: Path) -> None:
    out = _run(hostile, "markdown")
    assert not CONTROL.search(out)
    for line in out.splitlines():
        if line.startswith("| ") and "a|b" in line.replace("\\|", ""):
            pytest.fail(f"unescaped pipe in a table row: {line}")
    assert "a\\|b\\<script\\>\\|c" in out


def test_json_keeps_the_data(hostile: Path) -> None:
    rep = json.loads(_run(hostile, "json"))
    assert rep["requests"][4]["uri"] == "/a|b<script>|c"


def test_safe_helpers_on_raw_bytes() -> None:
    """Defence in depth: tshark already escapes control bytes in PDML, but the renderers
    must not rely on it."""
    raw = "/\x1b[2J\x1b]0;t\x07\u202eevil\x9b31m\r\n"
    assert not CONTROL.search(printable(raw))
    assert "\u202e" not in printable(raw)
    assert csv_cell("=1+1") == "'=1+1"
    assert csv_cell("\t=1") == "\\x09=1"
    assert csv_cell("-2") == "'-2"
    assert csv_cell("/ok") == "/ok"
    assert markdown_cell("a|b\nc") == "a\\|b\\\\x0ac"  # renders as a|b\x0ac


def test_output_file_is_written(hostile: Path, tmp_path: Path) -> None:
    target = tmp_path / "r.csv"
    result = invoke("report", str(hostile), "--format", "csv", "-o", str(target))
    assert result.exit_code == 0 and result.stdout == ""
    assert target.read_text().startswith("index,client")
    assert_clean_failure(invoke("report", str(hostile), "--format", "yaml"))

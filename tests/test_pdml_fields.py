"""The report's tshark writes only the fields the reader reads (`-T pdml -e …`): the records
must be exactly those of the plugin's whole subtree (`-J lblab`), which the reader also takes.
Real tshark and the real plugin on captures that carry every kind of field: repeated ones
(role definitions, other balancers), HTTPS read with its keys, booleans, and a Lua error."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest
from craft import plugin_failing_on
from lbreport import pipeline
from lbreport.pdml import FIELDS_READ, PdmlReader, Record

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")

ROOT = Path(__file__).resolve().parents[1]
CAPTURES = ROOT / "captures"


def _records(argv: list[str]) -> tuple[list[Record], tuple[int, str]]:
    proc = subprocess.run(argv, capture_output=True, check=False)
    reader = PdmlReader(io.BytesIO(proc.stdout))
    records = list(reader)
    return records, (reader.first_lua_error_frame, reader.first_lua_error)


def _whole_subtree(argv: list[str]) -> list[str]:
    at = argv.index("pdml")
    assert argv[at + 1] == "-e", argv  # the report's run asks for fields by name
    return [*argv[: at + 1], "-J", "lblab"]


@pytest.mark.parametrize("name", [
    "classic-m3", "anywhere/two-proxies", "https-h2-m3", "two-nics-m3-sll", "http/varnish-m3"])
def test_fields_by_name_read_as_the_whole_subtree(name: str) -> None:
    capture = CAPTURES / f"{name}.pcapng"
    keys = capture.with_suffix(".keys")
    plan = pipeline._plan(capture, None, keys if keys.exists() else None, pdml=True)
    asked = [plan.argv[i + 1] for i, a in enumerate(plan.argv) if a == "-e"]
    assert set(asked) <= set(FIELDS_READ) and "lblab.req" in asked and "_ws.lua.error" in asked
    by_name, error = _records(plan.argv)
    whole, _ = _records(_whole_subtree(plan.argv))
    assert error == (0, "")
    assert any(r.req for r in by_name) and any(r.backend for r in by_name)
    assert by_name == whole


def test_a_lua_error_is_read_from_the_fields_by_name(tmp_path: Path) -> None:
    """`_ws.lua.error` marks the frame, the expert message carries the text: the same frame
    and message as the `-J lblab` tree's error item."""
    broken = plugin_failing_on(2, "broken on purpose", tmp_path)
    argv = [shutil.which("tshark") or "tshark", "-n", "-r", str(CAPTURES / "classic-client.pcapng"),
            "-X", f"lua_script:{broken}", "-T", "pdml",
            *(a for f in FIELDS_READ if f != "lblab.pkt" for a in ("-e", f))]
    by_name, error = _records(argv)
    whole, whole_error = _records(_whole_subtree(argv))
    assert error[0] == 2 and "broken on purpose" in error[1]
    assert error[0] == whole_error[0] and "broken on purpose" in whole_error[1]
    assert by_name == whole

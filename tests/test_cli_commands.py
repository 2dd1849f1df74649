"""The other commands and options: roles, doctor, --lab, --keep-pdml, text and Markdown."""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import pytest
from craft import CAPTURES, invoke

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")

CLASSIC_CLIENT = CAPTURES / "classic-client.pcapng"
CLASSIC_M3 = CAPTURES / "classic-m3.pcapng"
THREE = CAPTURES / "three-backends.pcapng"


def test_doctor_all_ok() -> None:
    result = invoke("doctor")
    assert result.exit_code == 0, result.output
    assert "FAIL" not in result.stdout
    assert "Lua" in result.stdout and "lblab" in result.stdout


def test_text_report_of_the_original_exercise() -> None:
    result = invoke("report", str(CLASSIC_CLIENT))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "client view" in out
    for index in (1, 2, 3):
        assert f"Request {index}" in out
    assert "marker" in out  # how the backend is known from the client's side
    assert "ARP-who-has" in out and "│" in out  # the ladder
    assert "32 total = 32 in requests + 0 other" in out


def test_markdown_report() -> None:
    result = invoke("report", str(CLASSIC_M3), "--format", "markdown")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith("# lbreport")
    assert out.count("```text") == 3  # one ladder per request
    assert "| Backend | M1 (back-leg" in out
    assert "up-request" in out


def test_roles_prints_a_usable_lab_file(tmp_path: Path) -> None:
    result = invoke("roles", str(THREE))
    assert result.exit_code == 0, result.output
    lab = tomllib.loads(result.stdout)
    assert lab["farm"]["balancer"] and lab["farm"]["ports"] == [80]
    assert len(lab["backends"]) == 3
    lab_file = tmp_path / "three.toml"
    lab_file.write_text(result.stdout)
    inferred = json.loads(invoke("report", str(THREE), "--format", "json").stdout)
    configured_run = invoke("report", str(THREE), "--format", "json", "--lab", str(lab_file))
    assert configured_run.exit_code == 0, configured_run.output
    configured = json.loads(configured_run.stdout)
    assert inferred["roles_source"] == "inferred"
    assert configured["roles_source"] == "configured"
    strip = [(r["client"], r["status"], r["backend"]) for r in inferred["requests"]]
    assert strip == [(r["client"], r["status"], r["backend"]) for r in configured["requests"]]


def test_weights_verdict(tmp_path: Path) -> None:
    """The classic farm is round robin: a lab file expecting 2:1 weights says it differs."""
    lab = tmp_path / "weights.toml"
    lab.write_text(
        '[farm]\nclients = ["192.168.56.1"]\nbalancer = ["192.168.56.103"]\nports = [80]\n'
        '[backends]\nM1 = ["192.168.56.101"]\nM2 = ["192.168.56.102"]\n'
        '[policy]\nkind = "weights"\nweights = { M1 = 3, M2 = 1 }\n'
    )
    ab = CAPTURES / "ab-concurrency.pcapng"
    result = invoke("report", str(ab), "--format", "json", "--lab", str(lab))
    assert result.exit_code == 0, result.output
    balance = json.loads(result.stdout)["summary"]["balance"]
    assert balance["policy"] == "weights" and balance["verdict"] == "differs"
    rr = json.loads(invoke("report", str(ab), "--format", "json").stdout)["summary"]["balance"]
    assert rr["verdict"] == "matches"


def test_keep_pdml(tmp_path: Path) -> None:
    pdml = tmp_path / "kept.pdml"
    result = invoke("report", str(CLASSIC_CLIENT), "--format", "json", "--keep-pdml", str(pdml))
    assert result.exit_code == 0, result.output
    text = pdml.read_text()
    assert text.count("<packet>") == 32
    # The report asks the plugin for its compact mode: one lblab.pkt field per packet.
    assert text.count('name="lblab.pkt"') == 32
    # Only the fields the report reads, by name (-e): a field's text is its `value`.
    assert '<field name="lblab.pkt" value="1;SYN;client;M3;front;M1;marker;;;;"/>' in text
    # The PDML run (two passes) and the default one (the plugin's own labels, one pass)
    # report the same.
    default = invoke("report", str(CLASSIC_CLIENT), "--format", "json")
    assert json.loads(result.stdout) == json.loads(default.stdout)

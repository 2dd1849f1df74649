"""The plugin's own request table (`tshark -z lblab,requests`, the GUI's Tools > LB-Lab >
Requests) says what lbreport's JSON says, on every capture under captures/ (but the lab's
own folder) and every public one: the same requests, clients, methods, URIs, statuses,
backends, evidence, anomalies, capture point and frames. And its words are lbreport's
catalogue's, in English and Spanish."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from lbreport import messages, messages_es, pipeline, tshark
from lbreport.config import classic_lab, preferences

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "plugins" / "lblab.lua"
LBREPORT = ROOT / ".venv" / "bin" / "lbreport"
PUBLIC = ROOT.parent / "shared" / "public-captures"
CAPTURES = sorted(p for p in (ROOT / "captures").rglob("*.pcapng")
                  if "lab" not in p.relative_to(ROOT / "captures").parts)
if PUBLIC.is_dir():
    CAPTURES += sorted(p for p in PUBLIC.iterdir() if p.suffix in (".pcap", ".pcapng"))


def _keylog(capture: Path) -> Path | None:
    keys = capture.with_suffix(".keys")
    return keys if keys.exists() else None


def _lbreport_json(capture: Path) -> dict | None:
    keys = _keylog(capture)
    proc = subprocess.run([str(LBREPORT), "report", str(capture), "-f", "json",
                           *(["--keylog", str(keys)] if keys else [])],
                          capture_output=True, text=True, check=False)
    if proc.returncode == 1:
        return None  # no request lbreport could report: the table must have none either
    assert proc.returncode in (0, 3), proc.stderr
    return json.loads(proc.stdout)


def _preferences(capture: Path) -> list[str]:
    """The lab preferences lbreport gives tshark for this capture with no lab file: the
    classic lab, applied by the plugin only where the capture shows it (a plugin that offers
    lblab.lab_when_seen), else the lab pipeline.choose_lab picks from its first frames."""
    runner = tshark.preflight(None).runner
    if getattr(runner, "lab_when_seen", False):
        return [*preferences(classic_lab()), tshark.LAB_WHEN_SEEN_PREF]
    lab, _ = pipeline.choose_lab(None, tshark.preflight(capture).addresses)
    return preferences(lab)


def _table(capture: Path, *extra: str, tsv: bool = True) -> str:
    """The plugin's table with the same preferences lbreport gives tshark for this capture."""
    keys = _keylog(capture)
    argv = ["tshark", "-n", "-q", "-X", f"lua_script:{PLUGIN}", "-r", str(capture),
            "-z", "lblab,requests,tsv" if tsv else "lblab,requests", *extra]
    for pref in _preferences(capture):
        argv += ["-o", pref]
    if keys:
        argv += ["-o", f"tls.keylog_file:{keys}"]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and "Lua" not in proc.stderr, proc.stderr
    return proc.stdout


def _rows(tsv: str) -> tuple[list[dict[str, str]], dict[str, list[str]]]:
    lines = tsv.splitlines()
    head = lines[0].split("\t")
    rows = [dict(zip(head, ln.split("\t"), strict=True)) for ln in lines[1:]
            if not ln.startswith("# ")]
    meta = {ln[2:].split("\t")[0]: ln[2:].split("\t")[1:] for ln in lines if ln.startswith("# ")}
    return rows, meta


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
def test_table_agrees_with_lbreport(capture: Path) -> None:
    report = _lbreport_json(capture)
    rows, meta = _rows(_table(capture))
    if report is None:
        assert rows == [], "lbreport found no request; the plugin's table lists some"
        return
    expected = [
        {"req": str(r["index"]), "client": r["client"] or "", "method": r["method"] or "",
         "uri": r["uri"] or "", "status": str(r["status"] or ""), "backend": r["backend"] or "",
         "evidence": r["backend_evidence"], "anomalies": "|".join(r["anomalies"])}
        for r in report["requests"]
    ]
    got = [{k: row[k] for k in expected[0]} for row in rows] if expected else rows
    assert got == expected
    # The table says "balancer" where lbreport's JSON says "M3" (its role).
    assert meta["capture_point"] == [{"M3": "balancer"}.get(report["capture_point"],
                                                            report["capture_point"])]
    summary = report["summary"]
    assert meta["frames"] == [str(summary["frames_total"]), str(summary["frames_in_requests"]),
                              str(summary["frames_other"])]


def test_table_in_spanish_and_english() -> None:
    capture = ROOT / "captures" / "backend-down.pcapng"
    es = _table(capture, "-o", "lblab.lang:es", tsv=False)
    en = _table(capture, tsv=False)
    assert "Peticiones por servidor final: M1: 1, M2: 4, desconocido: 2" in es
    assert "el balanceador cambió de servidor final (failover): M1 → M2" in es
    assert "Requests per backend: M1: 1, M2: 4, unknown: 2" in en
    assert "failover between backends: M1 → M2" in en
    # The same seven requests in both, one line each.
    assert len(re.findall(r"^\d+ +192\.168\.56\.1:", es, re.M)) == 7
    assert len(re.findall(r"^\d+ +192\.168\.56\.1:", en, re.M)) == 7


def _plugin_words(lang: str, table: str) -> dict[str, str]:
    """summary.WORDS[lang][table] as written in the plugin's source."""
    source = PLUGIN.read_text(encoding="utf-8")
    block = source.split(f"\n    {lang} = {{", 1)[1]
    block = block.split(f"\n        {table} = {{", 1)[1].split(" },\n", 1)[0]
    return dict(re.findall(r'\[?"?([\w-]+)"?\]? = "([^"]*)"', block))


@pytest.mark.parametrize("lang, catalogue", [("en", messages.EN), ("es", messages_es.ES)])
def test_words_are_the_catalogues(lang: str, catalogue: dict[str, str]) -> None:
    anom = _plugin_words(lang, "anom")
    assert anom == {k[5:]: v for k, v in catalogue.items() if k.startswith("anom.")}
    evidence = _plugin_words(lang, "evidence")
    for name, word in evidence.items():
        if f"evidence.{name}" in catalogue:
            assert catalogue[f"evidence.{name}"].split(" (")[0] == word
    for step, word in _plugin_words(lang, "steps").items():
        if f"step.{step}" in catalogue:
            assert catalogue[f"step.{step}"] == word

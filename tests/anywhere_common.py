"""What the plugin says of a capture, for the tests of captures/anywhere/ and captures/http/:
its request table (`tshark -z lblab,requests,tsv`), its roles (lblab.role_def) and its steps."""

from __future__ import annotations

import json
import subprocess
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "plugins" / "lblab.lua"


def truth(capture: Path) -> dict:
    return json.loads(capture.with_suffix(".truth.json").read_text(encoding="utf-8"))


def _tshark(capture: Path, *args: str) -> str:
    proc = subprocess.run(["tshark", "-n", "-X", f"lua_script:{PLUGIN}", "-r", str(capture),
                           *args], capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and "Lua" not in proc.stderr, proc.stderr
    return proc.stdout


def table(capture: Path) -> tuple[list[dict[str, str]], dict[str, list[str]]]:
    lines = _tshark(capture, "-q", "-z", "lblab,requests,tsv").splitlines()
    head = lines[0].split("\t")
    rows = [dict(zip(head, ln.split("\t"), strict=True)) for ln in lines[1:]
            if not ln.startswith("# ")]
    meta = {ln[2:].split("\t")[0]: ln[2:].split("\t")[1:] for ln in lines if ln.startswith("# ")}
    return rows, meta


def roles(capture: Path) -> dict[str, set[str]]:
    """role -> addresses, as the plugin defines them (lblab.role_def, on any frame)."""
    out = _tshark(capture, "-2", "-Y", "lblab.role_def", "-T", "fields", "-E", "occurrence=a",
                  "-E", "aggregator=|", "-e", "lblab.role_def")
    found: dict[str, set[str]] = defaultdict(set)
    for line in out.split():
        for item in line.split("|"):
            role, _, addr = item.partition("=")
            found[role].add(addr)
    return dict(found)


def frame_fields(capture: Path, *fields: str) -> list[list[str]]:
    argv = ["-2", "-Y", "frame", "-T", "fields", "-E", "occurrence=f"]
    for f in fields:
        argv += ["-e", f]
    return [ln.split("\t") for ln in _tshark(capture, *argv).splitlines()]

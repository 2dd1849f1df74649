"""bench/bench_all.py runs (a benchmark, not a timed test): on small inputs it prints every
section with a ratio, so the README's benchmark command keeps working."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_all_prints_every_ratio() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_all.py"), "--big",
         str(ROOT / "captures" / "ab-concurrency.pcapng"), "--cut", "500", "--repeat", "1"],
        capture_output=True, text=True, check=False, timeout=600)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for section in ("1. fixed cost", "2. the plugin's cost", "3. end to end",
                    "4. against a naive pyshark script"):
        assert section in out, out
    # Every section ends in figures, never an empty measure.
    assert len(re.findall(r"\d+\.\d\dx", out)) >= 6, out
    assert re.search(r"own peak RSS \d+ MB", out), out

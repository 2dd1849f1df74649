#!/usr/bin/env python3
"""The text report's cost next to the JSON one (a benchmark, not a test).

    python3 bench/bench_text.py [--requests 5000] [--concurrency 10] [--capture FILE] [--repeat 3]

Makes (once; cached in bench/out/) a capture at M3 of `ab -n 5000 -c 10` through the lab farm
(needs root), then times, interleaved, on the same file:
  A: tshark -n -2 -Y frame -X lua_script:plugins/lblab.lua -T fields -e lblab.req
  B: lbreport report --format json
  C: lbreport report (text)
and prints the best wall time of each, C/B (target ≤ 2) and B/A, C/A as ratios.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LBREPORT = ROOT / ".venv" / "bin" / "lbreport"
PLUGIN = ROOT / "plugins" / "lblab.lua"


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=5000)
    ap.add_argument("--concurrency", type=int, default=10)
    ap.add_argument("--capture", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if args.capture is None:
        sys.path.insert(0, str(ROOT / "bench"))
        from make_capture import make

        args.capture = make(args.requests, args.concurrency)
    cap = str(args.capture)
    commands = {
        "tshark fields": ["tshark", "-n", "-2", "-Y", "frame", "-X", f"lua_script:{PLUGIN}",
                          "-r", cap, "-T", "fields", "-e", "lblab.req"],
        "lbreport json": [str(LBREPORT), "report", cap, "--format", "json", "-o", "/dev/null"],
        "lbreport text": [str(LBREPORT), "report", cap, "-o", "/dev/null"],
    }
    best = {name: float("inf") for name in commands}
    for run in range(args.repeat):
        for name, argv in commands.items():
            seconds = timed(argv)
            best[name] = min(best[name], seconds)
            print(f"run {run + 1}: {name:14} {seconds:7.2f} s", flush=True)
    a, b, c = best["tshark fields"], best["lbreport json"], best["lbreport text"]
    print(f"best: tshark {a:.2f} s, json {b:.2f} s, text {c:.2f} s")
    print(f"text/json = {c / b:.2f} (target <= 2); json/tshark = {b / a:.2f}; "
          f"text/tshark = {c / a:.2f}")


if __name__ == "__main__":
    main()

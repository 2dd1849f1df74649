#!/usr/bin/env python3
"""lbreport's speed and memory on a large lab capture (a benchmark, not a test).

    python3 bench/bench_report.py [--requests 50000] [--concurrency 20] [--capture FILE]
                                  [--repeat 3]

1. Unless --capture is given, makes (once; cached in bench/out/, never committed) a capture
   at M3 of `ab -n 50000 -c 20` through the lab farm (captures/lab/farm.py; needs root).
2. In the same run, on the same file, times
     A: tshark -n -2 -Y frame -X lua_script:plugins/lblab.lua -T fields -e lblab.req
     B: lbreport report --format json -o /dev/null
   and prints B's throughput relative to A (target ≥ 0.8) and lbreport's own peak RSS
   (the Python process alone, not tshark; target ≤ 150 MB).
   Each command runs --repeat times, interleaved, and the best wall time of each counts: the
   machine is shared, and the minimum is the least noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(__file__).resolve().parent / "out"
PLUGIN = ROOT / "plugins" / "lblab.lua"
PYTHON = ROOT / ".venv" / "bin" / "python"
MIN_PACKETS = 500_000

# Runs the CLI in-process, through its entry point, and reports this process's own peak RSS
# (RUSAGE_SELF excludes tshark, which is a child) from an exit handler: a report ends with
# os._exit after running them (launch._exit_now).
_MEASURE = """
import atexit, resource, sys
atexit.register(lambda: print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                              file=sys.stderr))
from lbreport.launch import main
main(sys.argv[1:])
"""


def packets(capture: Path) -> int:
    out = subprocess.run(["capinfos", "-c", "-M", str(capture)], capture_output=True,
                         text=True, check=True).stdout
    return int(out.split("Number of packets:")[1].split()[0])


def make_capture(requests: int, concurrency: int) -> Path:
    # Same name as bench/make_capture.py's: one cached capture serves every benchmark.
    target = OUT / f"ab-{requests}-c{concurrency}.pcapng"
    if target.exists():
        return target
    if os.geteuid() != 0:
        sys.exit("bench: making the capture needs root (network namespaces); or pass --capture")
    sys.path.insert(0, str(ROOT / "captures" / "lab"))
    from farm import Farm, FarmSpec  # the lab's own farm, as for the reference captures

    OUT.mkdir(parents=True, exist_ok=True)
    # SIGTERM must unwind through the farm's `with` so its namespaces and servers go away.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="lbbench-") as work, Farm(FarmSpec(), work) as farm:
        farm.warm_neighbours()
        farm.start_capture("bench", "m3")
        started = time.monotonic()
        farm.run_in("client1", ["ab", "-q", "-n", str(requests), "-c", str(concurrency),
                                farm.url()], timeout=3600)
        print(f"bench: ab -n {requests} -c {concurrency} took "
              f"{time.monotonic() - started:.1f} s", file=sys.stderr)
        path = farm.stop_captures()[0]
        shutil.move(str(path), target)
    return target


def time_tshark_fields(capture: Path) -> float:
    argv = ["tshark", "-n", "-2", "-Y", "frame", "-X", f"lua_script:{PLUGIN}", "-r",
            str(capture), "-T", "fields", "-e", "lblab.req"]
    started = time.monotonic()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.monotonic() - started


def time_lbreport(capture: Path) -> tuple[float, int, dict]:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        argv = [str(PYTHON), "-c", _MEASURE, "report", str(capture), "--format", "json",
                "-o", out.name]
        started = time.monotonic()
        run = subprocess.run(argv, capture_output=True, text=True)
        elapsed = time.monotonic() - started
        if run.returncode != 0:
            sys.exit(f"bench: lbreport failed ({run.returncode}): {run.stderr}")
        peak_kb = int(run.stderr.strip().splitlines()[-1])
        summary = json.loads(Path(out.name).read_text())["summary"]
    return elapsed, peak_kb, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--capture", type=Path, help="use this capture instead of making one")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, interleaved")
    args = parser.parse_args()

    capture = args.capture or make_capture(args.requests, args.concurrency)
    n = packets(capture)
    size = capture.stat().st_size
    print(f"capture: {capture} ({n:,} packets, {size / 1e6:.0f} MB)")
    if n < MIN_PACKETS:
        print(f"note: fewer than {MIN_PACKETS:,} packets; the figures are indicative only")

    runs_a: list[float] = []
    runs_b: list[float] = []
    peaks: list[int] = []
    for _ in range(args.repeat):
        runs_a.append(time_tshark_fields(capture))
        b, peak, summary = time_lbreport(capture)
        runs_b.append(b)
        peaks.append(peak)
    a, b, peak_kb = min(runs_a), min(runs_b), max(peaks)
    ratio = a / b
    print(f"best of {args.repeat} interleaved runs (wall); all runs: "
          f"A {' '.join(f'{x:.1f}' for x in runs_a)}  B {' '.join(f'{x:.1f}' for x in runs_b)}"
          f"  peak MB {' '.join(f'{x / 1024:.0f}' for x in peaks)}")
    print(f"A  tshark -T fields -e lblab.req : {a:7.1f} s  {n / a:9,.0f} packets/s")
    print(f"B  lbreport report --format json : {b:7.1f} s  {n / b:9,.0f} packets/s")
    print(f"throughput B/A: {ratio:.2f}  (target >= 0.80)  {'OK' if ratio >= 0.8 else 'MISS'}")
    print(f"lbreport peak RSS (Python process only): {peak_kb / 1024:.0f} MB  "
          f"(target <= 150 MB)  {'OK' if peak_kb <= 150 * 1024 else 'MISS'}")
    print(f"requests: {summary['requests']:,}; frames: {summary['frames_total']:,} = "
          f"{summary['frames_in_requests']:,} in requests + {summary['frames_other']:,} other")


if __name__ == "__main__":
    main()

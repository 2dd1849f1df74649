"""Generate (once) the large lab capture the benchmarks read.

`ab -n N -c C` through the real nginx farm, recorded at M3 (both legs), into
bench/out/ (not committed). Run as root: the farm lives in network namespaces.

    python3 bench/make_capture.py [--requests 50000] [--concurrency 20]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "captures" / "lab"))

from farm import Farm, FarmSpec  # noqa: E402

OUT = REPO / "bench" / "out"


def capture_path(requests: int, concurrency: int) -> Path:
    return OUT / f"ab-{requests}-c{concurrency}.pcapng"


def frame_count(path: Path) -> int:
    out = subprocess.run(["capinfos", "-c", "-M", "-T", str(path)], capture_output=True,
                         text=True, check=True).stdout
    return int(out.strip().splitlines()[-1].split("\t")[1])


def make(requests: int, concurrency: int) -> Path:
    """The capture for these parameters, generated if it is not there yet."""
    path = capture_path(requests, concurrency)
    if path.exists():
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    workdir = OUT / "farm"
    with Farm(FarmSpec(), workdir) as farm:
        farm.warm_neighbours()
        farm.start_capture("big", "m3")
        farm.run_in("client1", ["ab", "-q", "-n", str(requests), "-c", str(concurrency),
                                farm.url()], timeout=1800)
        farm.stop_captures()
        shutil.move(str(workdir / "big.pcapng"), path)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=50000)
    ap.add_argument("--concurrency", type=int, default=20)
    args = ap.parse_args()
    path = make(args.requests, args.concurrency)
    print(f"{path}: {frame_count(path)} frames")


if __name__ == "__main__":
    main()

"""What the lblab plugin costs tshark, as a ratio against plain tshark in the same run.

    python3 bench/bench_plugin.py [CAPTURE] [--repeat 3]

Without CAPTURE it uses (and if needed generates, as root) the large lab
capture of bench/make_capture.py: `ab -n 50000 -c 20` recorded at M3. Each
command runs --repeat times, interleaved, and the best CPU time (user+sys of
tshark) counts: the machine is shared, and the minimum is the least noisy.

Rows:
  fields        tshark -T fields -e frame.number -e tcp.stream (no plugin)
  fields+lblab  the same with the plugin, asking for its labels
  2pass         tshark -2 -Y frame -T fields (no plugin)
  2pass+lblab   the same with the plugin (what lbreport's labels need)
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PLUGIN = REPO / "plugins" / "lblab.lua"
LABELS = ["-e", "lblab.req", "-e", "lblab.step", "-e", "lblab.src_role", "-e", "lblab.backend"]


def commands(capture: Path) -> dict[str, list[str]]:
    base = ["tshark", "-n", "-r", str(capture)]
    plain = ["-T", "fields", "-e", "frame.number", "-e", "tcp.stream"]
    plugin = ["-X", f"lua_script:{PLUGIN}"]
    two = ["-2", "-Y", "frame"]
    return {
        "fields": base + plain,
        "fields+lblab": base + plugin + plain + LABELS,
        "2pass": base + two + plain,
        "2pass+lblab": base + two + plugin + plain + LABELS,
    }


def cpu_seconds(cmd: list[str]) -> tuple[float, float]:
    """CPU time (user+sys) and peak RSS in MB of one run of cmd."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0 or "Lua:" in proc.stderr:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, after.ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("capture", nargs="?", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    capture = args.capture
    if capture is None:
        sys.path.insert(0, str(REPO / "bench"))
        from make_capture import make

        capture = make(50000, 20)
    frames = subprocess.run(["capinfos", "-c", "-M", "-T", str(capture)], capture_output=True,
                            text=True, check=True).stdout.strip().splitlines()[-1].split("\t")[1]
    cmds = commands(capture)
    best = {name: float("inf") for name in cmds}
    for _ in range(args.repeat):
        for name, cmd in cmds.items():
            cpu, _rss = cpu_seconds(cmd)
            best[name] = min(best[name], cpu)
    print(f"capture: {capture} ({frames} frames), best of {args.repeat}, CPU seconds, "
          f"{os.cpu_count()} cores")
    for name, cpu in best.items():
        print(f"  {name:14s} {cpu:8.2f} s")
    one_pass = best["fields+lblab"] / best["fields"]
    print(f"  plugin cost, one pass:  {one_pass:.2f}x  (target <= 1.5x)")
    print(f"  plugin cost, two passes: {best['2pass+lblab'] / best['2pass']:.2f}x")


if __name__ == "__main__":
    main()

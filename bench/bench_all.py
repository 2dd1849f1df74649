#!/usr/bin/env python3
"""Every speed and memory figure of the product, as ratios measured in one run.

    python3 bench/bench_all.py [--big CAPTURE] [--cut N] [--repeat 3] [--million] [--sections 1234]

1. Fixed cost: `lbreport report` against tshark with the plugin (two passes, PDML) on the
   small classic capture (wall time), and lbreport's own peak RSS there.
2. The plugin's cost (CPU, one pass, -T fields) split in two: plain tshark; the same asking
   for every field the plugin reads (what those fields cost tshark); with the plugin
   (its own Lua is the rest). Then the plugin as lbreport runs it (one pass, labels written
   at the end: -z lblab,labels) against plain tshark and against that command without it.
3. End to end on the big capture (default: `ab -n 10000 -c 20` at M3, ~200k packets, made
   by bench/make_capture.py as root): lbreport against the two-pass fields run with the
   plugin and against one plain pass; lbreport's own peak RSS.
4. Against a naive pyshark script (bench/peer_pyshark.py) on the big capture's first N
   packets (--cut, default 20000).
5. --million: lbreport on `ab -n 52000 -c 20` (~1M packets): wall time and both cores' use.

Each command runs --repeat times, interleaved; the best of each counts (the machine may be
shared and the minimum is the least noisy). A benchmark, not a test: it judges nothing;
tests/test_bench.py only runs it on small inputs to prove it works.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "plugins" / "lblab.lua"
PYTHON = ROOT / ".venv" / "bin" / "python"
CLASSIC = ROOT / "captures" / "classic-client.pcapng"
sys.path.insert(0, str(ROOT / "bench"))

# lbreport in-process, printing its own peak RSS (RUSAGE_SELF excludes tshark, a child).
from bench_report import _MEASURE  # noqa: E402


@dataclass
class Run:
    wall: float
    cpu: float  # user + sys of the command and its children
    rss_mb: float = 0.0  # lbreport's own peak, where measured


def run(argv: list[str], measure_rss: bool = False) -> Run:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          check=False)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 3) or "Lua:" in proc.stderr:
        sys.exit(f"bench: failed ({proc.returncode}): {' '.join(argv)}\n{proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    rss = int(proc.stderr.strip().splitlines()[-1]) / 1024 if measure_rss else 0.0
    return Run(wall, cpu, rss)


def best(commands: dict[str, Callable[[], Run]], repeat: int) -> dict[str, Run]:
    """Each command `repeat` times, interleaved; the fastest run of each (and the largest
    RSS seen: memory is a ceiling, not a race)."""
    out: dict[str, Run] = {}
    for _ in range(repeat):
        for name, fn in commands.items():
            r = fn()
            old = out.get(name)
            if old is None:
                out[name] = r
            else:
                out[name] = Run(min(old.wall, r.wall), min(old.cpu, r.cpu),
                                max(old.rss_mb, r.rss_mb))
    return out


def lbreport(capture: Path) -> Callable[[], Run]:
    return lambda: run([str(PYTHON), "-c", _MEASURE, "report", str(capture), "-f", "json",
                        "-o", os.devnull], measure_rss=True)


def tshark(*args: str) -> Callable[[], Run]:
    return lambda: run(["tshark", "-n", *args])


def fields_the_plugin_reads() -> list[str]:
    return re.findall(r'^F\.\w+ = Field\.new\("([\w.]+)"\)', PLUGIN.read_text(), re.M)


def packets(capture: Path) -> int:
    out = subprocess.run(["capinfos", "-c", "-M", "-T", str(capture)], capture_output=True,
                         text=True, check=True).stdout
    return int(out.strip().splitlines()[-1].split("\t")[1])


def cut(capture: Path, n: int, workdir: Path) -> Path:
    path = workdir / f"first-{n}.pcapng"
    subprocess.run(["editcap", "-r", str(capture), str(path), f"1-{n}"], check=True,
                   capture_output=True)
    return path


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b > 0 else "n/a"


def fixed_cost(repeat: int) -> None:
    plugin = ["-X", f"lua_script:{PLUGIN}"]
    r = best({
        "lbreport": lbreport(CLASSIC),
        "tshark+plugin": tshark("-2", "-Y", "frame", "-r", str(CLASSIC), *plugin,
                                "-T", "pdml", "-J", "lblab"),
    }, repeat)
    print(f"1. fixed cost, {CLASSIC.name} ({packets(CLASSIC)} frames), wall:")
    print(f"   lbreport {r['lbreport'].wall:.2f} s, tshark with the plugin "
          f"{r['tshark+plugin'].wall:.2f} s: {ratio(r['lbreport'].wall, r['tshark+plugin'].wall)}"
          f"  (target <= 2x); lbreport's own peak RSS {r['lbreport'].rss_mb:.0f} MB")


# The least any Lua postdissector pays to label every packet as the plugin does: the same
# extractors registered (tshark builds their fields), three of them read a packet, the
# protocol item and seven label fields added with constant values. The plugin's own work
# is what it costs above this.
FLOOR_SCRIPT = """
local F = {}
%s
local p = Proto("lblab", "LB lab floor")
local names = { "src_role", "dst_role", "step", "leg", "backend", "backend_evidence" }
local pf = { req = ProtoField.uint32("lblab.req", "req") }
local fields = { pf.req }
for _, n in ipairs(names) do
    pf[n] = ProtoField.string("lblab." .. n, n)
    fields[#fields + 1] = pf[n]
end
p.fields = fields
local add = TreeItem.add
local seen = {}
function p.dissector(tvb, pinfo, tree)
    local n = pinfo.number
    if pinfo.visited then return end
    local s = F.tcp_stream()
    if s == nil then return end
    seen[n] = s.value + F.tcp_flags().value + F.tcp_len().value
    local t = add(tree, p)
    add(t, pf.src_role, "client"); add(t, pf.dst_role, "M3"); add(t, pf.step, "ACK")
    add(t, pf.leg, "front"); add(t, pf.req, 1); add(t, pf.backend, "M1")
    add(t, pf.backend_evidence, "back-leg")
end
register_postdissector(p)
"""


# Less still: a Lua postdissector that does nothing. What Wireshark's Lua bridge costs a
# packet before any plugin code runs (the Tvb, Pinfo and TreeItem objects of each call).
EMPTY_SCRIPT = """local p = Proto("lbempty", "empty")
function p.dissector() end
register_postdissector(p)
"""


def floor_script(workdir: Path) -> Path:
    lines = re.findall(r'^F\.\w+ = Field\.new\("[\w.]+"\)$', PLUGIN.read_text(), re.M)
    path = workdir / "floor.lua"
    path.write_text(FLOOR_SCRIPT % "\n".join(lines))
    return path


def plugin_cost(capture: Path, repeat: int) -> None:
    base = ["-r", str(capture), "-T", "fields", "-e", "tcp.stream"]
    read = [arg for name in fields_the_plugin_reads() for arg in ("-e", name)]
    labels = ["-e", "lblab.req", "-e", "lblab.step", "-e", "lblab.src_role", "-e", "lblab.backend"]
    plugin = ["-X", f"lua_script:{PLUGIN}"]
    with tempfile.TemporaryDirectory(prefix="lbbench-") as work:
        floor = ["-X", f"lua_script:{floor_script(Path(work))}"]
        (Path(work) / "empty.lua").write_text(EMPTY_SCRIPT)
        empty = ["-X", f"lua_script:{Path(work) / 'empty.lua'}"]
        r = best({
            "plain": tshark(*base),
            "empty": tshark(*base, *empty),
            "fields": tshark(*base, *read),
            "floor": tshark(*base, *floor, *labels),
            "plugin": tshark(*base, *plugin, *labels),
            "compact": tshark(*base, *plugin, "-o", "lblab.compact:TRUE", "-e", "lblab.pkt"),
            # As lbreport runs it: one pass building trees for the extractors (-Y frame),
            # the plugin recording, then writing every frame's labels (-z lblab,labels);
            # and that command without the plugin.
            "one-pass-q": tshark("-n", "-q", "-Y", "frame", "-r", str(capture)),
            "labels": tshark("-n", "-q", "-Y", "frame", "-r", str(capture), *plugin,
                             "-o", "lblab.two_pass:TRUE", "-o", "lblab.compact:TRUE",
                             "-z", "lblab,labels"),
        }, repeat)
    plain, fields, plugin_cpu = r["plain"].cpu, r["fields"].cpu, r["plugin"].cpu
    floor_cpu, compact = r["floor"].cpu, r["compact"].cpu
    print(f"2. the plugin's cost, {capture.name} ({packets(capture):,} packets), CPU, one pass:")
    print(f"   plain tshark {plain:.2f} s; with the {len(read) // 2} fields the plugin reads "
          f"{fields:.2f} s ({ratio(fields, plain)}); with the plugin {plugin_cpu:.2f} s "
          f"({ratio(plugin_cpu, plain)}, target <= 1.5x): its own Lua {plugin_cpu - fields:.2f} s")
    print(f"   an empty Lua postdissector {r['empty'].cpu:.2f} s "
          f"({ratio(r['empty'].cpu, plain)}): Wireshark's Lua bridge alone")
    print(f"   the floor (any Lua postdissector adding the same 8 items a packet, constant "
          f"values) {floor_cpu:.2f} s ({ratio(floor_cpu, plain)}): the plugin's work above it "
          f"{plugin_cpu - floor_cpu:.2f} s; compact labels (one field a packet) "
          f"{compact:.2f} s ({ratio(compact, plain)})")
    labels, quiet = r["labels"].cpu, r["one-pass-q"].cpu
    print(f"   as lbreport runs it (one pass, the plugin writing every frame's labels at the "
          f"end, -z lblab,labels) {labels:.2f} s ({ratio(labels, plain)} plain tshark); that "
          f"command without the plugin (-q -Y frame, no output) {quiet:.2f} s "
          f"({ratio(labels, quiet)} of it)")


def end_to_end(capture: Path, repeat: int) -> None:
    plugin = ["-X", f"lua_script:{PLUGIN}"]
    r = best({
        "lbreport": lbreport(capture),
        "2pass": tshark("-2", "-Y", "frame", "-r", str(capture), *plugin, "-T", "fields",
                        "-e", "lblab.req", "-e", "lblab.step"),
        "plain": tshark("-r", str(capture), "-T", "fields", "-e", "frame.number"),
    }, repeat)
    lb = r["lbreport"]
    print(f"3. end to end, {capture.name} ({packets(capture):,} packets), wall:")
    print(f"   lbreport {lb.wall:.2f} s (CPU {lb.cpu:.2f} s); 2-pass fields with the plugin "
          f"{r['2pass'].wall:.2f} s: lbreport's speed {ratio(r['2pass'].wall, lb.wall)} of it "
          f"(target >= 0.9x); one plain pass {r['plain'].wall:.2f} s "
          f"({ratio(lb.wall, r['plain'].wall)} of lbreport's time)")
    print(f"   lbreport's own peak RSS {lb.rss_mb:.0f} MB (target <= 60 MB)")


def against_pyshark(capture: Path, n: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory(prefix="lbbench-") as work:
        small = cut(capture, n, Path(work))
        r = best({
            "lbreport": lbreport(small),
            "pyshark": lambda: run([str(PYTHON), str(ROOT / "bench" / "peer_pyshark.py"),
                                    str(small)]),
            # tshark reading the capture once and building trees, no plugin, writing
            # nothing: the bound of any report made from tshark's dissection.
            "tshark": tshark("-n", "-q", "-Y", "frame", "-r", str(small)),
            # lbreport's own tshark command (one pass, the plugin writing its labels), nobody
            # reading: what is left above it is Python's start, reading and writing.
            "report's tshark": lambda: run(report_command(small)),
        }, repeat)
        py, lb, alone = r["pyshark"].wall, r["lbreport"].wall, r["tshark"].wall
        with_plugin = r["report's tshark"].wall
        print(f"4. against a naive pyshark script, first {packets(small):,} packets, wall:")
        print(f"   pyshark {py:.2f} s, lbreport {lb:.2f} s: lbreport {ratio(py, lb)} faster "
              f"(target >= 30x); tshark's one pass, no plugin, writing nothing "
              f"{alone:.2f} s ({ratio(py, alone)} faster than pyshark: the bound)")
        print(f"   lbreport's tshark command alone (the plugin, nobody reading) "
              f"{with_plugin:.2f} s ({ratio(py, with_plugin)} faster than pyshark)")


def report_command(capture: Path) -> list[str]:
    """The tshark command `lbreport report CAPTURE` runs, as lbreport builds it."""
    code = ("import shlex, sys; from pathlib import Path; from lbreport import pipeline; "
            "print(shlex.join(pipeline._plan(Path(sys.argv[1]), None, None).argv))")
    out = subprocess.run([str(PYTHON), "-c", code, str(capture)], capture_output=True,
                         text=True, check=True).stdout
    return shlex.split(out)


def million(repeat: int) -> None:
    from make_capture import make

    capture = make(52000, 20)
    r = best({"lbreport": lbreport(capture)}, repeat)["lbreport"]
    print(f"5. {capture.name} ({packets(capture):,} packets): lbreport {r.wall:.1f} s wall, "
          f"{r.cpu:.1f} s CPU: {r.cpu / r.wall:.2f} of {os.cpu_count()} cores busy; "
          f"own peak RSS {r.rss_mb:.0f} MB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--big", type=Path, help="the big capture (default: made by make_capture)")
    ap.add_argument("--cut", type=int, default=20000, help="packets for the pyshark peer")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--million", action="store_true", help="also the ~1M-packet capture")
    ap.add_argument("--sections", default="1234",
                    help="which of sections 1-4 to run (default: all), e.g. 34")
    args = ap.parse_args()
    big = args.big
    if big is None:
        from make_capture import make

        big = make(10000, 20)
    print(f"bench_all: {os.cpu_count()} cores, best of {args.repeat} interleaved runs; "
          f"load average {os.getloadavg()[0]:.1f}")
    if "1" in args.sections:
        fixed_cost(args.repeat)
    if "2" in args.sections:
        plugin_cost(big, args.repeat)
    if "3" in args.sections:
        end_to_end(big, args.repeat)
    if "4" in args.sections:
        against_pyshark(big, min(args.cut, packets(big)), args.repeat)
    if args.million:
        million(args.repeat)


if __name__ == "__main__":
    main()

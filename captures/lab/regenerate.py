#!/usr/bin/env python3
"""Rebuilds the committed reference captures and their truth files (run as root).

    python3 captures/lab/regenerate.py                   # every scenario
    python3 captures/lab/regenerate.py classic ipv6-client  # scenarios or capture names
    python3 captures/lab/regenerate.py --list

Each scenario builds a fresh farm (farm.py), records one or more interfaces in the same run,
drives traffic from the client namespace(s) and writes captures/<name>.pcapng and
captures/<name>.truth.json from the balancer's own access log.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from farm import Farm, FarmSpec, LabError, write_truth  # noqa: E402

CAPTURES_DIR = Path(__file__).resolve().parent.parent
MAX_CAPTURE_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class Scenario:
    name: str
    spec: FarmSpec
    captures: dict[str, str]  # capture name -> host whose interface is recorded
    traffic: Callable[[Farm], None]
    flush: bool = False  # forget M3's neighbours first, so ARP/ND for the backends shows
    settle: float = 1.0  # seconds between the last request and stopping dumpcap


def sequential(n: int, pause: float = 0.2) -> Callable[[Farm], None]:
    """n separate `curl URL` runs: one connection (and one request) each."""

    def traffic(farm: Farm) -> None:
        for _ in range(n):
            farm.curl(farm.url())
            time.sleep(pause)

    return traffic


def keepalive_client(farm: Farm) -> None:
    # One curl, four URLs: curl reuses the connection for all of them.
    farm.curl(*[farm.url()] * 4)
    # haproxy keeps its server connections idle after the client leaves; Apache closes them
    # after its 5 s KeepAliveTimeout: wait, so their teardown is recorded too.
    time.sleep(6)


def ab_concurrency(farm: Farm) -> None:
    farm.ab(200, 10)


def backend_down(farm: Farm) -> None:
    sequential(2)(farm)  # both up: M1, M2
    farm.stop_server("M1")
    sequential(3)(farm)  # M1 refuses: failover to M2, then M1 is skipped while marked down
    farm.stop_server("M2")
    sequential(2)(farm)  # nothing left: 502 from the balancer


def upstream_keepalive(farm: Farm) -> None:
    sequential(6)(farm)
    # Apache's KeepAliveTimeout is 5 s: wait for it so the backends' FINs are recorded too.
    time.sleep(6)


def two_clients(farm: Farm) -> None:
    procs = [
        farm.spawn_in(c.name, ["ab", "-q", "-n", "10", "-c", "2", farm.url()])
        for c in farm.clients
    ]
    for p in procs:
        _, err = p.communicate(timeout=60)
        if p.returncode:
            raise LabError(f"ab failed: {err}")


CLASSIC = FarmSpec()
SCENARIOS = [
    Scenario("classic", CLASSIC, {"classic-client": "client1", "classic-m3": "m3"},
             sequential(3), flush=True),
    Scenario("haproxy-keepalive", FarmSpec(balancer="haproxy"),
             {"haproxy-keepalive": "m3"}, keepalive_client),
    Scenario("ab-concurrency", CLASSIC, {"ab-concurrency": "m3"}, ab_concurrency),
    Scenario("backend-down", CLASSIC, {"backend-down": "m3"}, backend_down),
    Scenario("upstream-keepalive", FarmSpec(keepalive=8), {"upstream-keepalive": "m3"},
             upstream_keepalive),
    Scenario("two-clients", FarmSpec(clients=2), {"two-clients": "m3"}, two_clients),
    Scenario("ipv6", FarmSpec(ipv4_prefix=None, ipv6_prefix="fd00:56::"),
             {"ipv6-client": "client1", "ipv6": "m3"}, sequential(3), flush=True),
    Scenario("backend-m2", CLASSIC, {"backend-m2": "m2"}, sequential(4)),
    Scenario("haproxy-checks", FarmSpec(balancer="haproxy", health_checks=True),
             {"haproxy-checks": "m3"}, sequential(3, pause=1.0)),
    Scenario("three-backends",
             FarmSpec(balancer="haproxy", backend_server="nginx", backends=3,
                      ipv4_prefix="10.20.0.", client_hosts=(10,), balancer_host=1,
                      backend_hosts=(11, 12, 13)),
             {"three-backends": "m3"}, sequential(6)),
]


# --------------------------------------------------------------------------- HTTPS (issue 11)
# M3 terminates TLS (throwaway certificate), the backends get plain HTTP; each scenario is
# recorded at the client and at M3, and the client's key log is stored as <capture>.keys.


def https_sequential(n: int, pause: float = 0.2) -> Callable[[Farm], None]:
    """n separate `curl -k https://M3/ejemplo.html`: one TLS connection each."""

    def traffic(farm: Farm) -> None:
        for _ in range(n):
            farm.curl_tls(farm.https_url())
            time.sleep(pause)

    return traffic


def https_keepalive(farm: Farm) -> None:
    # One curl, four URLs: one TLS connection carries the four requests.
    farm.curl_tls(*[farm.https_url()] * 4)


def https_h2(farm: Farm) -> None:
    # HTTP/2 with parallel transfers: curl waits for the connection and multiplexes the six
    # requests as streams of it (no --parallel-immediate, which would open more connections).
    urls = [farm.https_url(f"/ejemplo.html?n={i}") for i in range(1, 7)]
    farm.curl_tls(*urls, options=("--http2", "--parallel", "--parallel-max", "6"))


def https_redirect(farm: Farm) -> None:
    # http:// answered with 301 by M3 itself; curl -L follows it to https:// (twice).
    for _ in range(2):
        farm.curl_tls(farm.url(), options=("-L",))
        time.sleep(0.2)


HTTPS = FarmSpec(tls=True)


def https_scenario(name: str, spec: FarmSpec, traffic: Callable[[Farm], None]) -> Scenario:
    return Scenario(name, spec, {f"{name}-client": "client1", f"{name}-m3": "m3"}, traffic,
                    flush=True)


HTTPS_SCENARIOS = [
    https_scenario("https", HTTPS, https_sequential(3)),
    https_scenario("https-redirect", FarmSpec(tls=True, redirect_http=True), https_redirect),
    # nginx 1.22 (Debian 12) offers TLS 1.2 at most unless told: these two use TLS 1.3.
    https_scenario("https-keepalive", FarmSpec(tls=True, tls_protocols="TLSv1.2 TLSv1.3"),
                   https_keepalive),
    https_scenario("https-h2", FarmSpec(tls=True, http2=True, tls_protocols="TLSv1.2 TLSv1.3"),
                   https_h2),
    https_scenario("https-haproxy", FarmSpec(balancer="haproxy", tls=True),
                   https_sequential(3)),
]
SCENARIOS.extend(HTTPS_SCENARIOS)


def record(scenario: Scenario, out_dir: Path, workdir: Path) -> list[Path]:
    """Build the scenario's farm, record it, write its captures and truth files to out_dir."""
    written = []
    with Farm(scenario.spec, workdir) as farm:
        farm.warm_neighbours()
        if scenario.flush:
            farm.flush_neighbours()
        for capture, host in scenario.captures.items():
            farm.start_capture(capture, host)
        scenario.traffic(farm)
        farm.stop_captures(settle=scenario.settle)
        for capture in scenario.captures:
            src, _ = farm.finished_captures[capture]
            if src.stat().st_size > MAX_CAPTURE_BYTES:
                raise LabError(f"{capture}: {src.stat().st_size} bytes, over 2 MB")
            dest = out_dir / src.name
            shutil.copyfile(src, dest)
            dest.chmod(0o644)
            truth = farm.truth(capture, scenario.name)
            if farm.keylog is not None:  # HTTPS: the client's TLS secrets beside the capture
                keys = out_dir / truth["keylog"]
                shutil.copyfile(farm.keylog, keys)
                keys.chmod(0o644)
            write_truth(truth, out_dir / f"{capture}.truth.json")
            written.append(dest)
            print(f"{capture}: {truth['frames']} frames, {len(truth['requests'])} requests",
                  file=sys.stderr)
    return written


def select(names: list[str]) -> list[Scenario]:
    if not names:
        return SCENARIOS
    chosen = [s for s in SCENARIOS if s.name in names or set(s.captures) & set(names)]
    known = {s.name for s in SCENARIOS} | {c for s in SCENARIOS for c in s.captures}
    if unknown := set(names) - known:
        raise SystemExit(f"unknown scenario or capture: {', '.join(sorted(unknown))}")
    return chosen


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")  # unwinds through Farm.__exit__


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help="scenarios or capture names (default: all)")
    ap.add_argument("--out", type=Path, default=CAPTURES_DIR)
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args(argv)
    if args.list:
        for s in SCENARIOS:
            print(f"{s.name}: {', '.join(s.captures)}")
        return 0
    if os.geteuid() != 0:
        print("regenerate.py: must run as root (network namespaces)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _raise_interrupt)
    args.out.mkdir(parents=True, exist_ok=True)
    for scenario in select(args.names):
        with tempfile.TemporaryDirectory(prefix=f"lbl{os.getpid()}-{scenario.name}-") as tmp:
            record(scenario, args.out, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())

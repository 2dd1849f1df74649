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

import erspan  # noqa: E402
from farm import (  # noqa: E402
    DNS_NAME,  # noqa: E402
    Farm,
    FarmSpec,
    LabError,
    write_truth,
)

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
    # A folder under the output directory for captures of their own kind (captures/http/:
    # HTTP as it is; captures/anywhere/: captures not made at the classic lab's seats), read by
    # their own tests rather than the classic truth checks.
    subdir: str = ""
    # Issue 18: run on each recorded capture before it is stored (the truth is written after
    # it, from the file as stored): e.g. wrapping every frame in a mirror's tunnel.
    post: Callable[[Farm, str, Path], None] | None = None


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
    # Re-encryption: M3 decrypts, then opens TLS to Apache+mod_ssl on the backends' port 443.
    https_scenario("https-reencrypt", FarmSpec(tls=True, backend_tls=True), https_sequential(3)),
]
SCENARIOS.extend(HTTPS_SCENARIOS)


# --------------------------------------------------------------------------- issue 10
# What students' own captures hold: the host's other traffic (ssh, DNS, ping, a backend
# fetched directly), a two-NIC balancer recorded on `any`, a browser, Apache as the
# balancer, balancing policies, neighbour entries that expire mid-capture.


def capture_point(host: str) -> dict[str, str]:
    """"m3" -> its eth0; "m3@any" -> dumpcap -i any; "m3@any/LINUX_SLL2" -> and -y LINUX_SLL2.

    dumpcap records `any` as LINUX_SLL (v1) unless told; tcpdump 4.99 picks LINUX_SLL2.
    """
    name, _, rest = host.partition("@")
    iface, _, link_type = rest.partition("/")
    return {"host_name": name, **({"iface": iface} if iface else {}),
            **({"link_type": link_type} if link_type else {})}


def noise(farm: Farm) -> None:
    """3 balanced curls while the host also uses ssh to M3, ping, DNS and M1 directly."""
    m1 = farm.host("M1")
    # One ssh session lives across the whole run; a second, short one closes it.
    session = farm.spawn_in("client1", farm.ssh_cmd("uptime; sleep 2; uptime; sleep 2; uptime"))
    time.sleep(0.7)
    farm.curl(farm.url())
    time.sleep(0.3)
    farm.run_in("client1", ["ping", "-n", "-c", "2", "-i", "0.3", "-W", "2", m1.addr])
    farm.curl(farm.url())
    time.sleep(0.3)
    farm.run_in("client1", ["dig", "+tries=1", "+time=2", f"@{farm.m3.addr}", DNS_NAME])
    farm.curl(f"http://{m1.url_host}/ejemplo.html")  # M1 itself, no balancer
    time.sleep(0.3)
    farm.curl(farm.url())
    _, err = session.communicate(timeout=30)
    if session.returncode:
        raise LabError(f"ssh session failed: {err}")
    farm.run_in("client1", farm.ssh_cmd("uptime"))


def browser(farm: Farm) -> None:
    script = Path(__file__).resolve().parent / "browser.py"
    out = farm.run_in("client1", [sys.executable, str(script), farm.url()])
    print(out, end="", file=sys.stderr)


def alternate_clients(n: int, pause: float = 0.2) -> Callable[[Farm], None]:
    """n separate curls, taking turns between the clients."""

    def traffic(farm: Farm) -> None:
        for i in range(n):
            farm.curl(farm.url(), client=farm.clients[i % len(farm.clients)].name)
            time.sleep(pause)

    return traffic


def concurrent_clients(n: int, c: int) -> Callable[[Farm], None]:
    """Every client runs `ab -n n -c c` at the same time."""

    def traffic(farm: Farm) -> None:
        procs = [farm.spawn_in(cl.name, ["ab", "-q", "-n", str(n), "-c", str(c), farm.url()])
                 for cl in farm.clients]
        for p in procs:
            _, err = p.communicate(timeout=60)
            if p.returncode:
                raise LabError(f"ab failed: {err}")

    return traffic


def apache_pool(farm: Farm) -> None:
    sequential(4)(farm)
    # Apache (M3) keeps its back-leg connections pooled; the backends close them after their
    # 5 s KeepAliveTimeout: wait for those closes.
    time.sleep(6.5)


def neighbour_expiry(farm: Farm) -> None:
    """M3's entries for the backends expire between bursts: M3 asks ARP again mid-capture."""
    m3 = farm.m3
    # Short reachability (0.5-1.5 s) and no probe delay: an idle entry goes STALE fast and
    # the next use of it sends a unicast who-has (probe) before the TCP SYN goes out.
    farm.run_in("m3", ["sysctl", "-qw", f"net.ipv4.neigh.{m3.ifname}.base_reachable_time_ms=1000",
                       f"net.ipv4.neigh.{m3.ifname}.delay_first_probe_time=0"])
    resets = []
    sequential(2)(farm)  # cold: broadcast who-has for M1 and M2
    time.sleep(4)
    resets.append({"time": round(time.time(), 3), "how": "stale"})
    sequential(2)(farm)  # stale entries: M3 re-checks them (unicast who-has)
    time.sleep(1)
    resets.append({"time": round(time.time(), 3), "how": "flush"})
    farm.flush_neighbours()  # as after gc: forgotten, broadcast who-has again
    sequential(2)(farm)
    farm.extra_truth["neighbour_resets"] = resets


POLICY_CLIENTS = FarmSpec(clients=2)
ISSUE10_SCENARIOS = [
    Scenario("noise", FarmSpec(noise=True), {"noise-client": "client1", "noise-m3": "m3"},
             noise, flush=True),
    Scenario("browser", CLASSIC, {"browser-client": "client1", "browser-m3": "m3"}, browser,
             flush=True),
    Scenario("two-nics", FarmSpec(back_ipv4_prefix="10.0.0."),
             {"two-nics-client": "client1", "two-nics-m3": "m3@any/LINUX_SLL2",
              "two-nics-m3-sll": "m3@any/LINUX_SLL"}, sequential(3), flush=True),
    Scenario("weights", FarmSpec(clients=2, policy="weights", weights=(3, 1)),
             {"weights": "m3"}, alternate_clients(8)),
    Scenario("ip-hash", FarmSpec(clients=2, policy="ip-hash"), {"ip-hash": "m3"},
             alternate_clients(6)),
    Scenario("least-conn", FarmSpec(clients=2, policy="least-conn"), {"least-conn": "m3"},
             concurrent_clients(10, 3)),
    Scenario("apache-balancer", FarmSpec(balancer="apache2"), {"apache-balancer": "m3"},
             apache_pool, flush=True),
    Scenario("neighbour-expiry", CLASSIC,
             {"neighbour-expiry-client": "client1", "neighbour-expiry-m3": "m3"},
             neighbour_expiry, flush=True),
]
SCENARIOS.extend(ISSUE10_SCENARIOS)


# --------------------------------------------------------------------------- issue 19
# HTTP as it is: lost segments on a browser's keep-alive connections, uploads with
# `Expect: 100-continue`, a websocket through nginx, Varnish as a caching M3.

# The page's resources (path, bytes): from one to four segments each, the same on M1 and M2.
LOSSY_ASSETS = (
    ("/estilo.css", 3200), ("/app.js", 4500), ("/logo.svg", 2400), ("/fuentes.css", 900),
    ("/menu.js", 2000), ("/foto1.svg", 3800), ("/foto2.svg", 3000), ("/pie.css", 600),
    ("/analitica.js", 1500), ("/icono.svg", 1200), ("/datos.json", 2800),
)


def lossy_browser(farm: Farm) -> None:
    """A browser on a lossy link: 4 keep-alive connections, the page, 11 resources and the
    favicon (404) shared out over them, then a reload (304)."""
    script = Path(__file__).resolve().parent / "browser.py"
    assets = [path for path, _ in LOSSY_ASSETS] + ["/favicon.ico"]
    out = farm.run_in("client1", [sys.executable, str(script), farm.url(), "--connections", "4",
                                  *assets])
    print(out, end="", file=sys.stderr)


def form_body(size: int) -> str:
    """An application/x-www-form-urlencoded body of exactly `size` bytes."""
    head = "alumno=adizqpoz&asignatura=SWAP&practica=3&memoria="
    return head + ("lorem+ipsum+" * size)[: size - len(head)]


def uploads(farm: Farm) -> None:
    """curl uploads through nginx: POST and PUT expecting 100 Continue, a POST that does not
    (`Expect:` removed), and two POSTs on one keep-alive connection, both expecting it."""
    assert farm.rundir is not None
    files = {}
    for size in (4000, 3000, 2000, 1500):
        files[size] = farm.rundir / f"cuerpo-{size}.txt"
        files[size].write_text(form_body(size))
    expect = ("-H", "Expect: 100-continue")
    farm.curl_traced(*expect, "--data-binary", f"@{files[4000]}", farm.url("/upload"))
    time.sleep(0.2)
    farm.curl_traced(*expect, "-T", str(files[3000]), farm.url("/upload/memoria.txt"))
    time.sleep(0.2)
    farm.curl_traced("-H", "Expect:", "--data-binary", f"@{files[2000]}", farm.url("/upload"))
    time.sleep(0.2)
    farm.curl_traced(*expect, "--data-binary", f"@{files[1500]}", farm.url("/upload?parte=1"),
                     farm.url("/upload?parte=2"))


def websocket(farm: Farm) -> None:
    script = Path(__file__).resolve().parent / "wsclient.py"
    out = farm.run_in("client1", [sys.executable, str(script), farm.url()])
    print(out, end="", file=sys.stderr)
    for line in out.splitlines():
        if line.startswith("ws sent "):
            _, _, sent, _, received = line.split()
            farm.extra_truth["websocket_frames"] = {"sent": int(sent),
                                                    "received": int(received)}


def varnish(farm: Farm) -> None:
    """20 curls through Varnish, one connection each: the page 8 times (a miss, then hits),
    the favicon twice (404 cached too), /ejemplo.html?v=2 4 times (a new object), a request
    with a cookie and a POST (both passed to a backend), then the page 4 more times."""
    page = farm.url()
    urls = [page] * 8 + [farm.url("/favicon.ico")] * 2 + [farm.url("/ejemplo.html?v=2")] * 4
    for url in urls:
        farm.curl(url)
        time.sleep(0.1)
    farm.run_in("client1", ["curl", "-sS", "--max-time", "10", "-b", "sesion=alumno", page])
    time.sleep(0.1)
    farm.run_in("client1", ["curl", "-sS", "--max-time", "10", "-d", "nota=10", page])
    for _ in range(4):
        time.sleep(0.1)
        farm.curl(page)
    # Varnish keeps its backend connections; Apache closes them after its 5 s keep-alive.
    time.sleep(5.5)


ISSUE19 = "http"
ISSUE19_SCENARIOS = [
    Scenario("lossy-browser", FarmSpec(loss_every=5, assets=LOSSY_ASSETS),
             {"lossy-browser-client": "client1", "lossy-browser-m3": "m3"}, lossy_browser,
             flush=True, subdir=ISSUE19),
    Scenario("upload-100-continue", FarmSpec(upload_cgi=True),
             {"upload-100-continue-client": "client1", "upload-100-continue-m3": "m3"}, uploads,
             flush=True, subdir=ISSUE19),
    Scenario("websocket", FarmSpec(backend_server="wsserver", websocket=True),
             {"websocket-client": "client1", "websocket-m3": "m3"}, websocket, flush=True,
             subdir=ISSUE19),
    Scenario("varnish", FarmSpec(balancer="varnish"),
             {"varnish-client": "client1", "varnish-m3": "m3"}, varnish, flush=True,
             subdir=ISSUE19),
]
SCENARIOS.extend(ISSUE19_SCENARIOS)


# --------------------------------------------------------------------------- issue 18
# A capture from anywhere: web servers behind one gateway MAC with no balancer, the farm over
# a VXLAN overlay, an ERSPAN mirror of M3's port, a farm on one namespace's loopback, two
# balancers on one switch, a client writing its own X-Forwarded-For behind a router, an IPv6
# front with an IPv4 back, haproxy at layer 4 seen from a backend.


def web_browsing(farm: Farm) -> None:
    """A client fetching four sites (each its own web server, all behind the router): a page
    and its stylesheet on one connection, single pages, a 404, the first site again."""
    def fetch(server: str, *paths: str) -> None:
        args = farm.site_url(server, paths[0])
        farm.curl(*args, *[farm.site_url(server, p)[-1] for p in paths[1:]])
        time.sleep(0.2)

    fetch("s1", "/", "/estilo.css")
    fetch("s2", "/")
    fetch("s3", "/", "/no-existe.html")
    fetch("s4", "/")
    fetch("s1", "/")


def erspan_mirror(farm: Farm, capture: str, path: Path) -> None:
    """M3's port mirrored by a switch: every frame of M3's capture inside ERSPAN type II."""
    mirror = erspan.Mirror()
    erspan.wrap_file(path, path, mirror)
    farm.extra_truth["tunnel"] = mirror.truth(farm.finished_captures[capture][1].role)


def two_farms(farm: Farm) -> None:
    """Two farms on one switch, taking turns: 4 curls through nginx (client .1), 3 through
    haproxy (client .2)."""
    other = farm.other
    assert other is not None
    for i in range(7):
        f = farm if i % 2 == 0 else other
        f.curl(f.url())
        time.sleep(0.2)
    # haproxy keeps its server connections idle; Apache closes them after 5 s: record it.
    time.sleep(6)


def own_forwarded_for(farm: Farm) -> None:
    """The client writes its own X-Forwarded-For: three well-formed, one malformed."""
    for value in ["203.0.113.9"] * 3 + ["10.000.000.03"]:
        farm.curl("-H", f"X-Forwarded-For: {value}", farm.url())
        time.sleep(0.2)


ISSUE18 = "anywhere"
LOOPBACK = dict(loopback=True, client_hosts=(1,), balancer_host=1, backend_hosts=(1, 1))
ISSUE18_SCENARIOS = [
    Scenario("gateway-client",
             FarmSpec(balancer="none", backend_server="nginx", router=True, client_hosts=(15,),
                      server_addrs=("198.51.100.10", "203.0.113.20", "192.0.2.30",
                                    "198.18.7.40")),
             {"gateway-client": "client1"}, web_browsing, subdir=ISSUE18),
    Scenario("vxlan-mirror", FarmSpec(vxlan=True),
             {"vxlan-mirror": "m3", "vxlan-mirror-client": "client1"}, sequential(3),
             flush=True, subdir=ISSUE18),
    Scenario("erspan-mirror", CLASSIC, {"erspan-mirror": "m3"}, sequential(3), flush=True,
             subdir=ISSUE18, post=erspan_mirror),
    Scenario("loopback-farm", FarmSpec(**LOOPBACK, ipv4_prefix="127.0.0."),
             {"loopback-farm": "m3@lo"}, sequential(4), subdir=ISSUE18),
    Scenario("loopback-farm-v6", FarmSpec(**LOOPBACK, ipv4_prefix=None, ipv6_prefix="::"),
             {"loopback-farm-v6": "m3@lo"}, sequential(4), subdir=ISSUE18),
    Scenario("two-proxies",
             FarmSpec(second_farm=FarmSpec(balancer="haproxy", client_hosts=(2,),
                                           balancer_host=113, backend_hosts=(111, 112),
                                           backend_numbers=(4, 5), mac_offset=512)),
             {"two-proxies": "switch@br0"}, two_farms, flush=True, subdir=ISSUE18),
    Scenario("client-own-xff",
             FarmSpec(router=True, client_hosts=(15,), log_forwarded_for=True),
             {"client-own-xff-client": "client1", "client-own-xff-m3": "m3"}, own_forwarded_for,
             flush=True, subdir=ISSUE18),
    Scenario("ipv6-front", FarmSpec(ipv6_prefix="fd00:56::", front_ipv6=True),
             {"ipv6-front-m3": "m3", "ipv6-front-client": "client1"}, sequential(3),
             flush=True, subdir=ISSUE18),
    Scenario("l4-backend", FarmSpec(balancer="haproxy", balancer_mode="tcp"),
             {"l4-backend": "m2"}, sequential(6), subdir=ISSUE18),
]
SCENARIOS.extend(ISSUE18_SCENARIOS)


def record(scenario: Scenario, out_dir: Path, workdir: Path) -> list[Path]:
    """Build the scenario's farm, record it, write its captures and truth files to out_dir."""
    written = []
    out_dir = out_dir / scenario.subdir
    out_dir.mkdir(parents=True, exist_ok=True)
    with Farm(scenario.spec, workdir) as farm:
        farm.warm_neighbours()
        if scenario.flush:
            farm.flush_neighbours()
        for capture, host in scenario.captures.items():
            farm.start_capture(capture, **capture_point(host))
        scenario.traffic(farm)
        farm.stop_captures(settle=scenario.settle)
        for capture in scenario.captures:
            src, _ = farm.finished_captures[capture]
            if scenario.post:
                scenario.post(farm, capture, src)
            if src.stat().st_size > MAX_CAPTURE_BYTES:
                raise LabError(f"{capture}: {src.stat().st_size} bytes, over 2 MB")
            dest = out_dir / src.name
            shutil.copyfile(src, dest)
            dest.chmod(0o644)
            truth = farm.truth(capture, scenario.name)
            if scenario.subdir == ISSUE18:  # what the capture shows: before the requests
                requests = truth.pop("requests")
                truth.update(visible_roles=farm.visible_roles(dest), requests=requests)
            if farm.keylog is not None:  # HTTPS: the client's TLS secrets beside the capture
                keys = out_dir / truth["keylog"]
                keys.write_text(farm.tls_secrets())
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

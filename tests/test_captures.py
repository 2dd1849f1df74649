"""Every reference capture agrees with its ground truth (real tshark, no plugin).

The truth comes from the balancer's access log; these checks read the capture with plain
tshark fields and compare. `check_capture()` is also used by test_lab_e2e.py on a fresh farm.
"""

from __future__ import annotations

import copy
import functools
import ipaddress
import json
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CAPTURES = Path(__file__).resolve().parent.parent / "captures"
TRUTH_FILES = sorted(CAPTURES.glob("*.truth.json"))
TRUTH_KEYS = {"capture", "scenario", "balancer", "backend_server", "capture_point", "roles",
              "http_port", "frames", "markers", "health_checks", "requests"}
REQUEST_KEYS = {"client", "method", "uri", "status", "backend", "upstreams",
                "upstream_statuses", "start", "request_time"}
# HTTPS captures (the truth names a key log): these keys too, in the file and in each request.
TLS_TRUTH_KEYS = {"https_port", "keylog"}
TLS_REQUEST_KEYS = {"scheme", "http_version", "tls_protocol"}
# Statuses the balancer makes up itself when an upstream refused or timed out.
GATEWAY_ERRORS = {"502", "503", "504"}
# Requests further apart than this at the balancer must appear in that order on the wire.
ORDER_SLACK = 0.005

Truth = dict[str, Any]

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")


# --------------------------------------------------------------------------- tshark


def tshark(pcap: Path, dfilter: str, *fields: str, keylog: Path | None = None
           ) -> list[list[str]]:
    cmd = ["tshark", "-n", "-r", str(pcap), "-Y", dfilter, "-T", "fields",
           "-E", "separator=\t", "-E", "occurrence=f"]
    if keylog is not None:  # HTTPS: decrypt with the client's key log
        cmd += ["-o", f"tls.keylog_file:{keylog}"]
    for f in fields:
        cmd += ["-e", f]
    proc = subprocess.run(cmd, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    # tshark escapes non-ASCII bytes of text fields: compare on the ASCII part only.
    out = proc.stdout.decode("utf-8", errors="replace")
    return [line.split("\t") for line in out.splitlines()]


def addr_filter(direction: str, addrs: list[str]) -> str:
    """`ip.src==a or ipv6.src==b`, for addresses of either family."""
    terms = [f"{'ipv6' if ':' in a else 'ip'}.{direction}=={a}" for a in addrs]
    return "(" + " or ".join(terms or ["frame.number==0"]) + ")"


def fmt_client(ip: str, port: str) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def ascii_only(text: str) -> str:
    return "".join(ch for ch in text if ch.isascii())


# --------------------------------------------------------------------------- the capture's view


@dataclass
class Exchange:
    """One HTTP request or response on the wire."""

    client: str  # ip:port of the connection's client side
    value: str  # method+uri, or status
    body: str = ""
    xff: str = ""
    # HTTPS captures: "http"/"https" (by port), "1.1"/"2", and the request's URI (for HTTP/2,
    # whose streams are in flight together, a response is matched to its request by it).
    scheme: str = ""
    version: str = ""
    uri: str = ""


@dataclass
class View:
    frames: int
    addresses: set[str]
    front_requests: list[Exchange]
    front_responses: list[Exchange]
    back_requests: dict[str, list[Exchange]]  # backend role -> requests M3 sent it
    back_responses: dict[str, list[Exchange]]
    refused: Counter  # backend role -> RSTs it sent M3 (connection refused)
    neighbour_asks: set[str]  # addresses M3 asked for with ARP who-has / ND solicitation


def backend_roles(truth: Truth) -> list[str]:
    return [r for r in truth["roles"] if r not in ("client", "M3")]


FIELDS = ("ip.src", "ipv6.src", "ip.dst", "ipv6.dst", "tcp.srcport", "tcp.dstport",
          "tcp.flags.reset", "http.request.method", "http.request.uri", "http.response.code",
          "http.x_forwarded_for", "http.file_data", "arp.opcode", "arp.src.proto_ipv4",
          "arp.dst.proto_ipv4", "icmpv6.type", "icmpv6.nd.ns.target_address",
          "http.request.version", "http.response.version")


@dataclass(frozen=True)
class Frame:
    src: str
    dst: str
    sport: str
    dport: str
    rst: bool
    method: str
    uri: str
    code: str
    xff: str
    body: str
    arp_op: str
    arp_sender: str
    arp_target: str
    icmpv6_type: str
    ns_target: str
    req_version: str
    resp_version: str


@functools.cache
def frames_of(pcap: Path, keylog: Path | None = None) -> tuple[Frame, ...]:
    """Every frame's facts, in one tshark pass (the checks only filter these in Python)."""
    out = []
    for r in tshark(pcap, "frame", *FIELDS, keylog=keylog):
        r += [""] * (len(FIELDS) - len(r))
        out.append(Frame(r[0] or r[1], r[2] or r[3], r[4], r[5], r[6] in ("1", "True"),
                         r[7], r[8], r[9], r[10], ascii_only(r[11]), *r[12:19]))
    return tuple(out)


@dataclass
class H2Message:
    """One HTTP/2 stream's request or response (HEADERS, then the DATA of that stream)."""

    frame: int
    src: str
    dst: str
    sport: str
    dport: str
    stream: str
    method: str = ""
    path: str = ""
    status: str = ""
    body: bytearray = field(default_factory=bytearray)


def as_list(x: Any) -> list[Any]:
    return x if isinstance(x, list) else [] if x is None else [x]


@functools.cache
def h2_messages(pcap: Path, keylog: Path) -> tuple[H2Message, ...]:
    """HTTP/2 requests and responses decrypted with the key log, in frame order."""
    cmd = ["tshark", "-n", "-r", str(pcap), "-o", f"tls.keylog_file:{keylog}", "-Y", "http2",
           "-T", "json", "--no-duplicate-keys", "-J", "frame ip ipv6 tcp http2"]
    proc = subprocess.run(cmd, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    out: list[H2Message] = []
    open_streams: dict[tuple[str, str, str, str, str], H2Message] = {}
    for packet in json.loads(proc.stdout or b"[]"):
        layers = packet["_source"]["layers"]
        ip, tcp = layers.get("ip") or layers.get("ipv6"), layers["tcp"]
        ipv = "ip" if "ip" in layers else "ipv6"
        where = (ip[f"{ipv}.src"], ip[f"{ipv}.dst"], tcp["tcp.srcport"], tcp["tcp.dstport"])
        for layer in as_list(layers.get("http2")):
            for st in as_list(layer.get("http2.stream")):
                sid, kind = st.get("http2.streamid", "0"), st.get("http2.type")
                key = (*where, sid)
                if kind == "1":  # HEADERS: a request (:method, :path) or a response (:status)
                    hdrs: dict[str, str] = {}
                    for h in as_list(st.get("http2.header")):
                        hdrs.update({k: v for k, v in h.items() if k.startswith("http2.headers.")})
                    msg = H2Message(int(layers["frame"]["frame.number"]), *where, sid,
                                    hdrs.get("http2.headers.method", ""),
                                    hdrs.get("http2.headers.path", ""),
                                    hdrs.get("http2.headers.status", ""))
                    out.append(msg)
                    open_streams[key] = msg
                elif kind == "0" and key in open_streams and st.get("http2.data.data"):
                    open_streams[key].body += bytes.fromhex(
                        st["http2.data.data"].replace(":", ""))
    return tuple(out)


def keylog_of(truth: Truth, pcap: Path) -> Path | None:
    """The key log committed beside an HTTPS capture (None for plain HTTP captures)."""
    return pcap.with_name(truth["keylog"]) if "keylog" in truth else None


def view(truth: Truth, pcap: Path, decrypt: bool = True) -> View:
    roles, port = truth["roles"], str(truth["http_port"])
    # HTTPS captures: the front leg is on the TLS port too (and on the HTTP port for redirects).
    https = str(truth.get("https_port", ""))
    front_ports = {port, https} - {""}
    keylog = keylog_of(truth, pcap) if decrypt else None
    m3 = set(roles["M3"])
    frames = frames_of(pcap, keylog)
    http = [f for f in frames if f.method or f.code]
    scheme = {port: "http", https: "https"}
    # (frame number, exchange), so HTTP/1 and HTTP/2 exchanges keep their order on the wire.
    req_at = [(i, Exchange(fmt_client(f.src, f.sport), f"{f.method} {f.uri}",
                           scheme=scheme[f.dport], version=f.req_version.removeprefix("HTTP/"),
                           uri=f.uri))
              for i, f in enumerate(frames, 1)
              if f.method and f.dst in m3 and f.dport in front_ports]
    resp_at = [(i, Exchange(fmt_client(f.dst, f.dport), f.code, f.body, scheme=scheme[f.sport],
                            version=f.resp_version.removeprefix("HTTP/")))
               for i, f in enumerate(frames, 1)
               if f.code and f.src in m3 and f.sport in front_ports]
    if keylog is not None:
        uris = {}
        for m in h2_messages(pcap, keylog):
            if m.method and m.dst in m3 and m.dport in front_ports:
                client = fmt_client(m.src, m.sport)
                uris[(client, m.stream)] = m.path
                req_at.append((m.frame, Exchange(client, f"{m.method} {m.path}",
                                                 scheme=scheme[m.dport], version="2",
                                                 uri=m.path)))
            elif m.status and m.src in m3 and m.sport in front_ports:
                client = fmt_client(m.dst, m.dport)
                body = ascii_only(m.body.decode("utf-8", errors="replace"))
                resp_at.append((m.frame, Exchange(client, m.status, body, scheme=scheme[m.sport],
                                                  version="2",
                                                  uri=uris.get((client, m.stream), ""))))
    front_req = [e for _, e in sorted(req_at, key=lambda x: x[0])]
    front_resp = [e for _, e in sorted(resp_at, key=lambda x: x[0])]
    back_req: dict[str, list[Exchange]] = {}
    back_resp: dict[str, list[Exchange]] = {}
    refused: Counter = Counter()
    for role in backend_roles(truth):
        b = set(roles[role])
        back_req[role] = [Exchange(fmt_client(f.src, f.sport), f"{f.method} {f.uri}", xff=f.xff)
                          for f in http if f.method and f.src in m3 and f.dst in b]
        back_resp[role] = [Exchange(fmt_client(f.dst, f.dport), f.code, f.body)
                           for f in http if f.code and f.src in b and f.dst in m3]
        refused[role] = sum(1 for f in frames
                            if f.rst and f.sport == port and f.src in b and f.dst in m3)
    asks = {f.arp_target for f in frames if f.arp_op == "1" and f.arp_sender in m3}
    asks |= {f.ns_target for f in frames if f.icmpv6_type == "135" and f.src in m3}
    addresses = {a for f in frames for a in (f.src, f.dst) if a}
    return View(len(frames), addresses, front_req, front_resp, back_req, back_resp, refused,
                asks)


# --------------------------------------------------------------------------- the checks


def point_kind(truth: Truth) -> str:
    """client, M3 or backend: what part of the farm's traffic the capture point sees."""
    point = truth["capture_point"]
    return point if point in ("client", "M3") else "backend"


def expected_front(truth: Truth) -> list[Truth]:
    return truth["requests"] if point_kind(truth) != "backend" else []


def expected_back(truth: Truth, role: str) -> list[Truth]:
    """Requests a backend answered, if the capture point sees that back leg."""
    kind = point_kind(truth)
    if kind == "client" or (kind == "backend" and truth["capture_point"] != role):
        return []
    return [r for r in truth["requests"] if r["backend"] == role]


def with_index(items: list[tuple[str, str]]) -> list[tuple[str, int, str]]:
    """(client, value) -> (client, n-th exchange on that client connection, value)."""
    seen: Counter = Counter()
    out = []
    for client, value in items:
        out.append((client, seen[client], value))
        seen[client] += 1
    return out


def conn_key(client: str, uri: str, version: str | None) -> str:
    """Exchanges on one connection follow each other, except HTTP/2 streams (in flight
    together): those are told apart by URI (the HTTP/2 capture asks for distinct URIs)."""
    return f"{client} {uri}" if version == "2" else client


def tls_facts(truth: Truth) -> bool:
    """HTTPS captures also compare scheme and HTTP version with the wire."""
    return "keylog" in truth


def check_shape(truth: Truth, pcap: Path) -> None:
    # Issue 10's optional keys are checked by check_issue10_keys; the rest must match exactly.
    truth = {k: v for k, v in truth.items() if k not in ISSUE10_TRUTH_KEYS}
    tls = tls_facts(truth)
    assert set(truth) == TRUTH_KEYS | (TLS_TRUTH_KEYS if tls else set()), (
        f"truth keys: {sorted(truth)}")
    assert truth["capture"] == pcap.name
    assert truth["capture_point"] in truth["roles"]
    assert truth["balancer"] in ("nginx", "haproxy", "apache2")
    assert truth["backend_server"] in ("apache2", "nginx")
    starts = [r["start"] for r in truth["requests"]]
    assert starts == sorted(starts), "requests not sorted by arrival at the balancer"
    all_addrs = [a for addrs in truth["roles"].values() for a in addrs]
    assert len(all_addrs) == len(set(all_addrs)), "an address has two roles"
    for r in truth["requests"]:
        assert set(r) == REQUEST_KEYS | (TLS_REQUEST_KEYS if tls else set()), (
            f"request keys: {sorted(r)}")
        assert len(r["upstreams"]) == len(r["upstream_statuses"])
        assert r["backend"] is None or r["backend"] == r["upstreams"][-1]
        assert set(r["upstreams"]) <= set(backend_roles(truth))
    assert set(truth["markers"]) == set(backend_roles(truth))
    assert pcap.stat().st_size < 2 * 1024 * 1024


def check_frames(truth: Truth, pcap: Path) -> None:
    assert view(truth, pcap).frames == truth["frames"]


def check_roles(truth: Truth, pcap: Path) -> None:
    """The role addresses the capture point can see are on the wire, the others are not."""
    seen = {a for a in view(truth, pcap).addresses if not a.startswith(("fe80:", "ff0"))}
    roles, kind = truth["roles"], point_kind(truth)
    used_backends = {u for r in truth["requests"] for u in r["upstreams"]}
    if kind == "client":
        # M3's first address is the one clients use (a two-NIC M3's back one is not seen);
        # backends the client fetched or pinged directly are seen too.
        visible = set(roles["client"]) | {roles["M3"][0]} | direct_backend_addrs(truth)
    elif kind == "M3":
        visible = {a for role, addrs in roles.items()
                   if role in ("client", "M3") or role in used_backends for a in addrs}
    else:
        visible = set(roles["M3"]) | set(roles[truth["capture_point"]])
    assert visible <= seen, f"role addresses missing from the capture: {visible - seen}"
    all_role_addrs = {a for addrs in roles.values() for a in addrs}
    assert seen <= all_role_addrs, f"addresses without a role: {seen - all_role_addrs}"
    hidden = {a for role, addrs in roles.items() for a in addrs} - visible
    if kind != "M3":
        assert not (hidden & seen), f"addresses this point cannot see: {hidden & seen}"


def check_front_requests(truth: Truth, pcap: Path) -> None:
    tls = tls_facts(truth)
    got = Counter((e.client, e.value, *((e.scheme, e.version) if tls else ()))
                  for e in view(truth, pcap).front_requests)
    want = Counter((r["client"], f"{r['method']} {r['uri']}",
                    *((r["scheme"], r["http_version"]) if tls else ()))
                   for r in expected_front(truth))
    assert got == want, f"front-leg requests: capture-only {got - want}, truth-only {want - got}"


def check_front_responses(truth: Truth, pcap: Path) -> None:
    tls = tls_facts(truth)
    got = Counter((e.client, e.value, *((e.scheme, e.version) if tls else ()))
                  for e in view(truth, pcap).front_responses)
    want = Counter((r["client"], str(r["status"]),
                    *((r["scheme"], r["http_version"]) if tls else ()))
                   for r in expected_front(truth))
    assert got == want, f"front-leg responses: capture-only {got - want}, truth-only {want - got}"


def check_order(truth: Truth, pcap: Path) -> None:
    """Requests clearly apart in time at the balancer reach it in the same order on the wire."""
    wire = with_index([(conn_key(e.client, e.uri, e.version), "")
                       for e in view(truth, pcap).front_requests])
    pos = {(c, n): i for i, (c, n, _) in enumerate(wire)}
    reqs = expected_front(truth)
    keys = with_index([(conn_key(r["client"], r["uri"], r.get("http_version")), "")
                       for r in reqs])
    for i, a in enumerate(reqs):
        for j in range(i + 1, len(reqs)):
            if reqs[j]["start"] - a["start"] > ORDER_SLACK:
                ka, kb = keys[i][:2], keys[j][:2]
                assert pos[ka] < pos[kb], f"request {ka} reached M3 after {kb} on the wire"


def check_back_leg(truth: Truth, pcap: Path) -> None:
    """Each backend got exactly the requests the truth says it answered, for those clients."""
    v = view(truth, pcap)
    for role in backend_roles(truth):
        want = expected_back(truth, role)
        got_req, got_resp = v.back_requests[role], v.back_responses[role]
        if truth["health_checks"]:
            # The balancer's checks carry no X-Forwarded-For and are not in its access log.
            got_req = [e for e in got_req if e.xff]
            served = {e.client for e in got_req}
            got_resp = [e for e in got_resp if e.client in served]
        assert len(got_req) == len(want), f"{role}: {len(got_req)} requests, truth {len(want)}"
        assert len(got_resp) == len(want), f"{role}: {len(got_resp)} back-leg responses"
        # X-Forwarded-For carries the client address the balancer saw.
        want_ips = Counter(r["client"].rsplit(":", 1)[0].strip("[]") for r in want)
        assert Counter(e.xff for e in got_req) == want_ips, f"{role}: X-Forwarded-For differs"
        marker = ascii_only(truth["markers"][role])
        # Only 200s with a body name their backend (not HEAD, 304, 404...).
        named = sum(marker in e.body for e in got_resp)
        assert named == sum(names_backend(r) for r in want), f"{role}: {named} marked responses"


def check_refused(truth: Truth, pcap: Path) -> None:
    """Failover attempts that were refused show as RSTs from that backend (seen from M3)."""
    if point_kind(truth) != "M3":
        return
    want: Counter = Counter()
    for r in truth["requests"]:
        for up, st in zip(r["upstreams"], r["upstream_statuses"], strict=True):
            if st in GATEWAY_ERRORS:
                want[up] += 1
    got = view(truth, pcap).refused
    for role in backend_roles(truth):
        assert got[role] == want[role], f"{role}: {got[role]} refusals, truth {want[role]}"


def check_markers(truth: Truth, pcap: Path) -> None:
    """Each front-leg response names the backend the truth says answered it."""
    v = view(truth, pcap)
    wire = {(c, n): body for c, n, body in with_index([(conn_key(e.client, e.uri, e.version),
                                                         e.body) for e in v.front_responses])}
    markers = {role: ascii_only(m) for role, m in truth["markers"].items()}
    reqs = expected_front(truth)
    keyed = [(conn_key(r["client"], r["uri"], r.get("http_version")), "") for r in reqs]
    for (client, n, _), r in zip(with_index(keyed), reqs, strict=True):
        body = wire.get((client, n), "")
        named = [role for role, m in markers.items() if m in body]
        assert named == ([r["backend"]] if names_backend(r) else []), (
            f"{client} #{n}: the response names {named}, truth says {r['backend']}")


def check_neighbours(truth: Truth, pcap: Path) -> None:
    """M3 asks (ARP who-has / ND) for every backend it first contacts: the farm starts cold."""
    if truth["health_checks"]:
        return  # the balancer's checks warmed its neighbour cache before the capture began
    asked = view(truth, pcap).neighbour_asks
    used = {u for r in truth["requests"] for u in r["upstreams"]}
    for role in used:
        addr = truth["roles"][role][0]
        if point_kind(truth) != "M3" and not same_network(
                truth["roles"][truth["capture_point"]][0], addr):
            continue  # a two-NIC M3 asks on its back network: other hosts never see it
        assert addr in asked, f"no ARP/ND from M3 for {role} ({addr})"


TLS_VERSIONS = {"0x0301": "TLSv1", "0x0302": "TLSv1.1", "0x0303": "TLSv1.2", "0x0304": "TLSv1.3"}


def check_tls(truth: Truth, pcap: Path) -> None:
    """HTTPS captures: the https requests are encrypted (invisible without the key log), each
    TLS connection negotiated the truth's TLS version, the plain http ones had no TLS."""
    if not tls_facts(truth):
        return
    keylog = keylog_of(truth, pcap)
    assert keylog is not None and keylog.is_file(), f"no key log {truth['keylog']}"
    text = keylog.read_text()
    assert "PRIVATE KEY" not in text and text.split()[0] in (
        "CLIENT_RANDOM", "CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_HANDSHAKE_TRAFFIC_SECRET"), (
        "not an NSS key log")
    reqs = expected_front(truth)
    # Without the key log tshark sees only the plain http requests.
    plain = Counter(e.client for e in view(truth, pcap, decrypt=False).front_requests)
    assert plain == Counter(r["client"] for r in reqs if r["scheme"] == "http"), (
        f"readable without the key log: {plain}")
    m3 = truth["roles"]["M3"]
    hellos = {}
    for ip, ip6, port, version, supported in tshark(
            pcap, f"tls.handshake.type == 2 and {addr_filter('src', m3)}",
            "ip.dst", "ipv6.dst", "tcp.dstport", "tls.handshake.version",
            "tls.handshake.extensions.supported_version"):
        hellos[fmt_client(ip or ip6, port)] = TLS_VERSIONS.get(supported or version, version)
    for r in reqs:
        want = r["tls_protocol"] if r["scheme"] == "https" else None
        assert hellos.get(r["client"]) == want, (
            f"{r['client']}: ServerHello {hellos.get(r['client'])}, truth {want}")


CHECKS = [check_shape, check_frames, check_roles, check_front_requests, check_front_responses,
          check_order, check_back_leg, check_refused, check_markers, check_neighbours,
          check_tls]


# --------------------------------------------------------------------------- issue 10
# What students' captures hold: other traffic (ssh, DNS, ICMP, a backend fetched directly),
# a two-NIC M3 on `any`, a browser, Apache as M3, policies, neighbour entries expiring.

ISSUE10_TRUTH_KEYS = {"policy", "weights", "capture_interface", "link_type",
                      "direct_requests", "other_traffic", "neighbour_resets"}
POLICIES = {"round-robin", "weights", "ip-hash", "least-conn"}
DIRECT_KEYS = {"client", "backend", "method", "uri", "status", "start"}
# The truth writer's display filters (farm.other_traffic_filters), written out again here.
OTHER_FILTERS = {"ssh": "tcp.port == 22", "dns": "udp.port == 53", "icmp": "icmp", "arp": "arp",
                 "direct": "tcp.port == {port} and not ({via_m3})"}
LINK_TYPES = {"ether": "EN10MB", "linux-sll": "LINUX_SLL", "linux-sll2": "LINUX_SLL2"}
ISSUE10_CAPTURES = {"noise-client", "noise-m3", "browser-client", "browser-m3",
                    "two-nics-client", "two-nics-m3", "two-nics-m3-sll", "weights", "ip-hash",
                    "least-conn", "apache-balancer", "neighbour-expiry-client",
                    "neighbour-expiry-m3"}


def names_backend(r: Truth) -> bool:
    """Whether the response's body names its backend: a 200 with a body (HEAD, 304 have none;
    error pages carry no marker)."""
    return bool(r["backend"]) and r["status"] == 200 and r["method"] != "HEAD"


def direct_backend_addrs(truth: Truth) -> set[str]:
    """Backends the client talked to directly (fetch, ping): their address reaches it."""
    return {truth["roles"][d["backend"]][0] for d in truth.get("direct_requests", [])}


def same_network(a: str, b: str) -> bool:
    net = ipaddress.ip_network(f"{a}/{64 if ':' in a else 24}", strict=False)
    return ipaddress.ip_address(b) in net


def via_m3(truth: Truth) -> str:
    return " or ".join(f"{'ipv6' if ':' in a else 'ip'}.addr == {a}" for a in truth["roles"]["M3"])


def count(pcap: Path, dfilter: str) -> int:
    return len(tshark(pcap, dfilter, "frame.number"))


def check_issue10_keys(truth: Truth, pcap: Path) -> None:
    """Issue 10's optional keys are well formed (check_shape leaves them out)."""
    assert truth.get("policy", "round-robin") in POLICIES
    if truth.get("policy") == "weights":
        assert len(truth["weights"]) == len(backend_roles(truth))
    if "link_type" in truth:
        assert truth["link_type"] in LINK_TYPES.values()
        assert truth["capture_interface"]
    direct = truth.get("direct_requests", [])
    assert [d["start"] for d in direct] == sorted(d["start"] for d in direct)
    for d in direct:
        assert set(d) == DIRECT_KEYS, f"direct request keys: {sorted(d)}"
        assert d["backend"] in backend_roles(truth)
    if "other_traffic" in truth:
        assert set(truth["other_traffic"]) == set(OTHER_FILTERS)
    for reset in truth.get("neighbour_resets", []):
        assert set(reset) == {"time", "how"} and reset["how"] in ("stale", "flush")


def check_link_type(truth: Truth, pcap: Path) -> None:
    """The link-layer header type the truth names (Ethernet, Linux cooked v1/v2)."""
    if "link_type" not in truth:
        return
    out = subprocess.run(["capinfos", "-E", "-T", "-r", str(pcap)], capture_output=True,
                         text=True, check=True).stdout.strip().split("\t")[-1]
    assert LINK_TYPES.get(out, out) == truth["link_type"]


def check_direct(truth: Truth, pcap: Path) -> None:
    """Requests straight to a backend (not through M3): exactly the backend logs' ones, where
    the capture point can see them (the client that made them, or that backend)."""
    if "direct_requests" not in truth:
        return
    roles, port = truth["roles"], str(truth["http_port"])
    m3 = set(roles["M3"])
    role_of = {a: role for role, addrs in roles.items() for a in addrs}
    frames = frames_of(pcap)
    got_req = Counter((fmt_client(f.src, f.sport), role_of.get(f.dst), f"{f.method} {f.uri}")
                      for f in frames if f.method and f.dport == port
                      and f.src not in m3 and f.dst not in m3)
    got_resp = Counter((fmt_client(f.dst, f.dport), role_of.get(f.src), f.code)
                       for f in frames if f.code and f.sport == port
                       and f.src not in m3 and f.dst not in m3)
    want = [d for d in truth["direct_requests"]
            if point_kind(truth) == "client" or truth["capture_point"] == d["backend"]]
    assert got_req == Counter((d["client"], d["backend"], f"{d['method']} {d['uri']}")
                              for d in want), f"direct requests on the wire: {got_req}"
    assert got_resp == Counter((d["client"], d["backend"], str(d["status"])) for d in want), (
        f"direct responses on the wire: {got_resp}")


def check_other_traffic(truth: Truth, pcap: Path) -> None:
    """Frames of each other kind as the truth counts them, and nothing of no known kind."""
    if "other_traffic" not in truth:
        return
    port = truth["http_port"]
    got = {kind: count(pcap, f.format(port=port, via_m3=via_m3(truth)))
           for kind, f in OTHER_FILTERS.items()}
    assert got == truth["other_traffic"], f"other traffic: {got}"
    balanced = count(pcap, f"tcp.port == {port} and ({via_m3(truth)})")
    assert balanced + sum(got.values()) == truth["frames"], "frames of no known kind"


def check_policy(truth: Truth, pcap: Path) -> None:
    """The back legs M3 sent (per client, by X-Forwarded-For) follow the truth's policy."""
    policy = truth.get("policy")
    if policy is None or point_kind(truth) != "M3":
        return
    v = view(truth, pcap)
    served = {role: Counter(e.xff for e in v.back_requests[role] if e.xff)
              for role in backend_roles(truth)}
    totals = {role: sum(c.values()) for role, c in served.items()}
    n = sum(totals.values())
    if policy == "weights":
        weights = dict(zip(backend_roles(truth), truth["weights"], strict=True))
        for role, w in weights.items():
            share = n * w / sum(weights.values())
            assert abs(totals[role] - share) <= 1, f"{role}: {totals[role]} of {n}, weight {w}"
    elif policy == "ip-hash":
        for ip in {ip for c in served.values() for ip in c}:
            by = [role for role, c in served.items() if c[ip]]
            assert len(by) == 1, f"ip_hash: {ip} went to {by}"
    elif policy == "least-conn":
        assert all(totals.values()), f"least_conn left a backend idle: {totals}"
    else:
        failover = truth["health_checks"] or any(
            len(r["upstreams"]) != 1 or r["backend"] is None for r in truth["requests"])
        if not failover:
            assert max(totals.values()) - min(totals.values()) <= 1, f"round robin: {totals}"


def check_neighbour_resets(truth: Truth, pcap: Path) -> None:
    """After each time M3's neighbour entries expired (stale) or were flushed, M3 asks ARP
    again for every backend it then uses; the client only sees the broadcast (flush) ones."""
    resets = truth.get("neighbour_resets", [])
    if not resets:
        return
    m3 = truth["roles"]["M3"]
    sender = " or ".join(f"arp.src.proto_ipv4 == {a}" for a in m3)
    asks = [(float(t), target) for t, target in
            tshark(pcap, f"arp.opcode == 1 and ({sender})", "frame.time_epoch",
                   "arp.dst.proto_ipv4")]
    for i, reset in enumerate(resets):
        if point_kind(truth) != "M3" and reset["how"] != "flush":
            continue  # a stale entry is re-checked by unicast: only that backend sees it
        end = resets[i + 1]["time"] if i + 1 < len(resets) else float("inf")
        used = {r["backend"] for r in truth["requests"]
                if r["backend"] and reset["time"] <= r["start"] < end}
        assert used, f"no request after the {reset['how']} at {reset['time']}"
        for role in used:
            addr = truth["roles"][role][0]
            assert any(reset["time"] <= t < end and target == addr for t, target in asks), (
                f"no ARP from M3 for {role} after the {reset['how']} at {reset['time']}")


ISSUE10_CHECKS = [check_issue10_keys, check_link_type, check_direct, check_other_traffic,
                  check_policy, check_neighbour_resets]


def test_issue10_captures_are_there() -> None:
    names = {p.name.removesuffix(".truth.json") for p in TRUTH_FILES}
    assert names >= ISSUE10_CAPTURES


def swap_m3_addresses(t: Truth) -> None:
    t["roles"]["M3"].reverse()


def other_backend(t: Truth, i: int = 0) -> None:
    r = t["requests"][i]
    b = "M2" if r["backend"] == "M1" else "M1"
    r.update(backend=b, upstreams=[b])


# Wrong truths each issue-10 check must reject: (capture, check, mutation).
ISSUE10_MUTATIONS = {
    "direct status": ("noise-client", check_direct,
                      lambda t: t["direct_requests"][0].update(status=404)),
    "direct backend": ("noise-client", check_direct,
                       lambda t: t["direct_requests"][0].update(backend="M2")),
    "direct lost": ("noise-client", check_direct, lambda t: t["direct_requests"].clear()),
    "ssh frames": ("noise-m3", check_other_traffic,
                   lambda t: t["other_traffic"].update(ssh=t["other_traffic"]["ssh"] + 1)),
    "icmp frames": ("noise-client", check_other_traffic,
                    lambda t: t["other_traffic"].update(icmp=0)),
    "noise roles": ("noise-client", check_roles, lambda t: t["direct_requests"].clear()),
    "policy": ("weights", check_policy, lambda t: t.update(policy="ip-hash")),
    "weights": ("weights", check_policy, lambda t: t.update(weights=[1, 1])),
    "ip-hash as rr": ("ip-hash", check_policy, lambda t: t.update(policy="round-robin")),
    "rr as weights": ("noise-m3", check_policy, lambda t: t.update(policy="weights",
                                                                    weights=[1, 3])),
    "link type": ("two-nics-m3", check_link_type, lambda t: t.update(link_type="LINUX_SLL")),
    "sll link type": ("two-nics-m3-sll", check_link_type,
                      lambda t: t.update(link_type="EN10MB")),
    "front address": ("two-nics-client", check_roles, swap_m3_addresses),
    "two-nics backend": ("two-nics-m3", check_back_leg, other_backend),
    "304 named": ("browser-m3", check_markers,
                  lambda t: [r.update(status=200) for r in t["requests"] if r["status"] == 304]),
    "post status": ("browser-client", check_front_responses,
                    lambda t: [r.update(status=405) for r in t["requests"]
                               if r["method"] == "POST"]),
    "apache backend": ("apache-balancer", check_back_leg, other_backend),
    "stale seen by client": ("neighbour-expiry-client", check_neighbour_resets,
                             lambda t: t["neighbour_resets"][0].update(how="flush")),
    "reset after the end": ("neighbour-expiry-m3", check_neighbour_resets,
                            lambda t: t["neighbour_resets"][-1].update(
                                time=t["neighbour_resets"][-1]["time"] + 60)),
}


@pytest.mark.parametrize("name", ISSUE10_MUTATIONS)
def test_issue10_checks_reject_a_wrong_truth(name: str) -> None:
    capture, check, mutate = ISSUE10_MUTATIONS[name]
    truth, pcap = load(CAPTURES / f"{capture}.truth.json")
    check(truth, pcap)  # the real truth passes...
    wrong = copy.deepcopy(truth)
    mutate(wrong)
    with pytest.raises(AssertionError):
        check(wrong, pcap)  # ...and the wrong one does not


CHECKS.extend(ISSUE10_CHECKS)


def check_capture(truth: Truth, pcap: Path) -> None:
    for check in CHECKS:
        check(truth, pcap)


# --------------------------------------------------------------------------- tests


def load(path: Path) -> tuple[Truth, Path]:
    truth = json.loads(path.read_text(encoding="utf-8"))
    return truth, path.with_name(truth["capture"])


def test_every_named_capture_is_there() -> None:
    names = {p.name.removesuffix(".truth.json") for p in TRUTH_FILES}
    assert {"classic-client", "classic-m3", "haproxy-keepalive", "ab-concurrency",
            "backend-down", "upstream-keepalive", "two-clients", "ipv6", "backend-m2",
            "three-backends"} <= names
    for p in CAPTURES.glob("*.pcapng"):
        assert p.with_name(p.stem + ".truth.json").exists(), f"{p.name} has no truth"


# When a check applies to a capture (a check not listed applies to every one). The checks
# keep their own guard for check_capture (mutated truths); the parametrised test is generated
# only where a check applies, so no case passes by returning early.
APPLIES: dict[Any, Any] = {
    check_refused: lambda t: point_kind(t) == "M3",
    check_tls: lambda t: bool(tls_facts(t)),
    check_link_type: lambda t: "link_type" in t,
    check_direct: lambda t: "direct_requests" in t,
    check_other_traffic: lambda t: "other_traffic" in t,
    check_policy: lambda t: t.get("policy") is not None and point_kind(t) == "M3",
    check_neighbour_resets: lambda t: bool(t.get("neighbour_resets")),
}
_TRUTHS = {p: json.loads(p.read_text(encoding="utf-8")) for p in TRUTH_FILES}
CASES = [pytest.param(p, c, id=f"{c.__name__}-{p.name.split('.')[0]}")
         for c in CHECKS for p in TRUTH_FILES if APPLIES.get(c, lambda _t: True)(_TRUTHS[p])]


@pytest.mark.parametrize(("truth_file", "check"), CASES)
def test_capture_agrees_with_truth(truth_file: Path, check: Any) -> None:
    truth, pcap = load(truth_file)
    assert APPLIES.get(check, lambda _t: True)(truth)
    check(truth, pcap)


def test_every_check_applies_somewhere() -> None:
    """A check no capture exercises would be generated for none: it must not vanish."""
    assert {c for _p, c in (case.values for case in CASES)} == set(CHECKS)


def test_classic_client_shows_the_exercise() -> None:
    """Per request, the student's sequence: SYN .. GET (ARP) 200 OK ACK FIN FIN ACK."""
    truth, pcap = load(CAPTURES / "classic-client.truth.json")
    rows = tshark(pcap, "tcp or arp", "tcp.stream", "tcp.flags.str", "http.request.method",
                  "http.response.code", "arp.dst.proto_ipv4")
    streams: dict[str, list[str]] = {}
    last = ""
    for stream, flags, method, code, arp in rows:
        if arp:
            streams[last].append("ARP")
            continue
        last = stream
        step = method or code or flags.replace("·", "")
        streams.setdefault(stream, []).append(step)
    assert len(streams) == len(truth["requests"]) == 3
    for seq in streams.values():
        # M3 may ACK the GET on its own (Linux quick-ACKs the first data): allowed, not needed.
        seq = [s for i, s in enumerate(seq) if not (s == "A" and seq[i - 1] == "GET")]
        seq = [s for s in seq if s != "ARP"]
        assert seq[:4] == ["S", "AS", "A", "GET"], seq
        assert seq[4:6] == ["200", "A"], seq
        assert seq[6:] in (["AF", "AF", "A"],), seq
    arps = [r[4] for r in rows if r[4]]
    assert sorted(arps) == truth["roles"]["M1"] + truth["roles"]["M2"]


# Wrong truths each check must reject: proof that the checks can fail.
MUTATIONS = {
    "extra key": (check_shape, lambda t: t.update(comment="not in the format")),
    "unsorted": (check_shape, lambda t: t["requests"].reverse()),
    "frames": (check_frames, lambda t: t.update(frames=t["frames"] + 1)),
    "status": (check_front_responses, lambda t: t["requests"][0].update(status=404)),
    "client port": (check_front_requests,
                    lambda t: t["requests"][0].update(client=t["requests"][0]["client"] + "9")),
    "backend": (check_back_leg, lambda t: t["requests"][0].update(backend="M2",
                                                                  upstreams=["M2"])),
    "marker": (check_markers, lambda t: t["requests"][0].update(backend="M2",
                                                                upstreams=["M2"])),
    "lost request": (check_front_requests, lambda t: t["requests"].pop()),
    "role address": (check_roles, lambda t: t["roles"].update(M1=["192.168.56.111"])),
    "order": (check_order, lambda t: swap_clients(t["requests"][0], t["requests"][2])),
    "refused": (check_refused, lambda t: t["requests"][0].update(upstreams=["M2", "M1"],
                                                                 upstream_statuses=["502",
                                                                                    "200"])),
    "neighbours": (check_neighbours, lambda t: t["roles"].update(M2=["192.168.56.112"])),
}


def swap_clients(a: Truth, b: Truth) -> None:
    a["client"], b["client"] = b["client"], a["client"]


@pytest.mark.parametrize("name", MUTATIONS)
def test_checks_reject_a_wrong_truth(name: str) -> None:
    check, mutate = MUTATIONS[name]
    truth, pcap = load(CAPTURES / "classic-m3.truth.json")
    check(truth, pcap)  # the real truth passes...
    wrong = copy.deepcopy(truth)
    mutate(wrong)
    with pytest.raises(AssertionError):
        check(wrong, pcap)  # ...and the wrong one does not


# --------------------------------------------------------------------------- HTTPS (issue 11)

HTTPS_CAPTURES = {f"{name}-{point}" for name in ("https", "https-redirect", "https-keepalive",
                                                 "https-h2", "https-haproxy",
                                                 "https-reencrypt")
                  for point in ("client", "m3")}


def test_https_captures_have_their_key_logs() -> None:
    names = {p.name.removesuffix(".truth.json") for p in TRUTH_FILES}
    assert names >= HTTPS_CAPTURES
    for name in HTTPS_CAPTURES:
        truth, pcap = load(CAPTURES / f"{name}.truth.json")
        assert truth["keylog"] == f"{name}.keys" and (CAPTURES / truth["keylog"]).is_file()
    # Only the client's TLS secrets are committed, never the balancer's throwaway key.
    for p in CAPTURES.rglob("*"):
        if p.is_file() and p.suffix in (".keys", ".json", ".pem", ".key", ".md"):
            assert "PRIVATE KEY-----" not in p.read_text(errors="replace"), p


def other_keylog(t: Truth) -> None:
    t["keylog"] = "https-keepalive-client.keys"  # real secrets, of another run


def flip_scheme(t: Truth) -> None:
    r = t["requests"][0]
    r["scheme"] = "https" if r["scheme"] == "http" else "http"


# Wrong HTTPS truths each check must reject: (capture, check, mutation).
TLS_MUTATIONS = {
    "wrong key log": ("https-redirect-m3", check_front_requests, other_keylog),
    "scheme": ("https-redirect-m3", check_front_requests, flip_scheme),
    "plain claimed": ("https-m3", check_tls,
                      lambda t: t["requests"][1].update(scheme="http", tls_protocol=None)),
    "tls version": ("https-haproxy-client", check_tls,
                    lambda t: t["requests"][0].update(tls_protocol="TLSv1.2")),
    "http version": ("https-h2-m3", check_front_requests,
                     lambda t: t["requests"][0].update(http_version="1.1")),
    "h2 response version": ("https-h2-client", check_front_responses,
                            lambda t: t["requests"][-1].update(http_version="1.1")),
    "h2 uri": ("https-h2-client", check_front_requests,
               lambda t: t["requests"][0].update(uri="/ejemplo.html?n=9")),
    "h2 marker": ("https-h2-m3", check_markers,
                  lambda t: [r.update(backend="M2" if r["backend"] == "M1" else "M1")
                             for r in t["requests"][:1]]),
    "redirect status": ("https-redirect-client", check_front_responses,
                        lambda t: t["requests"][0].update(status=302)),
    "no keylog key": ("https-keepalive-m3", check_shape, lambda t: t.pop("keylog")),
    "request without tls keys": ("https-keepalive-m3", check_shape,
                                 lambda t: t["requests"][0].pop("tls_protocol")),
}


@pytest.mark.parametrize("name", TLS_MUTATIONS)
def test_tls_checks_reject_a_wrong_truth(name: str) -> None:
    capture, check, mutate = TLS_MUTATIONS[name]
    truth, pcap = load(CAPTURES / f"{capture}.truth.json")
    check(truth, pcap)
    wrong = copy.deepcopy(truth)
    mutate(wrong)
    with pytest.raises(AssertionError):
        check(wrong, pcap)


def test_reencrypt_back_leg_needs_the_backends_secrets(tmp_path: Path) -> None:
    """https-reencrypt: M3 re-encrypts to the backends; their key log lines (after the client's)
    are what makes the back leg readable."""
    truth, pcap = load(CAPTURES / "https-reencrypt-m3.truth.json")
    check_back_leg(truth, pcap)
    client_keys = (CAPTURES / "https-reencrypt-client.truth.json").read_text()
    client = {r["client"] for r in json.loads(client_keys)["requests"]}
    lines = (CAPTURES / truth["keylog"]).read_text().splitlines(keepends=True)
    # curl's lines come first: one per client connection (TLS 1.2: CLIENT_RANDOM).
    front_only = tmp_path / "front-only.keys"
    front_only.write_text("".join(lines[:len(client)]))
    shutil.copyfile(pcap, tmp_path / pcap.name)
    wrong = copy.deepcopy(truth)
    wrong["keylog"] = front_only.name
    check_front_requests(wrong, tmp_path / pcap.name)  # the front leg still decrypts...
    with pytest.raises(AssertionError):
        check_back_leg(wrong, tmp_path / pcap.name)  # ...the back leg does not

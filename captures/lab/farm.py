#!/usr/bin/env python3
"""A real load-balanced web farm in network namespaces, recorded with dumpcap.

The farm reproduces the course's VirtualBox lab: a host-only switch (a Linux bridge living in
its own "switch" namespace, never in the root namespace), a client, the balancer M3 (nginx or
haproxy) and N backends (Apache or nginx) serving /ejemplo.html ("Soy la máquina N"). The
balancer's access log is the ground truth of every request; `Farm.truth()` turns it into the
truth JSON that sits beside each reference capture.

Usage (as root):
    with Farm(FarmSpec(), workdir) as farm:
        farm.start_capture("classic-client", "client1")
        farm.curl(farm.url())
        farm.stop_captures()
        truth = farm.truth("classic-client", "classic")

Everything the farm starts (processes, namespaces and with them veths and the bridge) is
removed on exit, also when a step fails or on KeyboardInterrupt/SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PAGE = (
    "<html>\n"
    "\t<head>\n"
    '\t\t<meta charset="utf-8">\n'
    "\t</head>\n"
    "\t<body>\n"
    "\t\t<h1>Web de ejemplo de adizqpoz para SWAP</h1>\n"
    "\t\t<p>Soy la máquina {n}</p>\n"
    "\t</body>\n"
    "</html>\n"
)
MARKER = "Soy la máquina {n}"
UPSTREAM_NAME = "servidoresSWAP"
APACHE_MODULES = Path("/usr/lib/apache2/modules")
# Gateway errors that the balancer produces itself (refused/timed-out upstream): a request
# whose last upstream status is one of these was not answered by that backend.
GATEWAY_ERRORS = {"502", "503", "504"}

_farm_counter = itertools.count()


class LabError(RuntimeError):
    """A farm step failed; the message says which and why."""


# --------------------------------------------------------------------------- spec & hosts


@dataclass(frozen=True)
class FarmSpec:
    """What to build. Host numbers are the last octet (IPv4) or last group (IPv6)."""

    balancer: str = "nginx"  # "nginx" | "haproxy"
    backend_server: str = "apache2"  # "apache2" | "nginx"
    backends: int = 2
    clients: int = 1
    ipv4_prefix: str | None = "192.168.56."
    ipv6_prefix: str | None = None  # e.g. "fd00:56::"
    client_hosts: tuple[int, ...] = (1, 2, 3, 4)
    balancer_host: int = 103
    backend_hosts: tuple[int, ...] = (101, 102, 104, 105, 106)
    http_port: int = 80
    keepalive: int = 0  # nginx: `keepalive N` in the upstream block
    weights: tuple[int, ...] = ()
    health_checks: bool = False  # haproxy: `check` on each server
    # Issue 10 (what students' captures hold): balancing policy, other services, two NICs.
    policy: str = "round-robin"  # nginx: "round-robin" | "weights" | "ip-hash" | "least-conn"
    noise: bool = False  # M3 also runs sshd and a DNS server (dnsmasq); truth counts them
    back_ipv4_prefix: str | None = None  # e.g. "10.0.0.": backends on a second bridge (br1)
    balancer_back_host: int = 3  # M3's second NIC on that back network
    back_backend_hosts: tuple[int, ...] = (1, 2, 4, 5, 6)
    # HTTPS (issue 11): M3 terminates TLS on https_port with a throwaway self-signed
    # certificate made at start-up, and forwards plain HTTP to the backends.
    tls: bool = False
    https_port: int = 443
    http2: bool = False  # nginx: HTTP/2 on the TLS listener
    redirect_http: bool = False  # nginx: http_port only answers 301 to https://
    tls_protocols: str = ""  # nginx `ssl_protocols` (e.g. "TLSv1.3"); "" = nginx's default
    # Re-encryption: the Apache backends serve TLS on https_port too (their key logs are kept)
    # and nginx proxies to https:// there.
    backend_tls: bool = False
    # Issue 19 (HTTP as it is): a lossy client link, bigger static files, uploads, websockets,
    # a caching balancer (balancer="varnish"; backend_server="wsserver" is lab/wsserver.py).
    loss_every: int = 0  # drop every Nth TCP data segment on client1's link, each direction
    assets: tuple[tuple[str, int], ...] = ()  # more static files on the backends: (path, bytes)
    upload_cgi: bool = False  # Apache backends: /upload is a CGI that reads any body (POST, PUT)
    websocket: bool = False  # nginx passes Upgrade and Connection on to the backends
    # Issue 18 (a capture from anywhere): a router in front of the clients, web servers and no
    # balancer, a VXLAN overlay, one namespace's loopback, two farms on one switch, an IPv6
    # front with an IPv4 back, haproxy at layer 4, the client's own X-Forwarded-For logged.
    # balancer="none": the "backends" are independent web servers (role "server").
    router: bool = False  # clients on their own network (br2) behind a router namespace
    client_ipv4_prefix: str = "10.0.2."  # with router: the clients' network, the router is .2
    server_addrs: tuple[str, ...] = ()  # balancer="none": each server's IPv4 address (a /24)
    vxlan: bool = False  # hosts talk over a VXLAN overlay; their eth0 carries the underlay only
    underlay_prefix: str = "172.16.56."  # with vxlan: eth0's addresses (same host numbers)
    loopback: bool = False  # every host in one namespace, on lo; each backend on its own port
    backend_ports: tuple[int, ...] = (81, 82, 83, 84)  # with loopback
    front_ipv6: bool = False  # clients IPv6 only, backends IPv4 only, M3 both (the v6 first)
    balancer_mode: str = "http"  # haproxy: "tcp" is layer 4 (no HTTP, no X-Forwarded-For)
    log_forwarded_for: bool = False  # nginx logs the X-Forwarded-For the client itself sent
    backend_numbers: tuple[int, ...] = ()  # the backends' M numbers (default 1, 2, 4, 5...)
    mac_offset: int = 0  # added to every host's MAC index (two farms on one switch)
    second_farm: FarmSpec | None = None  # another farm plugged into the same switch


def backend_number(i: int) -> int:
    """Backend i (0-based) is M1, M2, M4, M5...: M3 is the balancer's name in the course."""
    return i + 1 if i < 2 else i + 2


@dataclass
class Host:
    name: str  # unique in the farm: client1, m3, m1...
    role: str  # client, M3, M1, M2, M4...
    index: int  # distinguishes MACs
    ipv4: str | None
    ipv6: str | None
    ns: str = ""
    ifname: str = "eth0"
    bridge: str = "br0"  # the switch's bridge this host's eth0 is plugged into
    back_ipv4: str | None = None  # M3's second NIC (eth1) on the back network, if any
    port: int | None = None  # one-namespace farm: the host is this port of a shared address
    v6_first: bool = False  # an IPv6 front and an IPv4 back on one NIC: the IPv6 one first

    @property
    def addrs(self) -> list[str]:
        first = (self.ipv6, self.ipv4) if self.v6_first else (self.ipv4, self.ipv6)
        return [a for a in (*first, self.back_ipv4) if a]

    @property
    def role_addrs(self) -> list[str]:
        """What names the host in the truth's roles: its addresses, or address:port when it
        shares its address with other hosts (one namespace's loopback)."""
        return [fmt_client(a, self.port) for a in self.addrs] if self.port else self.addrs

    @property
    def addr(self) -> str:
        """The address traffic goes to: IPv4 when the farm has it (and no IPv6 front)."""
        return self.addrs[0] if self.addrs else ""

    @property
    def url_host(self) -> str:
        return self.addr if ":" not in self.addr else f"[{self.addr}]"

    @property
    def mac(self) -> str:
        # VirtualBox NICs start 08:00:27 (Wireshark: PcsCompu_...).
        return f"08:00:27:5a:{self.index // 256:02x}:{self.index % 256:02x}"


def make_hosts(spec: FarmSpec) -> list[Host]:
    def addrs(n: int) -> tuple[str | None, str | None]:
        v4 = f"{spec.ipv4_prefix}{n}" if spec.ipv4_prefix else None
        v6 = f"{spec.ipv6_prefix}{n}" if spec.ipv6_prefix else None
        return v4, v6

    hosts = []
    off = spec.mac_offset
    for i in range(spec.clients):
        v4, v6 = addrs(spec.client_hosts[i])
        if spec.router:  # the clients' own network, behind the router
            v4 = f"{spec.client_ipv4_prefix}{spec.client_hosts[i]}"
        hosts.append(Host(f"client{i + 1}", "client", off + 1 + i, None if spec.front_ipv6 else v4,
                          v6, bridge="br2" if spec.router else "br0"))
    if spec.balancer == "none":
        return hosts + web_servers(spec)
    hosts.append(Host("m3", "M3", off + 103, *addrs(spec.balancer_host), v6_first=spec.front_ipv6,
                      port=spec.http_port if spec.loopback else None))
    for i in range(spec.backends):
        n = spec.backend_numbers[i] if spec.backend_numbers else backend_number(i)
        v4, v6 = addrs(spec.backend_hosts[i])
        hosts.append(Host(f"m{n}", f"M{n}", off + 100 + n, v4, None if spec.front_ipv6 else v6,
                          port=spec.backend_ports[i] if spec.loopback else None))
    if spec.back_ipv4_prefix:
        place_back_network(spec, hosts)
    return hosts


def web_servers(spec: FarmSpec) -> list[Host]:
    """balancer="none": independent web servers s1, s2... at spec.server_addrs."""
    return [Host(f"s{i + 1}", "server", spec.mac_offset + 201 + i, a, None)
            for i, a in enumerate(spec.server_addrs)]


def place_back_network(spec: FarmSpec, hosts: list[Host]) -> None:
    """Two-NIC balancer: the backends move to a second bridge, M3 gets an address there."""
    i = 0
    for h in hosts:
        if h.role == "M3":
            h.back_ipv4 = f"{spec.back_ipv4_prefix}{spec.balancer_back_host}"
        elif h.role != "client":
            h.ipv4 = f"{spec.back_ipv4_prefix}{spec.back_backend_hosts[i]}"
            h.ipv6, h.bridge = None, "br1"
            i += 1


# --------------------------------------------------------------------------- processes


def run(cmd: list[str], check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run a command, raising LabError with its stderr when it fails."""
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


@dataclass
class Proc:
    """A process the farm started; stopped by its pid only."""

    name: str
    popen: subprocess.Popen
    stop_signal: int = signal.SIGTERM
    files: list[Any] = field(default_factory=list)

    def stop(self, timeout: float = 5) -> None:
        if self.popen.poll() is None:
            try:
                os.kill(self.popen.pid, self.stop_signal)
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout)
            except ProcessLookupError:
                pass
        for f in self.files:
            f.close()


# --------------------------------------------------------------------------- configs


def nginx_common(d: Path) -> str:
    """Top of an nginx config whose files all live in d (no host-wide paths)."""
    tmp = d / "tmp"
    temps = "\n".join(
        f"    {kind}_temp_path {tmp / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        "worker_processes 1;\ndaemon off;\nmaster_process on;\nuser root;\n"
        f"pid {d / 'nginx.pid'};\nerror_log {d / 'error.log'} notice;\n"
        "events { worker_connections 1024; }\n"
        f"http {{\n{temps}\n"
    )


def listen_lines(host: Host, port: int, directive: str = "        listen", end: str = ";") -> str:
    return "".join(
        f"{directive} {a if ':' not in a else f'[{a}]'}:{port}{end}\n" for a in host.addrs
    )


def nginx_balancer_conf(d: Path, spec: FarmSpec, m3: Host, backends: list[Host]) -> str:
    servers = ""
    for i, b in enumerate(backends):
        weight = f" weight={spec.weights[i]}" if spec.weights else ""
        bport = b.port or spec.http_port  # one-namespace farm: each backend its own port
        port = "" if bport == 80 else f":{bport}"
        if spec.backend_tls:
            port = f":{spec.https_port}"
        servers += f"        server {b.url_host}{port}{weight};\n"
    # The balancing method goes before `keepalive` (nginx requires it).
    servers = NGINX_POLICY_LINES.get(spec.policy, "") + servers
    if spec.keepalive:
        servers += f"        keepalive {spec.keepalive};\n"
    # One JSON object per request: the ground truth (escape=json keeps it parseable).
    fmt = (
        '{"ip":"$remote_addr","port":"$remote_port","method":"$request_method",'
        '"uri":"$request_uri","status":"$status","upstream_addr":"$upstream_addr",'
        '"upstream_status":"$upstream_status","msec":"$msec","request_time":"$request_time",'
        '"upstream_response_time":"$upstream_response_time","connection":"$connection",'
        '"connection_requests":"$connection_requests"}'
    )
    if spec.tls:
        fmt = fmt[:-1] + NGINX_TLS_LOG_FIELDS + "}"
    if spec.upload_cgi or spec.websocket:
        fmt = fmt[:-1] + NGINX_HTTP_LOG_FIELDS + "}"
    if spec.log_forwarded_for:
        fmt = fmt[:-1] + ',"xff":"$http_x_forwarded_for"}'
    # Websockets (nginx's documented recipe): Connection "upgrade" only when the client asked.
    connection = "$connection_upgrade" if spec.websocket else '""'
    return (
        nginx_common(d)
        + f"    log_format truth escape=json '{fmt}';\n"
        + f"    access_log {d / 'access.log'} truth;\n"
        + (NGINX_UPGRADE_MAP if spec.websocket else "")
        + f"    upstream {UPSTREAM_NAME} {{\n{servers}    }}\n"
        + "    server {\n"
        + ("" if spec.redirect_http else listen_lines(m3, spec.http_port))
        + (nginx_tls_lines(d, spec, m3) if spec.tls else "")
        + "        server_name balanceador;\n"
        + "        location / {\n"
        + f"            proxy_pass {'https' if spec.backend_tls else 'http'}://{UPSTREAM_NAME};\n"
        + "            proxy_set_header Host $host;\n"
        + "            proxy_set_header X-Real-IP $remote_addr;\n"
        + "            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
        + "            proxy_http_version 1.1;\n"
        # As in the course's config: without it nginx sends "Connection: close" upstream.
        + f"            proxy_set_header Connection {connection};\n"
        + ("            proxy_set_header Upgrade $http_upgrade;\n" if spec.websocket else "")
        + "        }\n    }\n"
        + (nginx_redirect_server(spec, m3) if spec.redirect_http else "")
        + "}\n"
    )


HAPROXY_LOG_FORMAT = (
    "%ci %cp %HM %HU %ST %b %s %si %sp %Ts %ms %Th %Ti %TR %Tw %Tc %Tr %Ta %Tt"
)
# mode tcp (layer 4): one line per connection, when it closes; %bi:%bp is haproxy's own end
# of the back-leg connection (what the backend logs as its client).
HAPROXY_TCP_LOG_FORMAT = "%ci %cp %b %s %si %sp %bi %bp %Ts %ms %Tw %Tc %Tt %B %ts"


def haproxy_conf(d: Path, spec: FarmSpec, m3: Host, backends: list[Host]) -> str:
    binds = "".join(
        f"    bind {a if ':' not in a else f'[{a}]'}:{spec.http_port}\n" for a in m3.addrs
    )
    if spec.tls:
        binds += haproxy_tls_binds(d, spec, m3)
    servers = ""
    for i, b in enumerate(backends):
        weight = f" weight {spec.weights[i]}" if spec.weights else ""
        # HTTP checks every second: back-leg requests that serve no client.
        check = " check inter 1s" if spec.health_checks else ""
        servers += f"    server {b.role} {b.url_host}:{spec.http_port}{weight}{check}\n"
    tcp = spec.balancer_mode == "tcp"
    log_format = HAPROXY_TLS_LOG_FORMAT if spec.tls else HAPROXY_LOG_FORMAT
    return (
        "global\n    log stdout format raw local0\n"
        f"    pidfile {d / 'haproxy.pid'}\n    nbthread 1\n"
        + ("defaults\n    mode tcp\n    log global\n" if tcp else
           "defaults\n    mode http\n    log global\n    option forwardfor\n")
        + "    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n"
        + ("" if tcp else "    timeout http-keep-alive 10s\n")
        + f"frontend balanceador\n{binds}"
        + f'    log-format "{HAPROXY_TCP_LOG_FORMAT if tcp else log_format}"\n'
        + f"    default_backend {UPSTREAM_NAME}\n"
        + f"backend {UPSTREAM_NAME}\n    balance roundrobin\n"
        + ("    option httpchk GET /ejemplo.html\n" if spec.health_checks else "")
        + servers
    )


def apache_conf(d: Path, host: Host, port: int) -> str:
    mods = "".join(
        f"LoadModule {m}_module {APACHE_MODULES / f'mod_{m}.so'}\n"
        for m in ("mpm_event", "authz_core", "mime", "dir")
    )
    return (
        f'ServerRoot "{d}"\nServerName {host.role}\n'
        + listen_lines(host, port, "Listen", end="")
        + f"PidFile {d / 'apache2.pid'}\nDefaultRuntimeDir {d}\n"
        + f"ErrorLog {d / 'error.log'}\nLogLevel warn\n{mods}"
        + "User www-data\nGroup www-data\n"
        + "StartServers 1\nServerLimit 2\nThreadsPerChild 25\nMaxRequestWorkers 50\n"
        + "MinSpareThreads 5\nMaxSpareThreads 50\n"
        + "TypesConfig /etc/mime.types\nDirectoryIndex ejemplo.html\n"
        + f'DocumentRoot "{d / "www"}"\n<Directory "{d / "www"}">\n'
        + "    Require all granted\n</Directory>\n"
        # Client port and arrival time (ms): the truth of requests sent straight to a backend.
        + 'LogFormat "%a %{remote}p %{X-Forwarded-For}i \\"%r\\" %>s %b %{msec}t" lab\n'
        + f"CustomLog {d / 'access.log'} lab\n"
    )


def nginx_backend_conf(d: Path, host: Host, port: int, truth_log: bool = False,
                       index: str = "ejemplo.html") -> str:
    """An nginx web server; truth_log: its access log is NGINX_SERVER_LOG (balancer="none")."""
    log = (f"    log_format truth escape=json '{NGINX_SERVER_LOG}';\n"
           f"    access_log {d / 'access.log'} truth;\n" if truth_log
           else f"    access_log {d / 'access.log'};\n")
    return (
        nginx_common(d)
        + f"    include /etc/nginx/mime.types;\n{log}"
        + "    server {\n"
        + listen_lines(host, port)
        + f"        root {d / 'www'};\n        index {index};\n    }}\n}}\n"
    )


# --------------------------------------------------------------------------- HTTPS (issue 11)
# M3 terminates TLS with a throwaway certificate; the backends still get plain HTTP. The
# client's curl writes the TLS secrets to Farm.keylog (SSLKEYLOGFILE), which regenerate.py
# stores as captures/<name>.keys so tshark can decrypt the front leg.

# Added to the nginx truth log format when the balancer terminates TLS.
NGINX_TLS_LOG_FIELDS = (
    ',"scheme":"$scheme","server_port":"$server_port","server_protocol":"$server_protocol",'
    '"http2":"$http2","ssl_protocol":"$ssl_protocol","request_id":"$request_id"'
)
# haproxy: frontend port, HTTP version ("HTTP/1.1"), TLS version ("-" on plain HTTP).
HAPROXY_TLS_LOG_FORMAT = HAPROXY_LOG_FORMAT + " %fp %HV %sslv"
CERT_FILE, KEY_FILE, PEM_FILE = "cert.pem", "key.pem", "haproxy.pem"


def make_certificate(d: Path, host: Host) -> None:
    """A self-signed certificate for M3 in its run directory (deleted with it on exit)."""
    san = ",".join(f"IP:{a}" for a in host.addrs)
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=balanceador",
         "-addext", f"subjectAltName={san}",
         "-keyout", str(d / KEY_FILE), "-out", str(d / CERT_FILE)])
    # haproxy wants the certificate and its key in one file.
    (d / PEM_FILE).write_text((d / CERT_FILE).read_text() + (d / KEY_FILE).read_text())
    for name in (KEY_FILE, PEM_FILE):
        (d / name).chmod(0o600)


def nginx_version() -> tuple[int, ...]:
    found = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", run(["nginx", "-v"]).stderr)
    return tuple(int(x) for x in found.groups()) if found else (0,)


def nginx_tls_lines(d: Path, spec: FarmSpec, m3: Host) -> str:
    """The TLS listener inside the balancer's server block."""
    # `http2 on;` exists from nginx 1.25.1; before (Debian 12: 1.22) http2 is a listen flag.
    h2_directive = spec.http2 and nginx_version() >= (1, 25, 1)
    flag = " http2" if spec.http2 and not h2_directive else ""
    return (
        listen_lines(m3, spec.https_port, end=f" ssl{flag};")
        + ("        http2 on;\n" if h2_directive else "")
        + f"        ssl_certificate {d / CERT_FILE};\n"
        + f"        ssl_certificate_key {d / KEY_FILE};\n"
        + (f"        ssl_protocols {spec.tls_protocols};\n" if spec.tls_protocols else "")
    )


def nginx_redirect_server(spec: FarmSpec, m3: Host) -> str:
    """Plain HTTP answered by M3 itself: 301 to the same URL over HTTPS (no backend)."""
    port = "" if spec.https_port == 443 else f":{spec.https_port}"
    return (
        "    server {\n"
        + listen_lines(m3, spec.http_port)
        + "        server_name balanceador;\n"
        + f"        return 301 https://$host{port}$request_uri;\n"
        + "    }\n"
    )


def haproxy_tls_binds(d: Path, spec: FarmSpec, m3: Host) -> str:
    alpn = "h2,http/1.1" if spec.http2 else "http/1.1"
    return "".join(
        f"    bind {a if ':' not in a else f'[{a}]'}:{spec.https_port} ssl crt {d / PEM_FILE}"
        f" alpn {alpn}\n"
        for a in m3.addrs
    )


def apache_tls_backend(d: Path, host: Host, port: int, conf: Path, cmd: list[str]
                       ) -> list[str]:
    """Re-encryption: mod_ssl on `port` with the backend's own throwaway certificate; Apache
    writes its TLS secrets to d/sslkeys.log (SSLKEYLOGFILE, mod_ssl >= 2.4.49)."""
    make_certificate(d, host)
    conf.write_text(
        conf.read_text()
        + f"LoadModule ssl_module {APACHE_MODULES / 'mod_ssl.so'}\n"
        + listen_lines(host, port, "Listen", end="")
        + f"<VirtualHost *:{port}>\n"
        + f"    SSLEngine on\n    SSLCertificateFile {d / CERT_FILE}\n"
        + f"    SSLCertificateKeyFile {d / KEY_FILE}\n</VirtualHost>\n"
    )
    return ["env", f"SSLKEYLOGFILE={d / 'sslkeys.log'}", *cmd]


def tls_request_keys(scheme: str, protocol: str, tls_protocol: str) -> dict[str, Any]:
    """The truth's per-request HTTPS keys: scheme, http_version ("1.1", "2"), tls_protocol."""
    version = protocol.removeprefix("HTTP/")
    return {
        "scheme": scheme,
        "http_version": "2" if version.startswith("2") else version,
        "tls_protocol": tls_protocol or None,
    }


def parse_nginx_tls_line(line: str, role_of: Any) -> dict[str, Any]:
    rec = json.loads(line)
    return {**parse_nginx_line(line, role_of),
            **tls_request_keys(rec["scheme"], rec["server_protocol"], rec["ssl_protocol"])}


def parse_haproxy_tls_line(line: str, role_of: Any) -> dict[str, Any]:
    fields = line.split()
    n = len(HAPROXY_LOG_FORMAT.split())
    _, version, sslv = fields[n:]
    tls = "" if sslv == "-" else sslv
    return {**parse_haproxy_line(" ".join(fields[:n]), role_of),
            **tls_request_keys("https" if tls else "http", version, tls)}


# --------------------------------------------------------------------------- issue 10
# Policies, Apache as the balancer, the noise of a student's host (ssh, DNS, ping, direct).

NGINX_POLICY_LINES = {"ip-hash": "        ip_hash;\n", "least-conn": "        least_conn;\n"}
PAGE_MTIME = 1767225600  # 2026-01-01 00:00:00 UTC, on every backend's page
DNS_NAME = "balanceador.swap"  # dnsmasq on M3 answers it with M3's address


def apache_balancer_conf(d: Path, spec: FarmSpec, m3: Host, backends: list[Host]) -> str:
    """Apache httpd as M3: mod_proxy_balancer, byrequests, pooled back-leg connections."""
    mods = "".join(
        f"LoadModule {m}_module {APACHE_MODULES / f'mod_{m}.so'}\n"
        for m in ("mpm_event", "authz_core", "proxy", "proxy_http", "proxy_balancer",
                  "lbmethod_byrequests", "slotmem_shm")
    )
    members = "".join(
        f"    BalancerMember http://{b.url_host}:{spec.http_port} route={b.role}"
        + (f" loadfactor={spec.weights[i]}" if spec.weights else "") + "\n"
        for i, b in enumerate(backends)
    )
    return (
        f'ServerRoot "{d}"\nServerName M3\n'
        + listen_lines(m3, spec.http_port, "Listen", end="")
        + f"PidFile {d / 'apache2.pid'}\nDefaultRuntimeDir {d}\n"
        + f"ErrorLog {d / 'error.log'}\nLogLevel warn\n{mods}"
        + "User www-data\nGroup www-data\n"
        # One child process: one pool of back-leg connections.
        + "StartServers 1\nServerLimit 1\nThreadsPerChild 25\nMaxRequestWorkers 25\n"
        + "MinSpareThreads 5\nMaxSpareThreads 25\n"
        + 'LogFormat "%a %{remote}p %m %U%q %>s \\"%{BALANCER_WORKER_NAME}e\\" %{msec}t %D" truth\n'
        + f"CustomLog {d / 'access.log'} truth\n"
        + f'<Proxy "balancer://{UPSTREAM_NAME}">\n{members}'
        + "    ProxySet lbmethod=byrequests\n    Require all granted\n</Proxy>\n"
        + f'ProxyPass "/" "balancer://{UPSTREAM_NAME}/"\n'
        + f'ProxyPassReverse "/" "balancer://{UPSTREAM_NAME}/"\n'
    )


def parse_apache_balancer_line(line: str, role_of: Any) -> dict[str, Any]:
    """`%a %{remote}p %m %U%q %>s "%{BALANCER_WORKER_NAME}e" %{msec}t %D`."""
    head, worker, tail = line.split('"')
    ip, port, method, uri, status = head.split()
    msec, micros = tail.split()
    role = role_of(split_hostport(worker.split("://", 1)[-1].rstrip("/"))) if worker != "-" \
        else None
    # Apache logs only the status it sent; a proxy error (502/503) means no backend answered.
    answered = role is not None and status not in GATEWAY_ERRORS
    # %{msec}t: when the request arrived
    return truth_request(fmt_client(ip, port), method, uri, status, role if answered else None,
                         role, int(msec) / 1000, int(micros) / 1e6)


def parse_apache_backend_line(line: str) -> dict[str, Any]:
    """`%a %{remote}p %{X-Forwarded-For}i "%r" %>s %b %{msec}t` (apache_conf's `lab`)."""
    head, request, tail = line.split('"')
    ip, port = head.split()[:2]
    method, uri = request.split()[:2]
    status, _, msec = tail.split()
    return {"ip": ip, "port": int(port), "xff": head.split(None, 2)[2].strip(),
            "method": method, "uri": uri, "status": int(status),
            "start": round(int(msec) / 1000, 3)}


def sshd_conf(d: Path, m3: Host) -> str:
    return (
        f"ListenAddress {m3.ipv4}\nPort 22\nHostKey {d / 'ssh_host_ed25519_key'}\n"
        f"PidFile {d / 'sshd.pid'}\nAuthorizedKeysFile {d / 'authorized_keys'}\n"
        "StrictModes no\nUsePAM no\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPrintMotd no\n"
        "PrintLastLog no\nUseDNS no\n"
    )


def other_traffic_filters(m3: Host, http_port: int) -> dict[str, str]:
    """Display filters of the truth's `other_traffic` counts (frames of each kind)."""
    via_m3 = " or ".join(f"ip.addr == {a}" for a in m3.addrs)
    return {
        "ssh": "tcp.port == 22",
        "dns": "udp.port == 53",
        "icmp": "icmp",
        "arp": "arp",
        "direct": f"tcp.port == {http_port} and not ({via_m3})",
    }


def count_matching(path: Path, dfilter: str) -> int:
    out = run(["tshark", "-n", "-r", str(path), "-Y", dfilter, "-T", "fields",
               "-e", "frame.number"]).stdout
    return len(out.split())


# capinfos's short encapsulation names -> pcap link-type names.
LINK_TYPES = {"ether": "EN10MB", "linux-sll": "LINUX_SLL", "linux-sll2": "LINUX_SLL2"}


def link_type_of(path: Path) -> str:
    """The capture's link-layer header type (pcap name), from capinfos."""
    out = run(["capinfos", "-E", "-T", "-r", str(path)]).stdout.strip().split("\t")[-1]
    return LINK_TYPES.get(out, out)


# --------------------------------------------------------------------------- issue 19
# HTTP as it is: segments lost on the client's link, uploads with `Expect: 100-continue`,
# websockets through nginx, Varnish as a caching M3.

LAB_DIR = Path(__file__).resolve().parent
# Added to nginx's truth log: what the client asked for (100-continue, a protocol upgrade).
NGINX_HTTP_LOG_FIELDS = (
    ',"expect":"$http_expect","upgrade":"$http_upgrade","server_protocol":"$server_protocol"'
)
NGINX_UPGRADE_MAP = (
    "    map $http_upgrade $connection_upgrade {\n"
    "        default upgrade;\n"
    "        '' '';\n"
    "    }\n"
)
LOSS_TABLE = "lab_loss"
# An upload CGI on the Apache backends: reads the whole body, says who it is and how much it
# got; 201 for PUT, 200 otherwise.
UPLOAD_CGI = """#!/bin/sh
n=$(wc -c | tr -d ' ')
if [ "$REQUEST_METHOD" = PUT ]; then echo "Status: 201 Created"; else echo "Status: 200 OK"; fi
echo "Content-Type: text/plain; charset=utf-8"
echo
echo "Soy la máquina {n}"
echo "recibidos $n bytes ($REQUEST_METHOD $REQUEST_URI)"
"""
VARNISH_IDENTITY = "balanceador"  # server.identity, shown in Via (else the machine's hostname)
# varnishncsa's line per client request: address, port, method, URL, status, what the cache
# did (hit, miss, pass, synth, pipe), the backend that fetched the object delivered (logged by
# the VCL), when the request started (epoch s), time to serve it (µs), X-Varnish.
VARNISHNCSA_FORMAT = (
    "%{VSL:ReqStart[1]}x %{VSL:ReqStart[2]}x %m %U%q %s %{Varnish:handling}x "
    "%{VCL_Log:fetched_by}x %{VSL:Timestamp:Start[1]}x %D %{X-Varnish}o"
)


def asset_text(path: str, size: int) -> str:
    """A static file of exactly `size` bytes (readable text, the same on every backend)."""
    line = f"/* {path}: linea de relleno de un recurso de la pagina */\n"
    return (line * (size // len(line) + 1))[:size]


def apache_upload_cgi(d: Path, n: int, conf: Path) -> None:
    """/upload (and /upload/anything) runs a CGI (mod_cgid) on an Apache backend; a second
    log records the headers that reached the backend (Expect, Content-Length)."""
    cgi = d / "cgi-bin"
    cgi.mkdir(exist_ok=True)
    cgi.chmod(0o755)
    script = cgi / "upload.cgi"
    script.write_text(UPLOAD_CGI.replace("{n}", str(n)), encoding="utf-8")
    script.chmod(0o755)
    conf.write_text(
        conf.read_text()
        + "".join(f"LoadModule {m}_module {APACHE_MODULES / f'mod_{m}.so'}\n"
                  for m in ("alias", "cgid"))
        + f"ScriptSock {d / 'cgid.sock'}\n"
        + f'ScriptAlias /upload "{script}"\n'
        + f'<Directory "{cgi}">\n    Require all granted\n</Directory>\n'
        + 'LogFormat "%a %{remote}p \\"%r\\" %>s \\"%{Expect}i\\" %{Content-Length}i" upload\n'
        + f"CustomLog {d / 'upload.log'} upload\n"
    )


def loss_ruleset(port: str, every: int) -> str:
    """nftables on the switch (bridge family): every Nth TCP segment carrying data that goes
    from or to `port` is dropped, one counter per direction. IP length > 100 keeps pure ACKs
    (with timestamps and SACK blocks at most 80) and SYNs out."""
    rule = f"meta l4proto tcp ip length > 100 numgen inc mod {every} == {every - 1} counter drop"
    return (
        f"table bridge {LOSS_TABLE} {{\n"
        "    chain forward {\n"
        "        type filter hook forward priority 0; policy accept;\n"
        f'        iifname "{port}" {rule} comment "from-client"\n'
        f'        oifname "{port}" {rule} comment "to-client"\n'
        "    }\n}\n"
    )


def varnish_vcl(spec: FarmSpec, backends: list[Host]) -> str:
    """Varnish as M3: a round-robin director over the backends. The backend that fetched an
    object is kept with it (a header the client never sees) and logged on every delivery, so
    varnishncsa can say who made the copy a hit was served from."""
    defs = "".join(
        f'backend {b.role} {{\n    .host = "{b.addr}";\n    .port = "{spec.http_port}";\n}}\n'
        for b in backends)
    adds = "".join(f"    rr.add_backend({b.role});\n" for b in backends)
    return (
        "vcl 4.1;\nimport directors;\nimport std;\n" + defs
        + "sub vcl_init {\n    new rr = directors.round_robin();\n" + adds + "}\n"
        + "sub vcl_recv {\n    set req.backend_hint = rr.backend();\n}\n"
        + "sub vcl_backend_response {\n"
        + "    set beresp.http.X-Lab-Fetched-By = beresp.backend.name;\n}\n"
        + "sub vcl_deliver {\n"
        + '    std.log("fetched_by:" + resp.http.X-Lab-Fetched-By);\n'
        + "    unset resp.http.X-Lab-Fetched-By;\n}\n"
    )


def parse_varnishncsa_line(line: str, role_of: Any) -> dict[str, Any]:
    """A VARNISHNCSA_FORMAT line. A hit is answered by Varnish itself: no backend; the
    backend whose response was cached (and whose marker the body carries) is `cached_from`."""
    ip, port, method, uri, status, handling, fetched_by, start, micros, xvarnish = \
        line.split(" ", 9)
    fetched = fetched_by if fetched_by not in ("-", "") else None
    answered = handling in ("miss", "pass", "pipe") and fetched is not None
    return {
        **truth_request(fmt_client(ip, port), method, uri, status, fetched if answered else None,
                        fetched if answered else None, float(start), int(micros) / 1e6),
        "cache": handling,
        "cached_from": fetched if handling == "hit" else None,
        "x_varnish": xvarnish.split(),
    }


def parse_nginx_http_line(line: str, role_of: Any) -> dict[str, Any]:
    """parse_nginx_line plus what the client asked for (`expect`, `upgrade`; popped by
    Farm.request_keys, which turns them into `interim` and `upgraded`)."""
    rec = json.loads(line)
    return {**parse_nginx_line(line, role_of), "expect": rec["expect"],
            "upgrade": rec["upgrade"], "server_protocol": rec["server_protocol"]}


def parse_curl_trace(stderr: str, stdout: str) -> list[dict[str, Any]]:
    """`curl -v -w '\\n@@ %{local_port} %{http_code}\\n'`: per transfer, in order, its local
    port and every status line the client received (interim 1xx ones first)."""
    transfers: list[dict[str, Any]] = []
    for line in stderr.splitlines():
        if line.startswith("> ") and line.rstrip().endswith(("HTTP/1.1", "HTTP/1.0")):
            transfers.append({"request": line[2:].strip(), "statuses": []})
        elif line.startswith("< HTTP/") and transfers:
            transfers[-1]["statuses"].append(int(line.split()[2]))
    ends = [ln.split()[1:] for ln in stdout.splitlines() if ln.startswith("@@ ")]
    if len(ends) != len(transfers):
        raise LabError(f"curl trace: {len(transfers)} requests but {len(ends)} transfers")
    for t, (port, code) in zip(transfers, ends, strict=True):
        t["local_port"], t["status"] = int(port), int(code)
        t["interim"] = [s for s in t["statuses"] if 100 <= s < 200 and s != 101]
    return transfers


# --------------------------------------------------------------------------- issue 18
# A capture from anywhere: web servers with no balancer behind a router, a VXLAN overlay,
# one namespace's loopback, two farms on one switch, an IPv6 front, haproxy at layer 4.

# The router between the clients' network and the rest: VirtualBox NAT's gateway MAC on the
# clients' side (10.0.2.2 there too), the next one on the far side.
GATEWAY_MACS = ("52:54:00:12:35:02", "52:54:00:12:35:03")
VXLAN_ID, VXLAN_PORT = 100, 4789
# balancer="none": each web server's own site (Host header and page), no lab marker.
SITES = ("www.uno.example", "www.dos.example", "www.tres.example", "www.cuatro.example")
WEB_PAGE = (
    "<html>\n\t<head>\n\t\t<meta charset=\"utf-8\">\n\t\t<title>{site}</title>\n"
    '\t\t<link rel="stylesheet" href="/estilo.css">\n\t</head>\n\t<body>\n'
    "\t\t<h1>{site}</h1>\n\t\t<p>Bienvenido a {site}</p>\n\t</body>\n</html>\n"
)
WEB_CSS = "body {{ font-family: sans-serif; }}\nh1 {{ color: #{colour}; }}\n"
# nginx web servers' truth log (balancer="none"): who asked, which server answered, when.
NGINX_SERVER_LOG = (
    '{"ip":"$remote_addr","port":"$remote_port","server":"$server_addr",'
    '"method":"$request_method","uri":"$request_uri","status":"$status","host":"$host",'
    '"msec":"$msec","request_time":"$request_time"}'
)


def underlay_mac(host: Host) -> str:
    """A VXLAN host's eth0 (the underlay): a hypervisor's NIC, 52:54:00:38:…"""
    return f"52:54:00:38:{host.index // 256:02x}:{host.index % 256:02x}"


def parse_nginx_server_line(line: str) -> dict[str, Any]:
    """A web server's NGINX_SERVER_LOG line: a request answered by that server, no balancer."""
    rec = json.loads(line)
    request_time = float(rec["request_time"])
    return {
        **truth_request(fmt_client(rec["ip"], rec["port"]), rec["method"], rec["uri"],
                        rec["status"], None, None, float(rec["msec"]) - request_time,
                        request_time),
        "server": rec["server"],
        "host": rec["host"],
    }


def parse_nginx_xff_line(line: str, role_of: Any) -> dict[str, Any]:
    """parse_nginx_line plus the X-Forwarded-For the client itself sent (null: none)."""
    rec = json.loads(line)
    return {**parse_nginx_line(line, role_of), "forwarded_for": rec["xff"] or None}


def parse_haproxy_tcp_line(line: str, role_of: Any) -> dict[str, Any]:
    """A HAPROXY_TCP_LOG_FORMAT line: one client connection relayed to one server."""
    keys = [k.lstrip("%") for k in HAPROXY_TCP_LOG_FORMAT.split()]
    rec = dict(zip(keys, line.split(), strict=True))
    return {
        "client": fmt_client(rec["ci"], rec["cp"]),
        "backend": role_of(rec["si"]) if rec["s"] != "<NOSRV>" else None,
        "upstream_source": (rec["bi"], int(rec["bp"])) if rec["bp"] != "-" else None,
        "start": round(int(rec["Ts"]) + int(rec["ms"]) / 1000, 3),
        "request_time": max(int(rec["Tt"]), 0) / 1000,
        "termination": rec["ts"],
    }


# --------------------------------------------------------------------------- the farm


class Farm:
    """Builds the farm on __enter__, tears everything down on __exit__."""

    def __init__(self, spec: FarmSpec, workdir: Path | str, prefix: str | None = None,
                 switch_ns: str | None = None, port_tag: str = "") -> None:
        self.spec = spec
        self.workdir = Path(workdir)
        self.prefix = prefix or f"lbl{os.getpid()}{next(_farm_counter)}"
        self.hosts = make_hosts(spec)
        # Issue 18: a second farm plugs its hosts into this farm's switch (port names p<tag>-…).
        self.shared_switch = switch_ns is not None
        self.switch_ns = switch_ns or f"{self.prefix}-sw"
        self.port_tag = port_tag
        self.gateway: Host | None = None  # spec.router: the router namespace
        self.gateway_addrs: list[str] = []  # its addresses, the clients' side first
        self.other: Farm | None = None  # spec.second_farm, on the same switch
        self.rundir: Path | None = None
        self._namespaces: list[str] = []
        self._procs: dict[str, Proc] = {}
        self._captures: dict[str, tuple[Proc, Path, Host]] = {}
        self.finished_captures: dict[str, tuple[Path, Host]] = {}
        self.capture_options: dict[str, dict[str, str]] = {}  # capture -> iface, link type
        self.extra_truth: dict[str, Any] = {}  # keys a scenario adds to every truth of its run
        self.keylog: Path | None = None  # HTTPS: the client's SSLKEYLOGFILE (curl_tls)
        # Issue 19: interim statuses each client connection got, per request in order
        # ("ip:port" -> [[100], []...]), from curl's own trace (curl_traced).
        self.interims: dict[str, list[list[int]]] = {}

    # ---- lookup
    def host(self, name: str) -> Host:
        for h in self.hosts:
            if h.name == name or h.role == name:
                return h
        raise KeyError(name)

    @property
    def clients(self) -> list[Host]:
        return [h for h in self.hosts if h.role == "client"]

    @property
    def backends(self) -> list[Host]:
        """The backends, or with balancer="none" the web servers."""
        return [h for h in self.hosts if h.role not in ("client", "M3")]

    @property
    def m3(self) -> Host:
        return self.host("m3")

    def https_url(self, path: str = "/ejemplo.html") -> str:
        port = "" if self.spec.https_port == 443 else f":{self.spec.https_port}"
        return f"https://{self.m3.url_host}{port}{path}"

    def url(self, path: str = "/ejemplo.html") -> str:
        port = "" if self.spec.http_port == 80 else f":{self.spec.http_port}"
        return f"http://{self.m3.url_host}{port}{path}"

    # ---- lifecycle
    def __enter__(self) -> Farm:
        try:
            self.workdir.mkdir(parents=True, exist_ok=True)
            # Apache's children run as www-data: their files must be in a world-readable dir,
            # which a pytest tmp_path (0700) is not.
            self.rundir = Path(tempfile.mkdtemp(prefix=f"{self.prefix}-"))
            self.rundir.chmod(0o755)
            self._build_network()
            self._start_servers()
            if self.spec.second_farm:
                self.other = Farm(self.spec.second_farm, self.workdir / "second-farm",
                                  prefix=f"{self.prefix}b", switch_ns=self.switch_ns,
                                  port_tag="b")
                self.other.__enter__()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop captures and servers by pid, delete namespaces (and so veths and the bridge)."""
        for name in list(self._captures):
            self._safe(lambda n=name: self.stop_capture(n, settle=0))
        if self.other is not None:
            self._safe(self.other.close)
        for proc in list(self._procs.values()):
            self._safe(proc.stop)
        self._procs.clear()
        for ns in reversed(self._namespaces):
            self._safe(lambda ns=ns: self._kill_ns_pids(ns))
            self._safe(lambda ns=ns: run(["ip", "netns", "del", ns], check=False))
        self._namespaces.clear()
        if self.rundir and self.rundir.exists():
            self._safe(self._keep_logs)
            shutil.rmtree(self.rundir, ignore_errors=True)
        self.rundir = None

    @staticmethod
    def _safe(step: Any) -> None:
        # Teardown goes on whatever one step does: a leak is worse than a lost message.
        try:
            step()
        except Exception as e:  # noqa: BLE001
            print(f"lab: cleanup step failed: {e}", file=sys.stderr)

    @staticmethod
    def _kill_ns_pids(ns: str) -> None:
        # Only processes inside our own namespace: the servers we started and their children.
        out = run(["ip", "netns", "pids", ns], check=False).stdout.split()
        for pid in out:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)

    def _keep_logs(self) -> None:
        assert self.rundir is not None
        dest = self.workdir / "logs"
        for log in self.rundir.glob("*/*.log"):
            (dest / log.parent.name).mkdir(parents=True, exist_ok=True)
            shutil.copy(log, dest / log.parent.name / log.name)

    # ---- network
    def ns_exec(self, host: Host, cmd: list[str]) -> list[str]:
        return ["ip", "netns", "exec", host.ns, *cmd]

    def _add_ns(self, name: str) -> str:
        run(["ip", "netns", "add", name])
        self._namespaces.append(name)
        return name

    def _build_network(self) -> None:
        if self.spec.loopback:
            return self._build_one_namespace()
        sw = self.switch_ns
        if not self.shared_switch:
            self._add_ns(sw)
            # The switch only forwards frames: no IPv6 of its own, so it adds no chatter.
            run(["ip", "netns", "exec", sw, "sysctl", "-qw",
                 "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"])
            self._add_bridge("br0")
        if self.spec.back_ipv4_prefix:  # the back network behind a two-NIC M3
            self._add_bridge("br1")
        if self.spec.router:  # the clients' network, behind the router
            self._add_bridge("br2")
        for host in self.hosts:
            host.ns = self._add_ns(f"{self.prefix}-{host.name}")
            self._configure_ipv6(host)
            port = f"p{self.port_tag}-{host.name}"
            run(["ip", "-n", sw, "link", "add", port, "type", "veth",
                 "peer", "name", host.ifname, "netns", host.ns])
            run(["ip", "-n", sw, "link", "set", port, "master", host.bridge, "up"])
            self._configure_host_link(host)
        if self.spec.back_ipv4_prefix:
            self._add_back_nic(self.m3)
        if self.spec.vxlan:
            for host in self.hosts:
                self._add_vxlan(host)
        if self.spec.router:
            self._add_router()
        if self.spec.loss_every:
            self._start_loss()

    def _add_bridge(self, name: str) -> None:
        # mcast_snooping 0: neighbour solicitations reach every port, as on a VirtualBox
        # host-only network; stp off so ports forward at once.
        run(["ip", "-n", self.switch_ns, "link", "add", name, "type", "bridge",
             "mcast_snooping", "0", "stp_state", "0"])
        run(["ip", "-n", self.switch_ns, "link", "set", name, "up"])

    def _configure_ipv6(self, host: Host) -> None:
        # An IPv6 front (issue 18): the backends are IPv4-only hosts.
        if not self.spec.ipv6_prefix or (self.spec.front_ipv6 and not host.ipv6):
            # An IPv4 farm stays free of IPv6 chatter (MLD, router solicitations).
            keys = ["net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"]
        else:
            # No DAD (addresses usable at once), no router solicitations: no router here.
            keys = ["net.ipv6.conf.default.accept_dad=0",
                    "net.ipv6.conf.default.router_solicitations=0"]
        run(self.ns_exec(host, ["sysctl", "-qw", *keys]))

    def _configure_host_link(self, host: Host) -> None:
        ns, dev = host.ns, host.ifname
        run(["ip", "-n", ns, "link", "set", "lo", "up"])
        if self.spec.vxlan:  # eth0 is the underlay; the lab's addresses go on vxlan0
            run(["ip", "-n", ns, "link", "set", dev, "address", underlay_mac(host)])
            run(["ip", "-n", ns, "addr", "add", f"{self.underlay_addr(host)}/24", "dev", dev])
            if shutil.which("ethtool"):
                run(self.ns_exec(host, ["ethtool", "-K", dev, "tx", "off"]), check=False)
            run(["ip", "-n", ns, "link", "set", dev, "up"])
            return
        run(["ip", "-n", ns, "link", "set", dev, "address", host.mac])
        if host.ipv4:
            run(["ip", "-n", ns, "addr", "add", f"{host.ipv4}/24", "dev", dev])
        if host.ipv6:
            run(["ip", "-n", ns, "addr", "add", f"{host.ipv6}/64", "dev", dev, "nodad"])
        # Checksums computed in software, so captured packets carry real checksums like
        # frames from VirtualBox NICs (veth otherwise leaves them partial).
        if shutil.which("ethtool"):
            run(self.ns_exec(host, ["ethtool", "-K", dev, "tx", "off"]), check=False)
        run(["ip", "-n", ns, "link", "set", dev, "up"])

    # ---- servers
    def _start(self, name: str, host: Host, cmd: list[str], stdout: Path, stderr: Path,
               stop_signal: int = signal.SIGTERM) -> Proc:
        out, err = stdout.open("wb"), stderr.open("wb")
        # `ip netns exec` execs the command: the pid is the server's own.
        popen = subprocess.Popen(self.ns_exec(host, cmd), stdout=out, stderr=err,
                                 stdin=subprocess.DEVNULL, start_new_session=True)
        proc = Proc(name, popen, stop_signal, [out, err])
        self._procs[name] = proc
        return proc

    def _host_dir(self, host: Host) -> Path:
        assert self.rundir is not None
        d = self.rundir / host.name
        for sub in ("www", "tmp"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        d.chmod(0o755)
        return d

    def _start_servers(self) -> None:
        if self.spec.balancer == "none":
            for i, server in enumerate(self.backends):
                self._start_web_server(server, i)
            for h in self.backends:
                self.wait_listening(h)
            return
        for i, b in enumerate(self.backends):
            self._start_backend(b, int(b.role[1:]) if self.spec.backend_numbers
                                else backend_number(i))
        self._start_balancer()
        for h in [*self.backends, self.m3]:
            self.wait_listening(h)
        if self.spec.noise:
            self._start_noise_services()
        if self.spec.tls:
            self.wait_listening(self.m3, port=self.spec.https_port)
        if self.spec.backend_tls:
            for b in self.backends:
                self.wait_listening(b, port=self.spec.https_port)

    def _start_backend(self, host: Host, n: int) -> None:
        d = self._host_dir(host)
        page = d / "www" / "ejemplo.html"
        page.write_text(PAGE.format(n=n), encoding="utf-8")
        page.chmod(0o644)
        os.utime(page, (PAGE_MTIME, PAGE_MTIME))
        for rel, size in self.spec.assets:
            asset = d / "www" / rel.lstrip("/")
            asset.write_text(asset_text(rel, size), encoding="utf-8")
            asset.chmod(0o644)
            os.utime(asset, (PAGE_MTIME, PAGE_MTIME))
        (d / "www").chmod(0o755)
        conf = d / "server.conf"
        if self.spec.backend_server == "apache2":
            conf.write_text(apache_conf(d, host, host.port or self.spec.http_port))
            cmd = ["apache2", "-f", str(conf), "-DFOREGROUND"]
            if self.spec.backend_tls:
                cmd = apache_tls_backend(d, host, self.spec.https_port, conf, cmd)
            if self.spec.upload_cgi:
                apache_upload_cgi(d, n, conf)
        elif self.spec.backend_server == "nginx":
            conf.write_text(nginx_backend_conf(d, host, host.port or self.spec.http_port))
            cmd = ["nginx", "-c", str(conf)]
        elif self.spec.backend_server == "wsserver":
            cmd = [sys.executable, str(LAB_DIR / "wsserver.py"), "--listen", host.addr,
                   "--port", str(self.spec.http_port), "--root", str(d / "www"),
                   "--log", str(d / "access.log")]
        else:
            raise LabError(f"unknown backend server {self.spec.backend_server!r}")
        self._start(host.name, host, cmd, d / "stdout.log", d / "stderr.log")

    def _start_balancer(self) -> None:
        if self.spec.balancer == "apache2":
            return self._start_apache_balancer()
        if self.spec.balancer == "varnish":
            return self._start_varnish()
        m3 = self.m3
        d = self._host_dir(m3)
        conf = d / "balancer.conf"
        if self.spec.tls:
            make_certificate(d, m3)
            self.keylog = d.parent / "sslkeys.log"
        if self.spec.balancer == "nginx":
            conf.write_text(nginx_balancer_conf(d, self.spec, m3, self.backends))
            cmd = ["nginx", "-c", str(conf)]
            stdout = d / "stdout.log"
        elif self.spec.balancer == "haproxy":
            conf.write_text(haproxy_conf(d, self.spec, m3, self.backends))
            cmd = ["haproxy", "-f", str(conf), "-db"]
            stdout = d / "access.log"  # `log stdout format raw`: one line per request
        else:
            raise LabError(f"unknown balancer {self.spec.balancer!r}")
        self._start(m3.name, m3, cmd, stdout, d / "stderr.log")

    def wait_listening(self, host: Host, timeout: float = 15, port: int | None = None) -> None:
        """Wait until the host's server listens on the HTTP port (no packet is sent)."""
        deadline = time.monotonic() + timeout
        port = f":{port or host.port or self.spec.http_port}"
        while time.monotonic() < deadline:
            proc = self._procs.get(host.name)
            if proc and proc.popen.poll() is not None:
                raise LabError(f"{host.name}'s server exited: {self._stderr_tail(host)}")
            out = run(self.ns_exec(host, ["ss", "-Hltn"]), check=False).stdout
            if all(any(f"{a}]{port}" in ln or f"{a}{port}" in ln for ln in out.splitlines())
                   for a in host.addrs):
                return
            time.sleep(0.05)
        raise LabError(f"{host.name} not listening on {port}: {self._stderr_tail(host)}")

    def _stderr_tail(self, host: Host) -> str:
        if not self.rundir:
            return ""
        d = self.rundir / host.name
        text = ""
        for f in ("stderr.log", "error.log"):
            if (d / f).exists():
                text += (d / f).read_text(errors="replace")[-500:]
        return text.strip()

    def stop_server(self, name: str) -> None:
        """Stop a backend's server: its port then answers SYN with RST (connection refused)."""
        proc = self._procs.pop(self.host(name).name)
        proc.stop()

    # ---- captures
    def start_capture(self, capture: str, host_name: str, timeout: float = 10,
                      iface: str | None = None, link_type: str | None = None) -> Path:
        """dumpcap on the host's interface; returns once it is really capturing. Host "switch"
        (issue 18): the switch namespace's bridge, iface br0 (in promiscuous mode a Linux
        bridge hands its own interface every frame it forwards: a mirror of the segment)."""
        host = self.switch_host() if host_name == "switch" else self.host(host_name)
        path = self.workdir / f"{capture}.pcapng"
        path.unlink(missing_ok=True)
        assert self.rundir is not None
        errfile = self.rundir / f"dumpcap-{capture}.log"
        proc = self._start(f"dumpcap:{capture}", host,
                           ["dumpcap", "-q", "-i", iface or host.ifname,
                            *(["-y", link_type] if link_type else []), "-w", str(path)],
                           self.rundir / f"dumpcap-{capture}.out", errfile,
                           stop_signal=signal.SIGINT)
        self._captures[capture] = (proc, path, host)
        if iface or link_type:
            self.capture_options[capture] = {"iface": iface or host.ifname,
                                             "link_type": link_type or ""}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.popen.poll() is not None:
                raise LabError(f"dumpcap {capture} exited: {errfile.read_text()}")
            # dumpcap writes the pcapng header and says "Capturing on" once the socket is open.
            if "Capturing on" in errfile.read_text() and path.exists() and path.stat().st_size:
                time.sleep(0.3)
                return path
            time.sleep(0.05)
        raise LabError(f"dumpcap {capture} did not start: {errfile.read_text()}")

    def stop_capture(self, capture: str, settle: float = 1.0) -> Path:
        proc, path, host = self._captures.pop(capture)
        # Let the last FIN/ACKs (and delayed ACKs) reach the wire before stopping.
        time.sleep(settle)
        self._procs.pop(proc.name, None)
        proc.stop()
        self.finished_captures[capture] = (path, host)
        return path

    def stop_captures(self, settle: float = 1.0) -> list[Path]:
        time.sleep(settle)
        return [self.stop_capture(c, settle=0) for c in list(self._captures)]

    # ---- traffic (always from inside a client namespace)
    def run_in(self, host_name: str, cmd: list[str], timeout: float = 120) -> str:
        return run(self.ns_exec(self.host(host_name), cmd), timeout=timeout).stdout

    def spawn_in(self, host_name: str, cmd: list[str]) -> subprocess.Popen:
        return subprocess.Popen(self.ns_exec(self.host(host_name), cmd),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def curl(self, *urls: str, client: str = "client1") -> str:
        """One curl process: several URLs share one keep-alive connection."""
        return self.run_in(client, ["curl", "-sS", "--max-time", "10", *(urls or [self.url()])])

    def tls_secrets(self) -> str:
        """The key log to store beside an HTTPS capture: the client's secrets, then (with
        backend_tls) the backends' own (Apache's SSLKEYLOGFILE), so both legs decrypt."""
        assert self.keylog is not None and self.rundir is not None
        files = [self.keylog] + [self.rundir / b.name / "sslkeys.log" for b in self.backends
                                 if self.spec.backend_tls]
        return "".join(f.read_text() for f in files if f.exists())

    def curl_tls(self, *urls: str, options: tuple[str, ...] = (), client: str = "client1") -> str:
        """curl -k (the certificate is self-signed), TLS secrets appended to self.keylog."""
        assert self.keylog is not None, "curl_tls needs FarmSpec(tls=True)"
        return self.run_in(client, ["env", f"SSLKEYLOGFILE={self.keylog}", "curl", "-sS", "-k",
                                    "--max-time", "10", *options, *(urls or [self.https_url()])])

    def ab(self, n: int, c: int, client: str = "client1") -> str:
        return self.run_in(client, ["ab", "-q", "-n", str(n), "-c", str(c), self.url()])

    def warm_neighbours(self) -> None:
        """Client(s) and M3 learn each other's MAC, as on a host that has talked to M3 before.
        With no balancer the clients ping every web server (through the router, if any); on
        one namespace's loopback there are no neighbours."""
        if self.other is not None:
            self.other.warm_neighbours()
        if self.spec.loopback:
            return
        if self.spec.vxlan:  # the underlay has long known every host (a steady data centre)
            for h in self.hosts:
                for other in self.hosts:
                    if other is not h:
                        self.run_in(h.name, ["ping", "-c", "1", "-W", "2",
                                             self.underlay_addr(other)])
        targets = [s.addr for s in self.backends] if self.spec.balancer == "none" \
            else [self.m3.addr]
        for c in self.clients:
            for addr in targets:
                self.run_in(c.name, ["ping", "-c", "1", "-W", "2", addr])

    def flush_neighbours(self, host_name: str = "m3", only_backends: bool = True) -> None:
        """Forget M3's neighbours so its next request to a backend starts with ARP/ND."""
        if self.other is not None:
            self.other.flush_neighbours(host_name, only_backends)
        if self.spec.loopback or self.spec.balancer == "none":
            return
        host = self.host(host_name)
        if not only_backends:
            run(["ip", "-n", host.ns, "neigh", "flush", "all"])
            return
        for b in self.backends:
            for a in b.addrs:
                run(["ip", "-n", host.ns, "neigh", "flush", "to", a], check=False)

    # ---- issue 10: two NICs, Apache balancer, noise services (sshd, DNS), direct requests
    def _add_back_nic(self, host: Host) -> None:
        """M3's eth1 on the back bridge br1, with its back address."""
        run(["ip", "-n", self.switch_ns, "link", "add", f"p-{host.name}b", "type", "veth",
             "peer", "name", "eth1", "netns", host.ns])
        run(["ip", "-n", self.switch_ns, "link", "set", f"p-{host.name}b", "master", "br1", "up"])
        run(["ip", "-n", host.ns, "link", "set", "eth1", "address",
             f"08:00:27:5b:{host.index // 256:02x}:{host.index % 256:02x}"])
        run(["ip", "-n", host.ns, "addr", "add", f"{host.back_ipv4}/24", "dev", "eth1"])
        if shutil.which("ethtool"):
            run(self.ns_exec(host, ["ethtool", "-K", "eth1", "tx", "off"]), check=False)
        run(["ip", "-n", host.ns, "link", "set", "eth1", "up"])

    def _start_apache_balancer(self) -> None:
        m3 = self.m3
        d = self._host_dir(m3)
        conf = d / "balancer.conf"
        conf.write_text(apache_balancer_conf(d, self.spec, m3, self.backends))
        self._start(m3.name, m3, ["apache2", "-f", str(conf), "-DFOREGROUND"],
                    d / "stdout.log", d / "stderr.log")

    def apache_balancer_log(self) -> list[dict[str, Any]]:
        assert self.rundir is not None
        text = (self.rundir / "m3" / "access.log").read_text(encoding="utf-8")
        reqs = [parse_apache_balancer_line(ln, self.role_of) for ln in text.splitlines()
                if ln.strip()]
        return sorted(reqs, key=lambda r: r["start"])

    def _start_noise_services(self) -> None:
        """sshd (throwaway host and client keys) and dnsmasq on M3, in its namespace."""
        m3 = self.m3
        d = self._host_dir(m3)
        for key in ("ssh_host_ed25519_key", "id_client"):
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "lab", "-f", str(d / key)])
        shutil.copy(d / "id_client.pub", d / "authorized_keys")
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation dir
        (d / "sshd_config").write_text(sshd_conf(d, m3))
        self._start("sshd", m3, ["/usr/sbin/sshd", "-D", "-e", "-f", str(d / "sshd_config")],
                    d / "sshd.out", d / "sshd.log")
        self._start("dnsmasq", m3, [
            "dnsmasq", "-k", "-C", "/dev/null", "--bind-interfaces",
            f"--listen-address={m3.ipv4}", "--no-resolv", "--no-hosts", "--user=root",
            f"--address=/{DNS_NAME}/{m3.ipv4}", f"--pid-file={d / 'dnsmasq.pid'}",
            "--log-queries", f"--log-facility={d / 'dnsmasq.log'}"],
            d / "dnsmasq.out", d / "dnsmasq.err")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            tcp = run(self.ns_exec(m3, ["ss", "-Hltn"]), check=False).stdout
            udp = run(self.ns_exec(m3, ["ss", "-Hlun"]), check=False).stdout
            if f"{m3.ipv4}:22" in tcp and f"{m3.ipv4}:53" in udp:
                return
            time.sleep(0.05)
        raise LabError(f"sshd/dnsmasq did not start: {(d / 'sshd.log').read_text()}")

    def ssh_cmd(self, command: str, to: str = "m3") -> list[str]:
        """An ssh command line (run it in a client) logging in to M3 with the throwaway key."""
        assert self.rundir is not None
        return ["ssh", "-F", "/dev/null", "-i", str(self.rundir / "m3" / "id_client"),
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "GlobalKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
                "-o", "LogLevel=ERROR", f"root@{self.host(to).addr}", command]

    def backend_log(self, host: Host) -> list[dict[str, Any]]:
        """An Apache backend's access log, parsed (format `lab` of apache_conf)."""
        assert self.rundir is not None
        text = (self.rundir / host.name / "access.log").read_text(encoding="utf-8")
        return [parse_apache_backend_line(ln) for ln in text.splitlines() if ln.strip()]

    def direct_requests(self) -> list[dict[str, Any]]:
        """Requests a backend got from anyone but M3 (a client fetching it directly)."""
        m3 = set(self.m3.addrs)
        out = [{"client": fmt_client(r["ip"], r["port"]), "backend": b.role,
                "method": r["method"], "uri": r["uri"], "status": r["status"],
                "start": r["start"]}
               for b in self.backends for r in self.backend_log(b) if r["ip"] not in m3]
        return sorted(out, key=lambda r: r["start"])

    def truth_extras(self, path: Path, host: Host) -> dict[str, Any]:
        """Keys added by issue 10: policy (+ weights), capture interface, noise."""
        # No balancer, no policy (issue 18).
        extras: dict[str, Any] = {
            "policy": None if self.spec.balancer == "none" else self.spec.policy}
        if self.spec.weights:
            extras["weights"] = list(self.spec.weights)
        opts = self.capture_options.get(path.name.removesuffix(".pcapng"))
        if opts:
            extras["capture_interface"] = opts["iface"]
            extras["link_type"] = link_type_of(path)
        extras.update(self.extra_truth)
        if self.spec.noise:
            extras["direct_requests"] = self.direct_requests()
            extras["other_traffic"] = {
                kind: count_matching(path, dfilter)
                for kind, dfilter in other_traffic_filters(self.m3, self.spec.http_port).items()}
        return extras

    # ---- issue 19: loss on the client's link, uploads, websockets, Varnish
    def _start_loss(self) -> None:
        """Segments lost on client1's link: an nftables rule on the switch's port (bridge
        family), so the sender records each segment and its retransmission and the receiver
        only the retransmission, as on a real lossy link. The client's own namespace cannot do
        that: a packet socket sees an incoming packet before nftables drops it."""
        port = f"p-{self.clients[0].name}"
        rules = loss_ruleset(port, self.spec.loss_every)
        proc = subprocess.run(["ip", "netns", "exec", self.switch_ns, "nft", "-f", "-"],
                              input=rules, capture_output=True, text=True, timeout=30)
        if proc.returncode:
            raise LabError(f"nft failed: {proc.stderr.strip()}")

    def loss_counters(self) -> dict[str, int]:
        """Segments the loss rules dropped, per direction ("from-client", "to-client")."""
        out = run(["ip", "netns", "exec", self.switch_ns, "nft", "-j", "list", "table",
                   "bridge", LOSS_TABLE]).stdout
        counts = {}
        for item in json.loads(out)["nftables"]:
            rule = item.get("rule")
            if rule:
                for expr in rule["expr"]:
                    if "counter" in expr:
                        counts[rule["comment"]] = expr["counter"]["packets"]
        return counts

    def _start_varnish(self) -> None:
        m3 = self.m3
        d = self._host_dir(m3)
        vcl = d / "default.vcl"
        vcl.write_text(varnish_vcl(self.spec, self.backends))
        listen = [arg for a in m3.addrs
                  for arg in ("-a", f"{a if ':' not in a else f'[{a}]'}:{self.spec.http_port}")]
        # -F: foreground; -n: its working directory (shared-memory log) in the run directory;
        # no management port; a small cache and few threads (a two-core machine).
        self._start(m3.name, m3, [
            "varnishd", "-F", "-n", str(d / "varnish"), *listen, "-f", str(vcl),
            "-s", "malloc,16m", "-T", "none", "-i", VARNISH_IDENTITY,
            "-p", "thread_pools=1", "-p", "thread_pool_min=10", "-p", "thread_pool_max=50"],
            d / "stdout.log", d / "stderr.log")

    def varnish_log(self) -> list[dict[str, Any]]:
        """Every client request of the run, from Varnish's shared-memory log (varnishncsa -d:
        read from the head of the log and exit), sorted by start."""
        assert self.rundir is not None
        d = self.rundir / "m3"
        out = run(self.ns_exec(self.m3, ["varnishncsa", "-n", str(d / "varnish"), "-d", "-F",
                                         VARNISHNCSA_FORMAT])).stdout
        (d / "access.log").write_text(out, encoding="utf-8")  # kept with the logs
        reqs = [parse_varnishncsa_line(ln, self.role_of) for ln in out.splitlines()
                if ln.strip()]
        return sorted(reqs, key=lambda r: r["start"])

    def curl_traced(self, *args: str, client: str = "client1") -> list[dict[str, Any]]:
        """One curl process with -v; what each transfer received (interim responses too) is
        kept in self.interims for the truth. Returns the transfers (parse_curl_trace)."""
        host = self.host(client)
        proc = run(self.ns_exec(host, ["curl", "-sS", "-v", "--max-time", "10", "-w",
                                       "\n@@ %{local_port} %{http_code}\n", *args]))
        transfers = parse_curl_trace(proc.stderr, proc.stdout)
        for t in transfers:
            key = fmt_client(host.addr, t["local_port"])
            self.interims.setdefault(key, []).append(t["interim"])
        return transfers

    def expect_forwarded(self) -> bool:
        """Did any upload reach a backend with its `Expect` header (the backends' upload.log)?"""
        assert self.rundir is not None
        return any('"-"' not in ln
                   for b in self.backends
                   for ln in (self.rundir / b.name / "upload.log").read_text().splitlines())

    def issue19_extras(self) -> dict[str, Any]:
        extras: dict[str, Any] = {}
        if self.spec.loss_every:
            counts = self.loss_counters()
            extras["loss"] = {"link": self.clients[0].role, "every": self.spec.loss_every,
                              "dropped_from_client": counts.get("from-client", 0),
                              "dropped_to_client": counts.get("to-client", 0)}
        if self.spec.upload_cgi:
            extras["expect_forwarded"] = self.expect_forwarded()
        return extras

    def request_keys(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Issue-19 keys per request: `interim` (uploads), `upgraded` (websockets)."""
        if not (self.spec.upload_cgi or self.spec.websocket):
            return requests
        queues = {k: list(v) for k, v in self.interims.items()}
        out = []
        for r in requests:
            r = dict(r)
            expect, upgrade = r.pop("expect"), r.pop("upgrade")
            protocol = r.pop("server_protocol")
            if self.spec.upload_cgi:
                got = queues.get(r["client"], [])
                r["interim"] = got.pop(0) if got else []
                # nginx answers 100 Continue itself to an HTTP/1.1 request that expects it.
                asked = expect.lower() == "100-continue" and protocol == "HTTP/1.1"
                if asked != (r["interim"] == [100]):
                    raise LabError(f"{r['client']} {r['uri']}: Expect {expect!r} but the "
                                   f"client got {r['interim']}")
            if self.spec.websocket:
                r["upgraded"] = r["status"] == 101 and upgrade.lower() == "websocket"
            out.append(r)
        return out

    # ---- issue 18: a router, VXLAN, one namespace, web servers, layer 4, two farms
    def switch_host(self) -> Host:
        """The switch as a capture point: its bridge br0 sees every frame of the segment."""
        return Host("switch", "switch", 0, None, None, ns=self.switch_ns, ifname="br0")

    def underlay_addr(self, host: Host) -> str:
        """A VXLAN host's eth0 address: the underlay prefix and the host's own number."""
        return f"{self.spec.underlay_prefix}{host.addr.rsplit('.', 1)[-1]}"

    def _add_vxlan(self, host: Host) -> None:
        """vxlan0 over eth0 with the lab's MAC and addresses; every other host's underlay
        address gets broadcasts and unknown destinations (head-end replication)."""
        ns = host.ns
        run(["ip", "-n", ns, "link", "add", "vxlan0", "type", "vxlan", "id", str(VXLAN_ID),
             "local", self.underlay_addr(host), "dstport", str(VXLAN_PORT), "dev", host.ifname])
        run(["ip", "-n", ns, "link", "set", "vxlan0", "address", host.mac])
        for a in host.addrs:
            run(["ip", "-n", ns, "addr", "add", f"{a}/{64 if ':' in a else 24}", "dev", "vxlan0",
                 *(["nodad"] if ":" in a else [])])
        for other in self.hosts:
            if other is not host:
                run(self.ns_exec(host, ["bridge", "fdb", "append", "00:00:00:00:00:00", "dev",
                                        "vxlan0", "dst", self.underlay_addr(other)]))
        if shutil.which("ethtool"):
            run(self.ns_exec(host, ["ethtool", "-K", "vxlan0", "tx", "off"]), check=False)
        run(["ip", "-n", ns, "link", "set", "vxlan0", "up"])

    def _add_router(self) -> None:
        """A router namespace: eth0 on the clients' bridge br2 (.2 of their network), eth1 on
        br0 with .254 in every subnet of the other hosts; each side's default route via it."""
        spec = self.spec
        if spec.ipv6_prefix:
            raise LabError("router: IPv4 only")
        subnets = sorted({h.ipv4.rsplit(".", 1)[0] for h in self.hosts
                          if h.role != "client" and h.ipv4})
        gw = Host("gw", "gateway", 0, f"{spec.client_ipv4_prefix}2", None, bridge="br2",
                  back_ipv4=f"{subnets[0]}.254")
        gw.ns = self._add_ns(f"{self.prefix}-gw")
        run(self.ns_exec(gw, ["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
                              "net.ipv6.conf.default.disable_ipv6=1", "net.ipv4.ip_forward=1"]))
        run(["ip", "-n", gw.ns, "link", "set", "lo", "up"])
        sides = (("eth0", "br2", [f"{spec.client_ipv4_prefix}2"]),
                 ("eth1", "br0", [f"{net}.254" for net in subnets]))
        for (dev, bridge, addrs), mac in zip(sides, GATEWAY_MACS, strict=True):
            port = f"p{self.port_tag}-gw{dev[-1]}"
            run(["ip", "-n", self.switch_ns, "link", "add", port, "type", "veth",
                 "peer", "name", dev, "netns", gw.ns])
            run(["ip", "-n", self.switch_ns, "link", "set", port, "master", bridge, "up"])
            run(["ip", "-n", gw.ns, "link", "set", dev, "address", mac])
            for a in addrs:
                run(["ip", "-n", gw.ns, "addr", "add", f"{a}/24", "dev", dev])
            if shutil.which("ethtool"):
                run(self.ns_exec(gw, ["ethtool", "-K", dev, "tx", "off"]), check=False)
            run(["ip", "-n", gw.ns, "link", "set", dev, "up"])
        for h in self.hosts:
            via = gw.ipv4 if h.role == "client" else f"{h.addr.rsplit('.', 1)[0]}.254"
            run(["ip", "-n", h.ns, "route", "add", "default", "via", via])
        self.gateway = gw
        self.gateway_addrs = [a for _, _, addrs in sides for a in addrs]

    def _build_one_namespace(self) -> None:
        """spec.loopback: every host is a process in one namespace, talking over lo."""
        box = self._add_ns(f"{self.prefix}-box")
        for host in self.hosts:
            host.ns, host.ifname = box, "lo"
        if not self.spec.ipv6_prefix:
            run(["ip", "netns", "exec", box, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
                 "net.ipv6.conf.default.disable_ipv6=1"])
        run(["ip", "-n", box, "link", "set", "lo", "up"])

    def _start_web_server(self, host: Host, i: int) -> None:
        """balancer="none": an nginx web server with its own site (no lab marker) and a log
        of every request it answered (NGINX_SERVER_LOG)."""
        d = self._host_dir(host)
        site = SITES[i % len(SITES)]
        colour = ("336699", "993333", "339933", "996633")[i % 4]
        files = {"index.html": WEB_PAGE.format(site=site),
                 "estilo.css": WEB_CSS.format(colour=colour)}
        for name, text in files.items():
            f = d / "www" / name
            f.write_text(text, encoding="utf-8")
            f.chmod(0o644)
            os.utime(f, (PAGE_MTIME, PAGE_MTIME))
        (d / "www").chmod(0o755)
        conf = d / "server.conf"
        conf.write_text(nginx_backend_conf(d, host, self.spec.http_port, truth_log=True,
                                           index="index.html"))
        self._start(host.name, host, ["nginx", "-c", str(conf)], d / "stdout.log",
                    d / "stderr.log")

    def site_url(self, server: str, path: str = "/") -> tuple[str, ...]:
        """curl arguments for a web server's site by name, without DNS (--resolve)."""
        i = self.backends.index(self.host(server))
        site = SITES[i % len(SITES)]
        return ("--resolve", f"{site}:{self.spec.http_port}:{self.host(server).addr}",
                f"http://{site}{path}")

    def web_servers_log(self) -> list[dict[str, Any]]:
        """balancer="none": every request of every web server's log, sorted by start."""
        assert self.rundir is not None
        reqs = [parse_nginx_server_line(ln) for s in self.backends
                for ln in (self.rundir / s.name / "access.log").read_text().splitlines()
                if ln.strip()]
        return sorted(reqs, key=lambda r: r["start"])

    def haproxy_tcp_log(self) -> list[dict[str, Any]]:
        """haproxy `mode tcp` logs connections, not requests: each request is a line of the
        backend's own log, found by haproxy's end of the back-leg connection (%bi:%bp, which
        the backend logs as its client); method, URI and status come from the backend."""
        assert self.rundir is not None
        text = (self.rundir / "m3" / "access.log").read_text(encoding="utf-8")
        seen = {(r["ip"], r["port"]): (b.role, r) for b in self.backends
                for r in self.backend_log(b)}
        out = []
        for ln in text.splitlines():
            if not ln.strip():
                continue
            conn = parse_haproxy_tcp_line(ln, self.role_of)
            hit = seen.get(conn["upstream_source"]) if conn["upstream_source"] else None
            if hit is None:
                raise LabError(f"haproxy connection with no backend request: {ln}")
            role, r = hit
            out.append({"client": conn["client"], "method": r["method"], "uri": r["uri"],
                        "status": r["status"], "backend": role, "upstreams": [role],
                        "upstream_statuses": [str(r["status"])], "start": conn["start"],
                        "request_time": conn["request_time"],
                        "upstream_source": fmt_client(*conn["upstream_source"])})
        return sorted(out, key=lambda r: r["start"])

    def backends_see_clients(self) -> bool:
        """Did any backend log a client's address, as its peer or in X-Forwarded-For?"""
        clients = {a for c in self.clients for a in c.addrs}
        return any(r["ip"] in clients or any(a in r["xff"] for a in clients)
                   for b in self.backends for r in self.backend_log(b))

    def visible_roles(self, path: Path) -> list[str]:
        """The roles that take part in a TCP segment of the capture, by the innermost IP
        header (inside VXLAN or ERSPAN) and, on a one-namespace farm, by address:port."""
        out = run(["tshark", "-n", "-r", str(path), "-Y", "tcp", "-T", "fields",
                   "-e", "ip.src", "-e", "ip.dst", "-e", "ipv6.src", "-e", "ipv6.dst",
                   "-e", "tcp.srcport", "-e", "tcp.dstport"]).stdout
        seen = set()
        for line in out.splitlines():
            v4s, v4d, v6s, v6d, sport, dport = line.split("\t")
            src, dst = ((v6s, v6d) if v6s else (v4s, v4d))
            for addr, port in ((src.split(",")[-1], sport), (dst.split(",")[-1], dport)):
                role = self.role_of(fmt_client(addr, port)) or self.role_of(addr)
                if role:
                    seen.add(role)
        return [r for r in self.roles() if r in seen]

    def balancer_summary(self) -> dict[str, Any]:
        """This farm as one of the truth's other_balancers (two farms on one switch)."""
        log = self.request_keys(self.balancer_log())
        return {"address": self.m3.addr, "requests": len(log), "balancer": self.spec.balancer,
                "backend_server": self.spec.backend_server, "roles": self.roles(),
                "markers": {b.role: MARKER.format(n=b.role[1:]) for b in self.backends},
                "log": log}

    def issue18_extras(self) -> dict[str, Any]:
        spec, extras = self.spec, {}
        if self.gateway is not None:
            extras["gateway"] = {"addresses": self.gateway_addrs, "macs": list(GATEWAY_MACS)}
        if spec.vxlan:
            extras["tunnel"] = {
                "type": "vxlan", "vni": VXLAN_ID, "udp_port": VXLAN_PORT,
                "underlay": {role: [self.underlay_addr(h) for h in self.hosts if h.role == role]
                             for role in self.roles()}}
        if spec.balancer == "haproxy" and spec.balancer_mode == "tcp":
            extras["balancer_mode"] = "tcp"
            extras["backends_see_clients"] = self.backends_see_clients()
        if self.other is not None:
            extras["other_balancers"] = [self.other.balancer_summary()]
        return extras

    # ---- truth
    def roles(self) -> dict[str, list[str]]:
        roles: dict[str, list[str]] = {}
        for h in self.hosts:
            roles.setdefault(h.role, []).extend(h.role_addrs)
        return roles

    def role_of(self, addr: str) -> str | None:
        """The role of an address, or of address:port on a one-namespace farm."""
        for h in self.hosts:
            if addr in h.role_addrs:
                return h.role
        return None

    def balancer_log(self) -> list[dict[str, Any]]:
        """The balancer's requests, parsed, sorted by arrival time at the balancer."""
        assert self.rundir is not None
        if self.spec.balancer == "none":
            return self.web_servers_log()
        if self.spec.balancer == "haproxy" and self.spec.balancer_mode == "tcp":
            return self.haproxy_tcp_log()
        if self.spec.balancer == "apache2":
            return self.apache_balancer_log()
        if self.spec.balancer == "varnish":
            return self.varnish_log()
        text = (self.rundir / "m3" / "access.log").read_text(encoding="utf-8")
        parse = parse_nginx_line if self.spec.balancer == "nginx" else parse_haproxy_line
        if self.spec.upload_cgi or self.spec.websocket:
            parse = parse_nginx_http_line
        if self.spec.log_forwarded_for:
            parse = parse_nginx_xff_line
        if self.spec.tls:
            nginx = self.spec.balancer == "nginx"
            parse = parse_nginx_tls_line if nginx else parse_haproxy_tls_line
        reqs = [parse(ln, self.role_of) for ln in text.splitlines() if ln.strip()]
        # Python's sort is stable: requests in the same millisecond keep log order.
        return sorted(reqs, key=lambda r: r["start"])

    def truth(self, capture: str, scenario: str) -> dict[str, Any]:
        path, host = self.finished_captures[capture]
        none = self.spec.balancer == "none"
        truth = {
            "capture": path.name,
            "scenario": scenario,
            "balancer": None if none else self.spec.balancer,
            "backend_server": self.spec.backend_server,
            "capture_point": host.role,
            "roles": self.roles(),
            "http_port": self.spec.http_port,
            "frames": count_frames(path),
            "markers": {} if none else {b.role: MARKER.format(n=b.role[1:])
                                        for b in self.backends},
            # The balancer's own HTTP checks: back-leg requests that serve no client.
            "health_checks": self.spec.health_checks,
            **self.truth_extras(path, host),
            **self.issue19_extras(),
            **self.issue18_extras(),
            "requests": self.request_keys(self.balancer_log()),
        }
        if self.spec.tls:
            # HTTPS: the TLS port and the client's key log, stored beside the capture.
            requests = truth.pop("requests")
            truth.update(https_port=self.spec.https_port, keylog=f"{path.stem}.keys",
                         requests=requests)
        return truth


# --------------------------------------------------------------------------- log parsing


def truth_request(client: str, method: str, uri: str, status: str, backend: str | None,
                  upstream: str | None, start: float, request_time: float) -> dict[str, Any]:
    """One request of a truth file, from a server's log line: `backend` served it, `upstream`
    is the backend the balancer tried (with `status` as its answer)."""
    return {
        "client": client,
        "method": method,
        "uri": uri,
        "status": int(status),
        "backend": backend,
        "upstreams": [upstream] if upstream else [],
        "upstream_statuses": [status] if upstream else [],
        "start": round(start, 3),
        "request_time": request_time,
    }


def fmt_client(ip: str, port: str | int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def split_hostport(addr: str) -> str:
    """'[fd00:56::101]:80' or '192.168.56.101:80' -> the address alone."""
    host = addr.rsplit(":", 1)[0] if addr.count(":") == 1 or addr.startswith("[") else addr
    return host.strip("[]")


def parse_nginx_line(line: str, role_of: Any) -> dict[str, Any]:
    rec = json.loads(line)
    addrs = [a.strip() for a in rec["upstream_addr"].split(",") if a.strip()]
    statuses = [s.strip() for s in rec["upstream_status"].split(",") if s.strip()]
    upstreams, ups_statuses = [], []
    for addr, st in zip(addrs, statuses, strict=False):
        # address:port names a backend on a one-namespace farm (issue 18), else the address.
        role = role_of(addr) or role_of(split_hostport(addr))
        # "no live upstreams": nginx logs the upstream's name, no server was tried.
        if role is not None:
            upstreams.append(role)
            ups_statuses.append(st)
    backend = upstreams[-1] if upstreams and ups_statuses[-1] not in GATEWAY_ERRORS else None
    request_time = float(rec["request_time"])
    return {
        "client": fmt_client(rec["ip"], rec["port"]),
        "method": rec["method"],
        "uri": rec["uri"],
        "status": int(rec["status"]),
        "backend": backend,
        "upstreams": upstreams,
        "upstream_statuses": ups_statuses,
        "start": round(float(rec["msec"]) - request_time, 3),
        "request_time": request_time,
    }


def parse_haproxy_line(line: str, role_of: Any) -> dict[str, Any]:
    keys = [k.lstrip("%") for k in HAPROXY_LOG_FORMAT.split()]
    rec = dict(zip(keys, line.split(), strict=True))
    role = role_of(rec["si"]) if rec["s"] != "<NOSRV>" else None
    # Tr is -1 when no response came from the server: then haproxy answered itself.
    answered = role is not None and int(rec["Tr"]) >= 0
    accept = int(rec["Ts"]) + int(rec["ms"]) / 1000
    # In keep-alive, the accept date is when the previous response ended: the request itself
    # starts after the handshake and idle times.
    start = accept + (max(int(rec["Th"]), 0) + max(int(rec["Ti"]), 0)) / 1000
    return {
        "client": fmt_client(rec["ci"], rec["cp"]),
        "method": rec["HM"],
        "uri": rec["HU"],
        "status": int(rec["ST"]),
        "backend": role if answered else None,
        "upstreams": [role] if role else [],
        "upstream_statuses": [rec["ST"] if answered else "503"] if role else [],
        "start": round(start, 3),
        "request_time": max(int(rec["Ta"]), 0) / 1000,
    }


def count_frames(path: Path) -> int:
    out = run(["tshark", "-n", "-r", str(path), "-T", "fields", "-e", "frame.number"]).stdout
    return len(out.split())


def write_truth(truth: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(truth, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------- CLI


def _raise_interrupt(signum: int, frame: object) -> None:
    # SIGTERM unwinds like Ctrl-C, so the Farm's __exit__ removes what it started.
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", type=Path, default=Path("lab-out"))
    ap.add_argument("--balancer", choices=["nginx", "haproxy", "varnish"], default="nginx")
    ap.add_argument("--backend-server", choices=["apache2", "nginx", "wsserver"],
                    default="apache2")
    ap.add_argument("--backends", type=int, default=2)
    ap.add_argument("--ipv6", action="store_true", help="IPv6 only (fd00:56::/64)")
    ap.add_argument("--keepalive", type=int, default=0)
    ap.add_argument("--requests", type=int, default=3)
    ap.add_argument("--capture", action="append", default=[],
                    help="host to record (client1, m3, m1...), repeatable; default m3")
    ap.add_argument("--flush", action="store_true", help="flush M3's neighbour cache first")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("farm.py: must run as root (network namespaces)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _raise_interrupt)
    spec = FarmSpec(balancer=args.balancer, backend_server=args.backend_server,
                    backends=args.backends, keepalive=args.keepalive,
                    ipv4_prefix=None if args.ipv6 else "192.168.56.",
                    ipv6_prefix="fd00:56::" if args.ipv6 else None)
    with Farm(spec, args.workdir) as farm:
        farm.warm_neighbours()
        if args.flush:
            farm.flush_neighbours()
        for host in args.capture or ["m3"]:
            farm.start_capture(f"lab-{host}", host)
        for _ in range(args.requests):
            farm.curl(farm.url())
        farm.stop_captures()
        for capture in farm.finished_captures:
            write_truth(farm.truth(capture, "cli"), args.workdir / f"{capture}.truth.json")
    print(f"farm.py: wrote {args.workdir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

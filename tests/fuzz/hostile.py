"""Hostile HTTP crafted byte by byte, seen at M3 (both legs) or at the client (front leg).

Built on tests/craft.py's checksums and pcap writer: real Ethernet/IPv4/TCP frames with
correct checksums, so tshark dissects them exactly as it would the farm's own traffic. The
back leg carries what nginx or haproxy would add (`X-Real-IP`, `X-Forwarded-For`), or garbage
in their place.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

from craft import _checksum, _ip, write_pcap

# The classic lab: addresses and made-up MACs (08:00:27 = VirtualBox, like the farm's).
HOSTS = {
    "client": ("192.168.56.1", bytes.fromhex("0a0027000001")),
    "M3": ("192.168.56.103", bytes.fromhex("080027000103")),
    "M1": ("192.168.56.101", bytes.fromhex("080027000101")),
    "M2": ("192.168.56.102", bytes.fromhex("080027000102")),
}
CLIENT_IP = HOSTS["client"][0]
SYN, ACK, PSH, FIN = 0x02, 0x10, 0x08, 0x01
MSS = 1448


def frame(src: str, dst: str, sport: int, dport: int, flags: int, seq: int, ack: int,
          payload: bytes = b"") -> bytes:
    """One Ethernet/IPv4/TCP frame between two roles of HOSTS, checksums right."""
    (sip, smac), (dip, dmac) = HOSTS[src], HOSTS[dst]
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4,
                      flags, 64240, 0, 0)
    pseudo = _ip(sip) + _ip(dip) + struct.pack("!BBH", 0, 6, len(tcp) + len(payload))
    csum = _checksum(pseudo + tcp + payload)
    tcp = tcp[:16] + struct.pack("!H", csum) + tcp[18:] + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0x1234, 0x4000, 64, 6, 0,
                     _ip(sip), _ip(dip))
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    return dmac + smac + b"\x08\x00" + ip + tcp


@dataclass
class Conn:
    """A TCP connection from role `a` (port `aport`) to role `b` port 80; keeps the sequence
    numbers so every segment acknowledges what the other side sent."""

    a: str
    b: str
    aport: int
    bport: int = 80
    nxt: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.nxt = {self.a: 1000 + self.aport, self.b: 500_000 + self.aport}

    def send(self, src: str, flags: int, payload: bytes = b"") -> list[bytes]:
        """Segments from `src` (payload cut at the MSS, like a real stack would)."""
        dst = self.b if src == self.a else self.a
        sport, dport = (self.aport, self.bport) if src == self.a else (self.bport, self.aport)
        ack = self.nxt[dst] if flags & ACK else 0
        chunks = [payload[i:i + MSS] for i in range(0, len(payload), MSS)] or [b""]
        out = []
        for chunk in chunks:
            out.append(frame(src, dst, sport, dport, flags, self.nxt[src], ack, chunk))
            self.nxt[src] += len(chunk)
        if flags & (SYN | FIN):
            self.nxt[src] += 1
        return out

    def open(self) -> list[bytes]:
        return (self.send(self.a, SYN) + self.send(self.b, SYN | ACK)
                + self.send(self.a, ACK))

    def close(self, first: str) -> list[bytes]:
        other = self.b if first == self.a else self.a
        return (self.send(first, FIN | ACK) + self.send(other, FIN | ACK)
                + self.send(first, ACK))


def http_request(request_line: bytes, headers: list[bytes], host: bytes = b"192.168.56.103"
                 ) -> bytes:
    return request_line + b"\r\nHost: " + host + b"\r\n" + b"".join(
        h + b"\r\n" for h in headers) + b"\r\n"


def http_response(body: bytes, status: bytes = b"200 OK") -> bytes:
    return (b"HTTP/1.1 " + status + b"\r\nContent-Type: text/html\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\n\r\n" + body)


def marker_body(backend: str) -> bytes:
    """The classic lab's page: names its backend ("Soy la máquina 1")."""
    return b"<p>Soy la m\xc3\xa1quina " + backend.removeprefix("M").encode() + b"</p>\n"


def m3_exchange(port: int, request_line: bytes, front_headers: list[bytes],
                back_headers: list[bytes], backend: str = "M1",
                back_request_line: bytes | None = None) -> list[bytes]:
    """One client request as M3 sees it: the front connection, the upstream connection to
    `backend` carrying `back_headers` (what the balancer added), the response both ways."""
    front = Conn("client", "M3", port)
    back = Conn("M3", backend, 30000 + port % 30000)
    req = http_request(request_line, front_headers)
    up_req = http_request(back_request_line or request_line, back_headers)
    body = marker_body(backend)
    resp = http_response(body)
    frames = front.open() + front.send("client", PSH | ACK, req) + front.send("M3", ACK)
    frames += back.open() + back.send("M3", PSH | ACK, up_req) + back.send(backend, ACK)
    frames += back.send(backend, PSH | ACK, resp) + back.send("M3", ACK)
    frames += back.close("M3")
    frames += front.send("M3", PSH | ACK, resp) + front.send("client", ACK)
    frames += front.close("client")
    return frames


def client_exchange(port: int, request_line: bytes, headers: list[bytes],
                    backend: str = "M1") -> list[bytes]:
    """The same request seen from the client: the front leg only."""
    front = Conn("client", "M3", port)
    req = http_request(request_line, headers)
    resp = http_response(marker_body(backend))
    return (front.open() + front.send("client", PSH | ACK, req) + front.send("M3", ACK)
            + front.send("M3", PSH | ACK, resp) + front.send("client", ACK)
            + front.close("client"))


def nginx_back_headers(client_xff: bytes | None = None, client_ip: bytes = b"192.168.56.1"
                       ) -> list[bytes]:
    """What the classic lab's nginx adds (`proxy_set_header X-Real-IP $remote_addr;
    X-Forwarded-For $proxy_add_x_forwarded_for`): a client's own X-Forwarded-For is kept,
    with the real address appended."""
    xff = client_ip if client_xff is None else client_xff + b", " + client_ip
    return [b"X-Real-IP: " + client_ip, b"X-Forwarded-For: " + xff]


def haproxy_back_headers(client_xff: bytes | None = None,
                         client_ip: bytes = b"192.168.56.1") -> list[bytes]:
    """haproxy's `option forwardfor`: the client's own header line is forwarded untouched
    and haproxy adds a second X-Forwarded-For line of its own, after it."""
    lines = [] if client_xff is None else [b"X-Forwarded-For: " + client_xff]
    return lines + [b"X-Forwarded-For: " + client_ip]


def write(path: Path, frames: list[bytes]) -> Path:
    return write_pcap(path, frames, step=0.0002)


# --------------------------------------------------------------------------- fuzz pieces
# What a hostile client (or a broken balancer) can put in the bytes. Names are stable: the
# fuzz plan refers to them.

URI_PAYLOADS = {
    "plain": b"/ejemplo.html",
    "bel": b"/a\x07bell",
    "nul": b"/before\x00after",
    "controls": b"/" + bytes(range(1, 32)).replace(b" ", b"") + b"\x7f",
    "ansi": b"/\x1b[2J\x1b]0;owned\x07\x1b[31mred",
    "invalid-utf8": b"/caf\xe3/\xff\xfe/\xc0\xaf/\x80",
    "overlong": b"/" + b"A" * 8000,
    "rtl": "/\u202eexe.txt".encode(),
    "percent": b"/%00%1b%e3%ZZ",
    "formula": b"/=cmd|' /C calc'!A0",
    "pipes": b"/a|b`c`<script>",
}

FRONT_HEADERS = {
    "xff-spoof": b"X-Forwarded-For: 6.6.6.6",
    "xff-list": b"X-Forwarded-For: 6.6.6.6, 7.7.7.7,,, ,",
    "xff-garbage": b"X-Forwarded-For: \xe3\x00\x1b[2J;;;999.1.1.1",
    "xff-v6": b"X-Forwarded-For: ::1",
    "xff-empty": b"X-Forwarded-For: ",
    "xff-huge": b"X-Forwarded-For: " + b"1.2.3.4, " * 3000,
    "realip-spoof": b"X-Real-IP: 6.6.6.6",
    "realip-utf8": b"X-Real-IP: 192.168.56.1\xe3",
    "realip-nul": b"X-Real-IP: 6.6.6.6\x00192.168.56.1",
    "huge-header": b"X-Padding: " + b"x" * 40000,
    "many-headers": b"\r\n".join(b"X-H%d: %d" % (i, i) for i in range(400)),
    "ctl-name": b"X-\x01\x02\x1b: v",
    "bare-lf": b"X-A: 1\nX-Forwarded-For: 8.8.8.8",
}

BACK_DAMAGE = [
    "none",  # what the balancer really sends (with the client's own XFF passed on)
    "realip-utf8",  # X-Real-IP: 192.168.56.1\xe3 and no X-Forwarded-For
    "xff-garbage",  # X-Forwarded-For damaged
    "xff-no-address",  # X-Forwarded-For with no address in it, X-Real-IP with \xe3
    "xff-absent",  # only X-Real-IP
    "nothing",  # neither header
]


def _client_xff(front: list[bytes]) -> bytes | None:
    """The value of the client's own (last) X-Forwarded-For line, as a balancer reads it."""
    value = None
    for h in front:
        for line in h.split(b"\r\n"):
            if line.lower().startswith(b"x-forwarded-for:"):
                value = line.split(b":", 1)[1].strip()
    return value


def back_headers(balancer: str, damage: str, front: list[bytes]) -> list[bytes]:
    client = CLIENT_IP.encode()
    if damage == "realip-utf8":
        return [b"X-Real-IP: " + client + b"\xe3"]
    if damage == "xff-garbage":
        return [b"X-Real-IP: " + client, b"X-Forwarded-For: \xe3\x00, , 999.999.1.1, \x1b"]
    if damage == "xff-no-address":
        return [b"X-Real-IP: " + client + b"\xe3", b"X-Forwarded-For: , ,"]
    if damage == "xff-absent":
        return [b"X-Real-IP: " + client]
    if damage == "nothing":
        return []
    own = _client_xff(front)
    if balancer == "haproxy":
        return haproxy_back_headers(own)
    return nginx_back_headers(own)


def frames_for(params: dict) -> list[bytes]:
    """A fuzz plan's hostile case: `n` requests, the first carrying the payloads, the others
    plain (so a parser that gives up early loses reports it should have written)."""
    frames: list[bytes] = []
    for i in range(params["n"]):
        uri = URI_PAYLOADS[params["uri"]] if i == 0 else b"/ejemplo.html"
        front = [FRONT_HEADERS[k] for k in params["front"]] if i == 0 else []
        line = b"GET " + uri + b" HTTP/1.1"
        backend = ("M1", "M2")[i % 2]
        if params["view"] == "client":
            frames += client_exchange(42000 + i, line, front, backend)
        else:
            damage = params["back"] if i == 0 else "none"
            frames += m3_exchange(42000 + i, line, front,
                                  back_headers(params["balancer"], damage, front), backend)
    return frames

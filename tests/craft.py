"""Craft small, real pcap files byte by byte (no scapy): Ethernet/IPv4/TCP with correct
checksums, one complete HTTP exchange per request, in the classic lab's addresses.

Used by the lbreport tests for inputs no farm would produce on its own, e.g. a URI that holds
terminal escape sequences or a spreadsheet formula.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

CLIENT = "192.168.56.1"
BALANCER = "192.168.56.103"
MAC_CLIENT = bytes.fromhex("0a0027000001")
MAC_BALANCER = bytes.fromhex("080027000103")

SYN, ACK, PSH, FIN = 0x02, 0x10, 0x08, 0x01


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def _ip(addr: str) -> bytes:
    return bytes(int(x) for x in addr.split("."))


def tcp_frame(src: str, dst: str, sport: int, dport: int, flags: int, seq: int, ack: int,
              payload: bytes = b"") -> bytes:
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 64240, 0, 0)
    pseudo = _ip(src) + _ip(dst) + struct.pack("!BBH", 0, 6, len(tcp) + len(payload))
    csum = _checksum(pseudo + tcp + payload)
    tcp = tcp[:16] + struct.pack("!H", csum) + tcp[18:] + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0x1234, 0x4000, 64, 6, 0,
                     _ip(src), _ip(dst))
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    dmac, smac = (MAC_BALANCER, MAC_CLIENT) if src == CLIENT else (MAC_CLIENT, MAC_BALANCER)
    return dmac + smac + b"\x08\x00" + ip + tcp


def exchange(request_line: bytes, port: int, body: bytes = b"Soy la m\xc3\xa1quina 1\n"
             ) -> list[bytes]:
    """One request on its own connection, from SYN to the last ACK."""
    req = request_line + b"\r\nHost: " + BALANCER.encode() + b"\r\n\r\n"
    resp = (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\n\r\n" + body)
    c, s = 1000, 5000  # initial sequence numbers
    C, S = CLIENT, BALANCER
    return [
        tcp_frame(C, S, port, 80, SYN, c, 0),
        tcp_frame(S, C, 80, port, SYN | ACK, s, c + 1),
        tcp_frame(C, S, port, 80, ACK, c + 1, s + 1),
        tcp_frame(C, S, port, 80, PSH | ACK, c + 1, s + 1, req),
        tcp_frame(S, C, 80, port, PSH | ACK, s + 1, c + 1 + len(req), resp),
        tcp_frame(C, S, port, 80, ACK, c + 1 + len(req), s + 1 + len(resp)),
        tcp_frame(C, S, port, 80, FIN | ACK, c + 1 + len(req), s + 1 + len(resp)),
        tcp_frame(S, C, 80, port, FIN | ACK, s + 1 + len(resp), c + 2 + len(req)),
        tcp_frame(C, S, port, 80, ACK, c + 2 + len(req), s + 2 + len(resp)),
    ]


def write_pcap(path: Path, frames: list[bytes], start: float = 1_700_000_000.0,
               step: float = 0.0005) -> Path:
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for i, frame in enumerate(frames):
        ts = start + i * step
        sec = int(ts)
        out += struct.pack("<IIII", sec, round((ts - sec) * 1e6), len(frame), len(frame))
        out += frame
    path.write_bytes(bytes(out))
    return path


# URIs an attacker could send: terminal escapes (clear screen, set the window title, a
# hyperlink), spreadsheet formulas, and Markdown table breakers.
HOSTILE_REQUEST_LINES = [
    b"GET /\x1b[2J\x1b]0;owned\x07\x1b]8;;http://evil/\x1b\\x\x1b]8;;\x1b\\ HTTP/1.1",
    b"GET =cmd|' /C calc'!A0 HTTP/1.1",
    b"GET +cmd|'/C%20calc'!A0 HTTP/1.1",
    b"GET @SUM(1+1)*cmd|'/C%20calc'!A0 HTTP/1.1",
    b"GET /a|b<script>|c HTTP/1.1",
]


def hostile_capture(path: Path) -> Path:
    frames: list[bytes] = []
    for i, line in enumerate(HOSTILE_REQUEST_LINES):
        frames += exchange(line, 40000 + i)
    return write_pcap(path, frames)


# --------------------------------------------------------------------------- lbreport runs

CAPTURES = Path(__file__).resolve().parent.parent / "captures"
TRUTH_FILES = sorted(CAPTURES.glob("*.truth.json"))


def invoke(*args: str, env: dict[str, str] | None = None):  # noqa: ANN201 - typer's Result
    """Run the real CLI in-process (CliRunner) with real tshark underneath."""
    from lbreport.cli import app
    from typer.testing import CliRunner

    return CliRunner().invoke(app, list(args), env=env)


def assert_clean_failure(result, *needles: str) -> None:  # noqa: ANN001
    """A clear message on stderr, a non-zero exit, never a traceback."""
    assert result.exit_code != 0, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception)
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in result.stderr, result.stderr


# --------------------------------------------------------------------------- a broken plugin

PLUGIN = Path(__file__).resolve().parent.parent / "plugins" / "lblab.lua"


def plugin_failing_on(frame: int, message: str, folder: Path) -> Path:
    """A copy of the plugin, in `folder`, whose recording and labelling raises a Lua error on
    `frame`: what a bug in the plugin looks like to tshark and lbreport."""
    source = PLUGIN.read_text()
    m = re.search(r"local function record_and_label\s*\(\s*\w+\s*,\s*(\w+)[^)]*\)", source)
    assert m is not None, "the plugin's recording and labelling function"
    inject = f"\n    if {m.group(1)}.number == {frame} then error('{message}') end"
    path = folder / "lblab.lua"
    path.write_text(source[: m.end()] + inject + source[m.end():])
    return path


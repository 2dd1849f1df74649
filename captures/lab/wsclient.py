#!/usr/bin/env python3
"""The client of the `websocket` reference capture (stdlib; run inside the client namespace).

    python3 wsclient.py http://192.168.56.103/ejemplo.html

On one keep-alive connection: GET the page, then `GET /ws` with `Upgrade: websocket` (101),
three text messages and a ping, each answered by the backend (echo, pong), and the close
handshake; the server closes the TCP connection. Then a new connection GETs the page again.
Prints one line per request (connection, method, path, status) and, for the websocket, the
frames sent and received: `ws sent N received M`.
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import struct
import sys
import time
from urllib.parse import urlsplit

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Firefox/115.0"
MESSAGES = ["hola", "¿quién eres?", "adiós"]
OP_TEXT, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x8, 0x9, 0xA


class Conn:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.sock = socket.create_connection((host, port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.rfile = self.sock.makefile("rb")

    def request(self, tag: str, path: str, extra: dict[str, str] | None = None
                ) -> tuple[int, dict[str, str], bytes]:
        headers = {"Host": self.host, "User-Agent": UA, "Accept": "*/*", **(extra or {})}
        lines = [f"GET {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        status_line = self.rfile.readline().decode("latin-1").rstrip("\r\n")
        status = int(status_line.split()[1])
        resp: dict[str, str] = {}
        while (line := self.rfile.readline().decode("latin-1").rstrip("\r\n")):
            name, _, value = line.partition(":")
            resp[name.strip().lower()] = value.strip()
        body = b""
        if status != 101:
            body = self.rfile.read(int(resp.get("content-length", "0")))
        print(f"{tag} GET {path} {status}", flush=True)
        return status, resp, body

    def send_frame(self, opcode: int, payload: bytes) -> None:
        """A client frame: FIN, masked (RFC 6455 §5.3)."""
        mask = os.urandom(4)
        n = len(payload)
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n) if n < 126 else \
            struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        self.sock.sendall(head + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(payload)))

    def read_frame(self) -> tuple[int, bytes]:
        b0, b1 = self.rfile.read(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self.rfile.read(2))[0]
        return b0 & 0x0F, self.rfile.read(n)

    def close(self) -> None:
        self.rfile.close()
        self.sock.close()


def websocket(conn: Conn) -> tuple[int, int]:
    key = base64.b64encode(os.urandom(16)).decode()
    status, resp, _ = conn.request("A", "/ws", {
        "Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": key, "Origin": f"http://{conn.host}"})
    want = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
    if status != 101 or resp.get("sec-websocket-accept") != want:
        raise SystemExit(f"websocket handshake failed: {status} {resp}")
    sent = received = 0
    for text in MESSAGES:
        conn.send_frame(OP_TEXT, text.encode())
        sent += 1
        opcode, data = conn.read_frame()
        received += 1
        if opcode != OP_TEXT or data.decode() != text:
            raise SystemExit(f"bad echo: {opcode} {data!r}")
        time.sleep(0.1)
    conn.send_frame(OP_PING, b"lab")
    sent += 1
    opcode, _ = conn.read_frame()
    received += 1
    if opcode != OP_PONG:
        raise SystemExit(f"no pong: {opcode}")
    conn.send_frame(OP_CLOSE, struct.pack("!H", 1000) + "adiós".encode())
    sent += 1
    opcode, _ = conn.read_frame()
    received += 1
    if opcode != OP_CLOSE:
        raise SystemExit(f"no close: {opcode}")
    conn.rfile.read()  # the server closes the TCP connection after the close handshake
    return sent, received


def main() -> int:
    url = urlsplit(sys.argv[1])
    host, port, page = url.hostname or "", url.port or 80, url.path or "/"
    a = Conn(host, port)
    a.request("A", page)
    time.sleep(0.2)
    sent, received = websocket(a)
    print(f"ws sent {sent} received {received}", flush=True)
    a.close()
    time.sleep(0.2)
    b = Conn(host, port)
    b.request("B", page)
    b.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

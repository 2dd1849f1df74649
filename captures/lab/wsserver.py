#!/usr/bin/env python3
"""A backend for the `websocket` reference capture: static pages and a websocket echo (stdlib).

    python3 wsserver.py --listen 192.168.56.101 --port 80 --root WWW --log access.log

Plain GET/HEAD serve files from --root (so /ejemplo.html says "Soy la máquina N" like the
Apache backends); GET /ws with `Upgrade: websocket` does the RFC 6455 handshake (101) and then
echoes every text or binary message, answers pings with pongs and a close with a close, after
which it closes the TCP connection (the server closes first, RFC 6455 §7.1.1). One line per
request goes to --log: `ip port xff "request line" status bytes msec` (msec: arrival).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import mimetypes
import socket
import struct
import sys
import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
WS_PATH = "/ws"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def read_exact(rfile, n: int) -> bytes:
    data = rfile.read(n)
    if len(data) != n:
        raise ConnectionError("connection closed inside a websocket frame")
    return data


def read_frame(rfile) -> tuple[int, bytes]:
    """One frame (fin assumed: the lab's client never fragments): (opcode, unmasked payload)."""
    b0, b1 = read_exact(rfile, 2)
    opcode, n = b0 & 0x0F, b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", read_exact(rfile, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", read_exact(rfile, 8))[0]
    mask = read_exact(rfile, 4) if b1 & 0x80 else b""
    data = read_exact(rfile, n)
    if mask:
        data = bytes(c ^ mask[i % 4] for i, c in enumerate(data))
    return opcode, data


def frame(opcode: int, payload: bytes) -> bytes:
    """A server frame: FIN, unmasked (servers never mask)."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return head + payload


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "lab-wsserver/1"
    sys_version = ""

    arrival = 0.0

    def parse_request(self) -> bool:
        self.arrival = time.time()  # the request line has just been read
        return super().parse_request()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        ip, port = self.client_address[:2]
        xff = self.headers.get("X-Forwarded-For", "-") if self.headers else "-"
        line = (f'{ip} {port} {xff} "{self.requestline}" {int(code)} {size} '
                f"{int(self.arrival * 1000)}\n")
        server = self.server
        with server.log_lock, open(server.log_path, "a", encoding="utf-8") as f:  # type: ignore[attr-defined]
            f.write(line)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # errors only go to stderr through log_error

    def log_error(self, format: str, *args: object) -> None:  # noqa: A002
        sys.stderr.write(f"{self.address_string()} {format % args}\n")

    # ---- plain HTTP
    def _file(self) -> Path | None:
        rel = self.path.split("?", 1)[0].lstrip("/") or "ejemplo.html"
        path = (self.server.root / rel).resolve()  # type: ignore[attr-defined]
        root = self.server.root.resolve()  # type: ignore[attr-defined]
        return path if path.is_file() and root in path.parents else None

    def _serve(self, head: bool) -> None:
        path = self._file()
        if path is None:
            body = b"<html><body><h1>404 Not Found</h1></body></html>\n"
            self.send_response(404, "Not Found")
            ctype = "text/html; charset=utf-8"
        else:
            body = path.read_bytes()
            self.send_response(200, "OK")
            ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            if ctype.startswith("text/"):
                ctype += "; charset=utf-8"
            self.send_header("Last-Modified", formatdate(path.stat().st_mtime, usegmt=True))
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        upgrade = self.headers.get("Upgrade", "").lower() == "websocket"
        if upgrade and self.path.split("?", 1)[0] == WS_PATH:
            self._websocket()
        else:
            self._serve(head=False)

    # ---- websocket
    def _websocket(self) -> None:
        key = self.headers.get("Sec-WebSocket-Key", "")
        if not key or self.headers.get("Sec-WebSocket-Version") != "13":
            self.send_error(400, "Bad websocket handshake")
            return
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept_key(key))
        self.end_headers()
        self.wfile.flush()
        while True:
            try:
                opcode, data = read_frame(self.rfile)
            except ConnectionError:
                break
            if opcode in (OP_TEXT, OP_BINARY, OP_CONT):
                self.wfile.write(frame(opcode, data))
            elif opcode == OP_PING:
                self.wfile.write(frame(OP_PONG, data))
            elif opcode == OP_CLOSE:
                self.wfile.write(frame(OP_CLOSE, data[:2]))
                break
            self.wfile.flush()
        self.wfile.flush()
        self.close_connection = True


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, addr: str, port: int, root: Path, log_path: Path) -> None:
        self.address_family = socket.AF_INET6 if ":" in addr else socket.AF_INET
        self.root, self.log_path, self.log_lock = root, log_path, threading.Lock()
        super().__init__((addr, port), Handler)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", required=True, help="address to listen on")
    ap.add_argument("--port", type=int, default=80)
    ap.add_argument("--root", type=Path, required=True)
    ap.add_argument("--log", type=Path, required=True)
    args = ap.parse_args()
    mimetypes.init(["/etc/mime.types"])
    Server(args.listen, args.port, args.root, args.log).serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())

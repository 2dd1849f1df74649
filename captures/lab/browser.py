#!/usr/bin/env python3
"""A browser-like client for the `browser` reference capture (run inside the client namespace).

    python3 browser.py http://192.168.56.103/ejemplo.html

Like a browser loading the page: two keep-alive connections opened in parallel (page on one,
/favicon.ico on the other, answered 404), then a conditional GET with If-Modified-Since and
If-None-Match from the first response (304), a HEAD, and a form POST whose headers and body
leave in separate TCP segments (headers, 50 ms, body; TCP_NODELAY). Prints one line per
request: connection, method, path, status.
"""

from __future__ import annotations

import http.client
import socket
import sys
import threading
import time
from urllib.parse import urlsplit

UA = "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Firefox/115.0"
FORM = "nombre=alumno&asignatura=SWAP&practica=3"


def connect(host: str, port: int) -> http.client.HTTPConnection:
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def request(conn: http.client.HTTPConnection, tag: str, method: str, path: str,
            headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
    conn.request(method, path, headers={"User-Agent": UA, "Accept": "*/*", **(headers or {})})
    resp = conn.getresponse()
    resp.read()  # drain the body: the connection stays usable (keep-alive)
    print(f"{tag} {method} {path} {resp.status}", flush=True)
    return resp


def post_in_two_segments(conn: http.client.HTTPConnection, tag: str, path: str) -> None:
    body = FORM.encode()
    conn.putrequest("POST", path)
    for name, value in (("User-Agent", UA), ("Accept", "*/*"),
                        ("Content-Type", "application/x-www-form-urlencoded"),
                        ("Content-Length", str(len(body)))):
        conn.putheader(name, value)
    conn.endheaders()  # the header block alone: one segment
    time.sleep(0.05)
    conn.send(body)  # the form body: a second segment
    resp = conn.getresponse()
    resp.read()
    print(f"{tag} POST {path} {resp.status}", flush=True)


def main() -> int:
    url = urlsplit(sys.argv[1])
    host, port, page = url.hostname or "", url.port or 80, url.path or "/"
    a, b = connect(host, port), connect(host, port)
    results: dict[str, http.client.HTTPResponse] = {}

    def first_page() -> None:
        results["page"] = request(a, "A", "GET", page)

    def favicon() -> None:
        request(b, "B", "GET", "/favicon.ico")

    threads = [threading.Thread(target=first_page), threading.Thread(target=favicon)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    first = results["page"]
    time.sleep(0.3)
    # Reload: the browser revalidates its cached copy.
    validators = {}
    if first.getheader("Last-Modified"):
        validators["If-Modified-Since"] = first.getheader("Last-Modified", "")
    if first.getheader("ETag"):
        validators["If-None-Match"] = first.getheader("ETag", "")
    request(a, "A", "GET", page, validators)
    time.sleep(0.2)
    request(b, "B", "HEAD", page)
    time.sleep(0.2)
    post_in_two_segments(a, "A", page)
    time.sleep(0.2)
    a.close()
    b.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""A browser-like client for the `browser` reference capture (run inside the client namespace).

    python3 browser.py http://192.168.56.103/ejemplo.html

Like a browser loading the page: two keep-alive connections opened in parallel (page on one,
/favicon.ico on the other, answered 404), then a conditional GET with If-Modified-Since and
If-None-Match from the first response (304), a HEAD, and a form POST whose headers and body
leave in separate TCP segments (headers, 50 ms, body; TCP_NODELAY). Prints one line per
request: connection, method, path, status.

    python3 browser.py http://192.168.56.103/ejemplo.html --connections 4 /estilo.css ...

With asset paths (the `lossy-browser` capture): K keep-alive connections opened in parallel,
the page on the first, then the assets shared out over the K connections (asset i on
connection i mod K, each connection fetching its share one after another, all connections at
once), then a reload of the page (conditional GET, 304) on the first connection.
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


def page_with_assets(host: str, port: int, page: str, assets: list[str], k: int) -> int:
    conns = [connect(host, port) for _ in range(k)]
    first = request(conns[0], "C1", "GET", page)

    def fetch(i: int) -> None:
        for path in assets[i::k]:
            request(conns[i], f"C{i + 1}", "GET", path)

    threads = [threading.Thread(target=fetch, args=(i,)) for i in range(k)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    time.sleep(0.3)
    validators = {"If-Modified-Since": first.getheader("Last-Modified", "")}
    if first.getheader("ETag"):
        validators["If-None-Match"] = first.getheader("ETag", "")
    request(conns[0], "C1", "GET", page, validators)
    time.sleep(0.2)
    for c in conns:
        c.close()
    return 0


def main() -> int:
    url = urlsplit(sys.argv[1])
    host, port, page = url.hostname or "", url.port or 80, url.path or "/"
    if len(sys.argv) > 2:
        if sys.argv[2] != "--connections" or len(sys.argv) < 5:
            raise SystemExit("usage: browser.py URL [--connections K ASSET...]")
        return page_with_assets(host, port, page, sys.argv[4:], int(sys.argv[3]))
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

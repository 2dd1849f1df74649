#!/usr/bin/env python3
"""What a user writes instead of lbreport: a pyshark script that groups a capture's TCP
packets by connection and prints each HTTP request with its connection's packets.

    python3 bench/peer_pyshark.py CAPTURE

Plain pyshark 0.6 (`FileCapture`, one pass, no plugin): the peer bench/bench_all.py times
lbreport against. Deliberately naive, as a first script would be.
"""

from __future__ import annotations

import sys
from collections import defaultdict

import pyshark


def main() -> None:
    packets: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    requests: list[tuple[str, str, str]] = []
    capture = pyshark.FileCapture(sys.argv[1], keep_packets=False)
    for pkt in capture:
        if not hasattr(pkt, "tcp"):
            continue
        stream = pkt.tcp.stream
        packets[stream].append((pkt.number, pkt.sniff_timestamp, pkt.tcp.flags))
        if hasattr(pkt, "http") and hasattr(pkt.http, "request_method"):
            requests.append((stream, pkt.http.request_method, pkt.http.request_uri))
    capture.close()
    for i, (stream, method, uri) in enumerate(requests, 1):
        frames = packets[stream]
        print(f"request {i}: {method} {uri} on connection {stream}: {len(frames)} packets, "
              f"frames {frames[0][0]}..{frames[-1][0]}")


if __name__ == "__main__":
    main()

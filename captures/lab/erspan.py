#!/usr/bin/env python3
"""Wraps every frame of a pcapng capture in ERSPAN type II, as a switch's mirror would send it.

    python3 captures/lab/erspan.py IN.pcapng OUT.pcapng

Each Ethernet frame of IN (recorded on one interface: the mirrored port) becomes
Ethernet / IPv4 (switch -> collector, protocol 47) / GRE (sequence number, protocol 0x88be) /
ERSPAN type II header (version 1, session, port index) / the original frame, with the
original timestamp. No GRE or ERSPAN device exists on the lab's kernel, so the frames are
real lab frames and only this wrapping is written by hand (struct, no scapy). OUT is pcapng
with the same interface description block(s) as IN.
"""

from __future__ import annotations

import argparse
import ipaddress
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SHB, IDB, EPB = 0x0A0D0D0A, 0x00000001, 0x00000006
BYTE_ORDER_MAGIC = 0x1A2B3C4D
LINKTYPE_ETHERNET = 1
GRE_SEQ_FLAG, ETHERTYPE_ERSPAN, ETHERTYPE_IPV4, IPPROTO_GRE = 0x1000, 0x88BE, 0x0800, 47
ERSPAN_TYPE2_VERSION = 1  # the ERSPAN header's version field: 1 is type II
APPLICATION = "captures/lab/erspan.py (ERSPAN type II around a dumpcap capture)"


@dataclass(frozen=True)
class Mirror:
    """The mirror session: the switch that encapsulates, the collector that records."""

    switch_ip: str = "10.255.0.1"
    collector_ip: str = "10.255.0.2"
    switch_mac: str = "00:1b:54:0a:00:01"  # a Cisco OUI (Wireshark: Cisco_0a:00:01)
    collector_mac: str = "52:54:00:c0:11:ec"
    session_id: int = 7
    port_index: int = 3  # the mirrored port's index on the switch
    ttl: int = 64

    def truth(self, mirrored_role: str) -> dict[str, Any]:
        """The truth's `tunnel` key: the outer addresses are the mirror's, not roles."""
        return {"type": "erspan", "erspan_type": "II", "session_id": self.session_id,
                "port_index": self.port_index, "switch": self.switch_ip,
                "collector": self.collector_ip, "mirrored": mirrored_role}


def _mac(text: str) -> bytes:
    return bytes(int(x, 16) for x in text.split(":"))


def _checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def encapsulate(frame: bytes, seq: int, m: Mirror) -> bytes:
    """One mirrored frame as the switch sends it to the collector."""
    erspan = struct.pack("!HHI", (ERSPAN_TYPE2_VERSION << 12) | 0,  # version, VLAN 0
                         m.session_id & 0x3FF,  # COS 0, En 0 (untagged), T 0, session
                         m.port_index & 0xFFFFF)  # reserved 0, index
    gre = struct.pack("!HHI", GRE_SEQ_FLAG, ETHERTYPE_ERSPAN, seq & 0xFFFFFFFF)
    payload = gre + erspan + frame
    src = ipaddress.IPv4Address(m.switch_ip).packed
    dst = ipaddress.IPv4Address(m.collector_ip).packed
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), seq & 0xFFFF, 0x4000, m.ttl,
                     IPPROTO_GRE, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    eth = _mac(m.collector_mac) + _mac(m.switch_mac) + struct.pack("!H", ETHERTYPE_IPV4)
    return eth + ip + payload


def _blocks(data: bytes) -> list[tuple[int, bytes, str]]:
    """(type, whole block, byte order) for every block of a pcapng file."""
    out, pos, order = [], 0, "<"
    while pos < len(data):
        if struct.unpack_from("<I", data, pos)[0] == SHB:
            magic = struct.unpack_from("<I", data, pos + 8)[0]
            order = "<" if magic == BYTE_ORDER_MAGIC else ">"
        btype, length = struct.unpack_from(f"{order}II", data, pos)
        if length < 12 or pos + length > len(data):
            raise ValueError(f"truncated pcapng block at offset {pos}")
        out.append((btype, data[pos:pos + length], order))
        pos += length
    return out


def _block(btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    return struct.pack("<II", btype, len(body) + 12) + body + struct.pack("<I", len(body) + 12)


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def _shb() -> bytes:
    opts = _option(4, APPLICATION.encode()) + _option(0, b"")  # shb_userappl, end
    return _block(SHB, struct.pack("<IHHq", BYTE_ORDER_MAGIC, 1, 0, -1) + opts)


def wrap(data: bytes, mirror: Mirror) -> tuple[bytes, int]:
    """The capture with every frame encapsulated; returns it and the number of frames."""
    out, n = [_shb()], 0
    for btype, block, order in _blocks(data):
        if btype == IDB:
            if struct.unpack_from(f"{order}H", block, 8)[0] != LINKTYPE_ETHERNET:
                raise ValueError("only Ethernet captures can be mirrored")
            if order != "<":
                raise ValueError("big-endian pcapng not supported")
            out.append(block)  # same interface, link type and timestamp resolution
        elif btype == EPB:
            iface, ts_hi, ts_lo, caplen, origlen = struct.unpack_from(f"{order}IIIII", block, 8)
            if caplen != origlen:
                raise ValueError("frames cut by the snapshot length cannot be mirrored whole")
            frame = block[28:28 + caplen]
            n += 1
            wrapped = encapsulate(frame, n, mirror)
            out.append(_block(EPB, struct.pack("<IIIII", iface, ts_hi, ts_lo, len(wrapped),
                                               len(wrapped)) + wrapped))
        # SHB: replaced by ours; interface statistics and others: left out.
    return b"".join(out), n


def wrap_file(src: Path, dest: Path, mirror: Mirror | None = None) -> int:
    """Write dest (may be src itself) with every frame of src encapsulated."""
    data, n = wrap(src.read_bytes(), mirror or Mirror())
    dest.write_bytes(data)
    return n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", type=Path)
    ap.add_argument("dest", type=Path)
    args = ap.parse_args(argv)
    n = wrap_file(args.src, args.dest)
    print(f"erspan.py: {n} frames wrapped into {args.dest}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

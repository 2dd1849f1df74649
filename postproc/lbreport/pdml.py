"""tshark's PDML → packet records, streamed with constant memory.

Only two protocols matter: `geninfo` (frame number, epoch timestamp) and `lblab` (the plugin's
labels). Protocols are found by name, never by position (a pcapng comment or the Lua
`fake-field-wrapper` shift positions). The plugin's fields are the contract in docs/fields.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from lxml import etree


@dataclass(frozen=True, slots=True)
class Record:
    """One frame as the plugin labelled it. Empty string / 0 mean "field absent"."""

    frame: int
    time: float  # epoch seconds
    req: int = 0
    src_role: str = ""
    dst_role: str = ""
    step: str = ""
    leg: str = ""
    flags: str = ""
    backend: str = ""
    evidence: str = ""
    client: str = ""
    method: str = ""
    uri: str = ""
    status: int = 0
    marker: str = ""
    arp_target: str = ""
    conn: int = -1
    role_defs: tuple[str, ...] = ()


# lblab field name → Record attribute. Integer fields are listed in _INTS.
_FIELDS = {
    "lblab.req": "req",
    "lblab.src_role": "src_role",
    "lblab.dst_role": "dst_role",
    "lblab.step": "step",
    "lblab.leg": "leg",
    "lblab.flags": "flags",
    "lblab.backend": "backend",
    "lblab.backend_evidence": "evidence",
    "lblab.client": "client",
    "lblab.method": "method",
    "lblab.uri": "uri",
    "lblab.status": "status",
    "lblab.marker": "marker",
    "lblab.arp_target": "arp_target",
    "lblab.conn": "conn",
}
_INTS = {"req", "status", "conn"}
# Low-cardinality labels repeat on every frame: share one str object each. Not URIs/clients.
_INTERNED = {"src_role", "dst_role", "step", "leg", "flags", "backend", "evidence", "marker",
             "arp_target", "method"}


class PdmlReader:
    """Iterate `Record`s from a PDML byte stream; keeps counters the caller checks afterwards."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self.frames = 0
        self.lua_errors = 0
        self.first_lua_error_frame = 0
        self.first_lua_error = ""
        self.creator = ""

    def __iter__(self) -> Iterator[Record]:
        # huge_tree: a single field can exceed libxml2's default limits on odd captures.
        events = etree.iterparse(
            self._stream, events=("start", "end"), tag=("pdml", "packet"), huge_tree=True
        )
        intern = _Interner()
        for event, elem in events:
            if event == "start":
                if elem.tag == "pdml":
                    self.creator = elem.get("creator", "")
                continue
            if elem.tag != "packet":
                continue
            record = self._record(elem, intern)
            # Constant memory: drop this packet and every earlier sibling from the tree.
            elem.clear()
            parent = elem.getparent()
            while elem.getprevious() is not None:
                del parent[0]
            self.frames += 1
            yield record

    def _record(self, packet: etree._Element, intern: _Interner) -> Record:
        frame = 0
        time = 0.0
        values: dict[str, object] = {}
        for proto in packet:
            name = proto.get("name")
            if name == "geninfo":
                for f in proto:
                    fname = f.get("name")
                    if fname == "num":
                        frame = int(f.get("show"))
                    elif fname == "timestamp":
                        time = float(f.get("value"))
            elif name == "lblab":
                role_defs: list[str] = []
                for f in proto:
                    fname = f.get("name")
                    attr = _FIELDS.get(fname)
                    if attr is not None:
                        show = f.get("show", "")
                        if attr in _INTS:
                            values[attr] = int(show)
                        elif attr in _INTERNED:
                            values[attr] = intern(show)
                        else:
                            values[attr] = show
                    elif fname == "lblab.role_def":
                        role_defs.append(f.get("show", ""))
                    elif fname.startswith("_ws.lua"):
                        self._lua_error(frame, f.get("show", ""))
                if role_defs:
                    values["role_defs"] = tuple(role_defs)
            elif name == "fake-field-wrapper":
                # A Lua error inside a dissector lands here as an unnamed "Lua Error: …" item.
                for f in proto:
                    if f.get("name") != "_ws.lua.fake" and "Lua Error" in f.get("show", ""):
                        self._lua_error(frame, f.get("show", ""))
        return Record(frame, time, **values)  # type: ignore[arg-type]

    def _lua_error(self, frame: int, message: str) -> None:
        self.lua_errors += 1
        if not self.first_lua_error_frame:
            self.first_lua_error_frame = frame
            self.first_lua_error = message


class _Interner(dict):
    """Share one str object per distinct label."""

    def __call__(self, s: str) -> str:
        return self.setdefault(s, s)

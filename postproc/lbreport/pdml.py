"""tshark's PDML → packet records, streamed with constant memory.

Only `geninfo` (frame number, epoch timestamp) and the plugin's labels matter. tshark writes the
labels one of two ways: as `<field>`s straight under `<packet>` when asked for them by name
(`-T pdml -e …`, FIELDS_READ: the report's run), or inside an `lblab` protocol (`-J lblab`, the
whole tree). Both are read; protocols and fields are found by name, never by position (a pcapng
comment or the Lua `fake-field-wrapper` shift positions). The plugin's fields are the contract
in docs/fields.md.
"""

from __future__ import annotations

import codecs
import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, fields
from typing import IO, TYPE_CHECKING

from lbreport.vocabulary import PKT_ORDER

if TYPE_CHECKING:
    from lxml import etree


@dataclass(slots=True, unsafe_hash=True)
class Record:
    """One frame as the plugin labelled it. Empty string / 0 mean "field absent".

    Read-only by convention (use `dataclasses.replace`); not `frozen` because a frozen
    dataclass's __init__ costs ~5x more, once per frame. Hashable and comparable as before."""

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
    client_xff: str = ""
    # Frame 1 only (two passes): each balancer left out, "address=requests" (one field each).
    other_balancers: tuple[str, ...] = ()
    # Frames in no request: what they are (ssh, dns, arp, direct, …; an open set of names),
    # so the summary can explain "other" instead of just counting it.
    kind: str = ""
    direct: int = 0  # a client's HTTP straight to a backend: that request's own 1..N index
    # Issue 11 (HTTPS), on request frames: "http"/"https" and "1.0"/"1.1"/"2" (the latter only
    # when HTTP is readable); on request and response frames of an exchange seen only as TLS
    # records (no key log): encrypted, so method, URI and status are absent.
    scheme: str = ""
    http_version: str = ""
    encrypted: bool = False
    lab_applied: bool = False  # frame 1 only: lblab.lab_when_seen found the configured lab
    interim: int = 0  # an interim (1xx, not 101) answer's status, on its frame
    # Frame 1 only (two passes), what the plugin says of the whole capture; None: not said
    # (one pass, or an older plugin), which differs from "" (no balancer) and 0 (none seen).
    balancer_evidence: str | None = None  # comma list (vocabulary.BALANCER_EVIDENCE)
    http_requests_seen: int | None = None  # HTTP requests tshark dissected, copies included
    http_request_copies: int | None = None  # of those, retransmitted copies
    http_ports: str | None = None  # comma list of the TCP ports HTTP requests went to


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
    "lblab.client_xff": "client_xff",
    "lblab.kind": "kind",
    "lblab.direct": "direct",
    "lblab.scheme": "scheme",
    "lblab.http_version": "http_version",
    "lblab.encrypted": "encrypted",
    "lblab.lab_applied": "lab_applied",
    "lblab.interim": "interim",
    "lblab.balancer_evidence": "balancer_evidence",
    "lblab.http_requests_seen": "http_requests_seen",
    "lblab.http_request_copies": "http_request_copies",
    "lblab.http_ports": "http_ports",
}
_INTS = {"req", "status", "conn", "direct", "interim", "http_requests_seen",
         "http_request_copies"}
_BOOLS = {"encrypted", "lab_applied"}  # PDML shows a boolean as "1" / "0"
# Low-cardinality labels repeat on every frame: share one str object each. Not URIs/clients.
_INTERNED = {"src_role", "dst_role", "step", "leg", "flags", "backend", "evidence", "marker",
             "arp_target", "method", "kind", "scheme", "http_version"}

# The hot loop fills a positional list: lblab field name → (position in Record, kind).
_POSITIONS = {f.name: i for i, f in enumerate(fields(Record))}
_DEFAULTS = [0, 0.0, *(f.default for f in fields(Record)[2:])]  # frame, time: absent = 0
_STR, _INT, _INTERN, _BOOL = 0, 1, 2, 3
_SLOT = {
    name: (_POSITIONS[attr], _INT if attr in _INTS else _BOOL if attr in _BOOLS
           else _INTERN if attr in _INTERNED else _STR)
    for name, attr in _FIELDS.items()
}
_ROLE_DEFS = _POSITIONS["role_defs"]
_OTHER_BALANCERS = _POSITIONS["other_balancers"]
# Fields that repeat on one frame: each occurrence kept, in order (Record attribute's slot).
_REPEATED = {"lblab.role_def": _ROLE_DEFS, "lblab.other_balancer": _OTHER_BALANCERS}
# lblab.pkt (the plugin's compact mode): the fields vocabulary.PKT_ORDER names, `;`-separated.
_PKT_FIELDS = tuple(f"lblab.{name}" for name in PKT_ORDER)
_PKT_SLOTS = tuple(_SLOT[name] for name in _PKT_FIELDS)
# A Lua error in the plugin's dissector: wslua adds `_ws.lua.error` (a packet cannot forge it)
# and an expert item whose message is "Lua Error: …" (asked for by name, its only carrier).
LUA_ERROR, EXPERT_MESSAGE = "_ws.lua.error", "_ws.expert.message"
_WRAPPED_ERROR = "fake-field-wrapper"  # -J: an unnamed "Lua Error: …" item there
# Every field the reader reads, for `tshark -T pdml -e`.
FIELDS_READ = (*_FIELDS, *_REPEATED, "lblab.pkt", LUA_ERROR, EXPERT_MESSAGE)


def decode_field(values: list, name: str, show: str, intern: Callable[[str], str]) -> bool:
    """One lblab field (its PDML `show` text) into `values`, Record's fields in order: the one
    place a field's name, type and the compact `lblab.pkt` layout are read, by the report
    (PdmlReader) and by live (pyshark's packets). False: not a label (role_def, Lua errors and
    unknown names are the caller's)."""
    found = _SLOT.get(name)
    if found is not None:
        pos, kind = found
        if kind == _INTERN:
            values[pos] = intern(show)
        elif kind == _INT:
            values[pos] = int(show)
        elif kind == _BOOL:
            values[pos] = show not in ("0", "", "False")
        else:
            values[pos] = show
        return True
    if name == "lblab.pkt":
        # Compact mode: the per-packet labels in one field, by position.
        for (pos, kind), part in zip(_PKT_SLOTS, show.split(";"), strict=False):
            if part:
                values[pos] = int(part) if kind == _INT else intern(part)
        return True
    return False


def record_from_fields(frame: int, time: float,
                       fields: Iterable[tuple[str, str]]) -> tuple[Record, str]:
    """A frame's (field name, show) pairs → (Record, first Lua error text or ""): for a PDML
    packet already parsed by someone else (pyshark in live), decoded like PdmlReader does."""
    values = _DEFAULTS.copy()
    values[0], values[1] = frame, time
    repeated: dict[int, list[str]] = {}
    lua_error = ""
    for name, show in fields:
        if decode_field(values, name, show, _shared_intern):
            continue
        slot = _REPEATED.get(name)
        if slot is not None:
            repeated.setdefault(slot, []).append(show)
        elif name.startswith("_ws.lua") or (name != "_ws.lua.fake" and "Lua Error" in show):
            lua_error = lua_error or show
    for slot, shows in repeated.items():
        values[slot] = tuple(shows)
    return Record(*values), lua_error


class RecordReader:
    """What a reader of tshark's output keeps beside the records it yields: frames read, the
    plugin's Lua errors (how many, the first frame and message), the last good time."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self.frames = 0
        self.lua_errors = 0
        self.first_lua_error_frame = 0
        self.first_lua_error = ""
        self.first: Record | None = None  # frame 1: what the plugin says of the whole capture
        self._last_time = 0.0

    def _time(self, value: str | None) -> float:
        """The frame's epoch time; a damaged timestamp (a pcap record's microseconds past one
        second prints as `1700000000.-…`) keeps the previous frame's time."""
        with contextlib.suppress(TypeError, ValueError):
            self._last_time = float(value)  # type: ignore[arg-type]
        return self._last_time

    def _lua_error(self, frame: int, message: str) -> None:
        self.lua_errors += 1
        if not self.first_lua_error_frame:
            self.first_lua_error_frame = frame
            self.first_lua_error = message


class PdmlReader(RecordReader):
    """Iterate `Record`s from a PDML byte stream; keeps counters the caller checks afterwards."""

    def __iter__(self) -> Iterator[Record]:
        from lxml import etree  # here: pdml's field table is read before tshark starts

        # huge_tree: a single field can exceed libxml2's default limits on odd captures.
        # Only packets' end events (one Python iteration per frame); no whitespace nodes.
        events = etree.iterparse(
            _Utf8Clean(self._stream), events=("end",), tag="packet", huge_tree=True,
            remove_blank_text=True, collect_ids=False,
        )  # fmt: skip
        intern = _Interner()
        record = self._record
        for _event, elem in events:
            rec = record(elem, intern)
            # Constant memory: drop this packet (already parsed; earlier ones are gone too).
            elem.clear()
            elem.getparent().remove(elem)
            if not self.frames:
                self.first = rec
            self.frames += 1
            yield rec

    def _record(self, packet: etree._Element, intern: _Interner) -> Record:
        values = _DEFAULTS.copy()
        rest: list[tuple[str, str]] | None = None  # fields decode_field left (rare but experts)
        decode = decode_field
        for child in packet:
            value = child.get("value")
            if value is not None:  # -e: a field straight under <packet> (protocols have none)
                fname = child.get("name")
                if not decode(values, fname, value, intern):
                    rest = rest or []
                    rest.append((fname, value))
                continue
            name = child.get("name")
            if name == "geninfo":
                for f in child:
                    fname = f.get("name")
                    if fname == "num":
                        values[0] = int(f.get("show"))
                    elif fname == "timestamp":
                        values[1] = self._time(f.get("value"))
            elif name == "lblab":  # -J lblab: the labels inside the plugin's protocol
                for f in child:
                    fname, show = f.get("name"), f.get("show", "")
                    if not decode(values, fname, show, intern):
                        rest = rest or []
                        rest.append((fname, show))
            elif name == "fake-field-wrapper":
                # -J: a Lua error inside a dissector lands here as an unnamed "Lua Error: …" item.
                for f in child:
                    show = f.get("show", "")
                    if f.get("name") != "_ws.lua.fake" and "Lua Error" in show:
                        rest = rest or []
                        rest.append((_WRAPPED_ERROR, show))
        if rest:
            self._rest(values, rest)
        return Record(*values)

    def _rest(self, values: list, rest: list[tuple[str, str]]) -> None:
        """A frame's fields that are not one-value labels: repeated ones (frame 1), and Lua
        errors with their message (-e: the expert message beside `_ws.lua.error`)."""
        repeated: dict[int, list[str]] = {}
        error: str | None = None  # None: no Lua error on this frame
        expert = ""
        for fname, show in rest:
            slot = _REPEATED.get(fname)
            if slot is not None:
                repeated.setdefault(slot, []).append(show)
            elif fname == EXPERT_MESSAGE:
                expert = expert or (show if show.startswith("Lua Error") else "")
            elif fname == LUA_ERROR:
                error = error or ""  # its value is "1": the text is the expert message's
            elif fname.startswith("_ws.lua") or fname == _WRAPPED_ERROR:
                error = error or show
        for slot, shows in repeated.items():
            values[slot] = tuple(shows)
        if error is not None:
            self._lua_error(values[0], error or expert or "Lua Error")

class _Interner(dict):
    """Share one str object per distinct label."""

    def __call__(self, s: str) -> str:
        return self.setdefault(s, s)


_shared_intern = _Interner()  # live: labels are few, one table for the whole session


class _Utf8Clean:
    """tshark's PDML with every invalid UTF-8 sequence replaced (U+FFFD). PDML says UTF-8, but
    a dissector may copy a packet's raw bytes into it, and one such byte makes libxml2 stop
    the whole parse ("Invalid bytes in character encoding"). ASCII chunks pass untouched."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def read(self, size: int = -1) -> bytes:
        while True:
            data = self._raw.read(size)
            if data.isascii() and not self._decoder.getstate()[0]:
                return data
            out = self._decoder.decode(data, final=not data).encode("utf-8")
            if out or not data:  # b"" only at the end, never for a split multibyte character
                return out

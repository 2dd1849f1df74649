"""Every request's frames while a capture is read: packed, and spilled to disk past a budget.

Memory stays small on big captures: each request keeps its steps as two packed arrays
(frame and label id; time) and the labels themselves are interned once in `Labels`. Past
`MAX_HELD_REQUESTS` requests (or `MAX_HELD_STEPS` steps) in memory, the least recently seen
ones go to a temporary spill file (`Spill`); one seen again afterwards simply starts another
chunk there, and chunks are merged when the request is read. What stays in memory of a
spilled request is its offset in the file.
"""

from __future__ import annotations

import marshal
import tempfile
from array import array

from lbreport.model import DirectRequest, Step
from lbreport.pdml import Record
from lbreport.vocabulary import CLIENT

_LABEL_BITS = 20  # a step is packed as frame << 20 | label id
_MASK = (1 << _LABEL_BITS) - 1
# Held in memory before the least recently seen requests are spilled to a temporary file.
MAX_HELD_REQUESTS = 3_000
MAX_HELD_STEPS = 150_000

_STEP = 3  # a label tuple's step name


class Labels:
    """Intern a frame's labels (roles, leg, step, flags, ARP target): a few dozen distinct
    combinations per capture, so a step costs two numbers."""

    def __init__(self) -> None:
        self.ids: dict[tuple[str, ...], int] = {}
        self.values: list[tuple[str, str, str, str, tuple[str, ...], str]] = []

    def id(self, r: Record) -> int:
        key = (r.src_role, r.dst_role, r.leg, r.step, r.flags, r.arp_target)
        found = self.ids.get(key)
        if found is None:
            found = self.ids[key] = len(self.values)
            flags = tuple(f for f in r.flags.split(",") if f)
            self.values.append((r.src_role, r.dst_role, r.leg, r.step, flags, r.arp_target))
        return found


class Acc:
    """One request while packets arrive: only what the report needs, compactly."""

    __slots__ = (
        "index", "client", "method", "uri", "up_method", "up_uri", "status", "up_statuses",
        "backend", "evidence", "packed", "times", "client_xff", "scheme", "version",
        "up_scheme", "up_version", "encrypted", "up_encrypted", "interim", "up_interim", "conns",
    )  # fmt: skip

    def __init__(self, index: int) -> None:
        self.index = index
        self.client = ""
        self.method = ""
        self.uri = ""
        self.up_method = ""
        self.up_uri = ""
        self.status = 0
        self.up_statuses: list[tuple[str, int]] | None = None
        self.backend = ""
        self.evidence = ""
        self.packed = array("q")
        self.times = array("d")
        self.client_xff = ""
        self.scheme = ""  # the client's request: "http"/"https" (the back leg's: up_scheme)
        self.version = ""
        self.up_scheme = ""
        self.up_version = ""
        self.encrypted = False  # front exchange seen only as TLS records
        self.up_encrypted = False
        # Interim (1xx) answers' statuses in frame order: the client's, the back leg's.
        self.interim: list[int] | None = None
        self.up_interim: list[int] | None = None
        # Its connections (lblab.conn of its request and response frames): a segment lost on
        # one of them explains a missing response.
        self.conns: list[int] | None = None

    def dumps(self) -> bytes:
        return marshal.dumps((
            self.index, self.client, self.method, self.uri, self.up_method, self.up_uri,
            self.status, self.up_statuses, self.backend, self.evidence, self.packed.tobytes(),
            self.times.tobytes(), self.client_xff, self.scheme, self.version, self.up_scheme,
            self.up_version, self.encrypted, self.up_encrypted, self.interim, self.up_interim,
            self.conns,
        ))  # fmt: skip

    @classmethod
    def loads(cls, data: bytes) -> Acc:
        acc = cls.__new__(cls)
        (acc.index, acc.client, acc.method, acc.uri, acc.up_method, acc.up_uri, acc.status,
         acc.up_statuses, acc.backend, acc.evidence, packed, times,
         acc.client_xff, acc.scheme, acc.version, acc.up_scheme, acc.up_version, acc.encrypted,
         acc.up_encrypted, acc.interim, acc.up_interim, acc.conns) = marshal.loads(data)
        acc.packed = array("q")
        acc.packed.frombytes(packed)
        acc.times = array("d")
        acc.times.frombytes(times)
        return acc

    def merge(self, later: Acc) -> None:
        """Append a later chunk of the same request: the same first-seen rules as the
        builder's."""
        self.packed.extend(later.packed)
        self.times.extend(later.times)
        self.client = self.client or later.client
        self.client_xff = self.client_xff or later.client_xff
        self.scheme = self.scheme or later.scheme
        self.version = self.version or later.version
        self.up_scheme = self.up_scheme or later.up_scheme
        self.up_version = self.up_version or later.up_version
        self.encrypted = self.encrypted or later.encrypted
        self.up_encrypted = self.up_encrypted or later.up_encrypted
        self.backend = self.backend or later.backend
        self.evidence = self.evidence or later.evidence
        if not self.method and (later.method or later.uri):
            self.method, self.uri = later.method, later.uri
        if not self.up_method and (later.up_method or later.up_uri):
            self.up_method, self.up_uri = later.up_method, later.up_uri
        if later.up_statuses:
            self.up_statuses = (self.up_statuses or []) + later.up_statuses
        self.status = self.status or later.status
        if later.interim:
            self.interim = (self.interim or []) + later.interim
        if later.up_interim:
            self.up_interim = (self.up_interim or []) + later.up_interim
        for conn in later.conns or ():
            self.add_conn(conn)

    def add_conn(self, conn: int) -> None:
        if self.conns is None:
            self.conns = [conn]
        elif conn not in self.conns:
            self.conns.append(conn)


class Spill:
    """Requests' chunks in a temporary file: 1 + the offset of each request's first chunk
    (indexed by request number; 0: none), and the offsets of any later chunks."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile(buffering=1 << 20)  # noqa: SIM115 - closed by GC
        self._size = 0
        self._reading = False
        self.first = array("q")
        self.more: dict[int, list[int]] = {}

    def put(self, acc: Acc) -> None:
        if self._reading:
            self._file.seek(0, 2)
            self._reading = False
        data = acc.dumps()
        offset = self._size
        self._file.write(len(data).to_bytes(4, "little"))
        self._file.write(data)
        self._size += 4 + len(data)
        i = acc.index
        if i >= len(self.first):
            self.first.frombytes(bytes(8 * (max(i + 1, 2 * len(self.first)) - len(self.first))))
        if self.first[i]:
            self.more.setdefault(i, []).append(offset)
        else:
            self.first[i] = offset + 1

    def has(self, index: int) -> bool:
        return 0 < index < len(self.first) and self.first[index] != 0

    def get(self, index: int) -> Acc:
        """The request's chunks, merged in the order they were written (frame order)."""
        acc = self._read(self.first[index] - 1)
        for offset in self.more.get(index, ()):
            acc.merge(self._read(offset))
        return acc

    def _read(self, offset: int) -> Acc:
        self._reading = True
        f = self._file
        f.seek(offset)
        return Acc.loads(f.read(int.from_bytes(f.read(4), "little")))


class Store:
    """Every request's `Acc`, by index: held in memory up to the budget, then spilled."""

    def __init__(self) -> None:
        self.labels = Labels()
        self._held: dict[int, Acc] = {}
        self._held_steps = 0
        self.spill: Spill | None = None

    def add_step(self, r: Record) -> Acc:
        """Record `r`'s frame, time and labels in its request's `Acc` (made on its first
        frame), which is returned for the caller's first-seen fields."""
        self._held_steps += 1
        acc = self._held.get(r.req)
        if self._held_steps > MAX_HELD_STEPS or (
                acc is None and len(self._held) >= MAX_HELD_REQUESTS):
            self._evict()
            acc = self._held.get(r.req)
        if acc is None:
            acc = self._held[r.req] = Acc(r.req)
        acc.packed.append(r.frame << _LABEL_BITS | self.labels.id(r))
        acc.times.append(r.time)
        return acc

    def _evict(self) -> None:
        """Spill the least recently seen half of the held requests (by their last frame)."""
        if self.spill is None:
            self.spill = Spill()
        held = sorted(self._held.values(), key=lambda a: a.packed[-1])
        for acc in held:
            if (len(self._held) <= MAX_HELD_REQUESTS // 2
                    and self._held_steps <= MAX_HELD_STEPS // 2):
                break
            self.spill.put(acc)
            del self._held[acc.index]
            self._held_steps -= len(acc.times)

    def indexes(self) -> array:
        """Every request's index, ascending."""
        if self.spill is None:
            return array("q", sorted(self._held))
        spill, held = self.spill, self._held
        top = max(len(spill.first) - 1, max(held, default=0))
        return array("q", (i for i in range(1, top + 1) if i in held or spill.has(i)))

    def get(self, index: int) -> Acc:
        """One request's accumulated frames, from memory and/or the spill file."""
        spill = self.spill
        if spill is None or not spill.has(index):
            return self._held[index]
        acc = spill.get(index)
        held = self._held.get(index)
        if held is not None:
            acc.merge(held)
        return acc

    def step_times(self, acc: Acc) -> list[tuple[str, float]]:
        """(step name, time) of each of its frames, in frame order."""
        labels, mask = self.labels.values, _MASK
        return [(labels[p & mask][_STEP], t) for p, t in zip(acc.packed, acc.times, strict=True)]

    def steps(self, acc: Acc, first_time: float) -> tuple[Step, ...]:
        """Its frames as `Step`s, times counted from `first_time`."""
        labels, mask = self.labels.values, _MASK
        return tuple([
            Step(packed >> _LABEL_BITS, time - first_time, *labels[packed & mask])
            for packed, time in zip(acc.packed, acc.times, strict=True)
        ])


class DirectAcc:
    """One direct request while its frames arrive (a few per capture: kept in memory)."""

    __slots__ = ("index", "client", "backend", "peer", "method", "uri", "status", "frames")

    def __init__(self, index: int) -> None:
        self.index = index
        self.client = ""
        self.backend = ""  # the request frame's destination role
        self.peer = ""  # any frame's non-client end: the backend if the request was not seen
        self.method = ""
        self.uri = ""
        self.status = 0
        self.frames = 0

    def add(self, r: Record) -> None:
        self.frames += 1
        if r.client and not self.client:
            self.client = r.client
        if (r.method or r.uri) and not self.method:
            self.method, self.uri, self.backend = r.method, r.uri, r.dst_role
        if r.status and not self.status:
            self.status = r.status
        if not self.peer:
            self.peer = r.dst_role if r.src_role == CLIENT else r.src_role

    def freeze(self) -> DirectRequest:
        return DirectRequest(self.index, self.client, self.backend or self.peer, self.method,
                             self.uri, self.status or None, self.frames)

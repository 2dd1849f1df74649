"""Packet records → requests, timings, anomalies, summary. Pure: no I/O, no rendering.

The plugin decides every per-packet label (roles, request index, step, leg, backend and its
evidence); this module only groups, measures and judges across packets. It never re-derives a
role or an index.

Memory stays small on big captures: each request keeps its steps as two packed arrays
(frame and label id; time) and the labels themselves are interned once in `_Labels`. Past
`_MAX_HELD_REQUESTS` requests (or `_MAX_HELD_STEPS` steps) in memory, the least recently seen
ones go to a temporary spill file (`_Spill`); one seen again afterwards simply starts another
chunk there, and chunks are merged when the request is read. What stays per request is a few
numbers (its spill offset, its backend and latency for the summary): ~30 bytes.
`Report.requests()` rebuilds readable `Request` objects one at a time for the renderers.
"""

from __future__ import annotations

import marshal
import math
import tempfile
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import permutations

from lbreport.pdml import Record
from lbreport.vocabulary import ARP, BACK, DIRECT, FRONT, RESETS, STEPS, TcpSteps

__all__ = ["ARP", "BACK", "DIRECT", "FRONT"]  # re-exported: renderers import them from here

# The policies a verdict can test without being told which one the balancer runs.
KNOWN_POLICIES = ("round-robin", "ip-hash", "least-conn")
TIMING_KEYS = (
    "handshake_rtt",
    "request_to_upstream",
    "backend_time",
    "time_to_first_byte",
    "total",
)
_LABEL_BITS = 20  # a step is packed as frame << 20 | label id
_MASK = (1 << _LABEL_BITS) - 1
# Held in memory before the least recently seen requests are spilled to a temporary file.
_MAX_HELD_REQUESTS = 20_000
_MAX_HELD_STEPS = 1_000_000


@dataclass(slots=True, unsafe_hash=True)
class Step:
    """Read-only by convention; not `frozen` because a frozen dataclass's __init__ costs ~5x
    more and the renderers build one Step per frame. Hashable and comparable as before."""

    frame: int
    time: float  # seconds since the capture's first frame
    src_role: str
    dst_role: str
    leg: str
    step: str
    flags: tuple[str, ...]
    arp_target: str  # ARP who-has / ND solicitation: the role whose address is asked for


@dataclass(frozen=True, slots=True)
class Anomaly:
    """A departure from the lifecycle: a stable `code` (JSON, translations and batch key off
    it) and structured details, never words: only renderers phrase it (render/common.py
    through the catalogue; render/json.py the contract's string). Which fields a code uses:
    missing-step: steps=(name,); repeated-step: steps=(name,), count; rst: path=(src, dst);
    retransmission: count (frames); http-5xx: status; upstream-5xx: status, backend;
    failover: path (backends in order); no-response, no-upstream: none."""

    code: str
    steps: tuple[str, ...] = ()
    count: int = 0
    status: int | None = None
    backend: str = ""
    path: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Request:
    index: int
    client: str
    method: str
    uri: str
    status: int | None
    backend: str | None
    evidence: str
    upstream_statuses: tuple[tuple[str, int], ...]  # (backend, status) in order
    steps: tuple[Step, ...]
    timings: dict[str, float | None]
    anomalies: tuple[Anomaly, ...]
    # What the client wrote itself in X-Forwarded-For (never taken as its address), or "".
    client_forwarded_for: str = ""
    # HTTPS (issue 11). scheme "http"/"https" and http_version "1.0"/"1.1"/"2" of the client's
    # request ("" when unseen or unreadable); encrypted: the front leg's exchange was seen only
    # as TLS records (no key log); status_source: where `status` was read: "front" (the
    # client's response), "back-leg" (the backend's answer: an encrypted front leg at M3, or a
    # backend's view), "" without a status; answered_by_balancer: M3 answered a redirect itself
    # (3xx, no upstream request at all), so no backend served it.
    scheme: str = ""
    http_version: str = ""
    encrypted: bool = False
    status_source: str = ""
    answered_by_balancer: bool = False
    back_encrypted: bool = False  # the back leg is TLS too and unreadable (re-encryption)

    @property
    def is_complete(self) -> bool:
        """Its lifecycle ran its course: answered, and no anomaly that cuts it short
        (retransmissions and 5xx don't: the request still went through every step)."""
        return self.status is not None and not any(a.code in INCOMPLETE for a in self.anomalies)

    @property
    def is_error(self) -> bool:
        """What a student calls a failed request: a server error (5xx) or no answer at all."""
        return self.status is None or self.status >= 500

    @property
    def lanes(self) -> list[str]:
        """The roles its steps touch ("?" for an unnamed end), in role order."""
        return role_sort({s.src_role or "?" for s in self.steps}
                         | {s.dst_role or "?" for s in self.steps})


# Anomaly codes that mean a request's lifecycle did not run its course.
INCOMPLETE = frozenset({"no-response", "missing-step", "no-upstream", "rst"})


@dataclass(frozen=True, slots=True)
class PolicyCheck:
    """Whether the observed sequence of backends could come from one policy.

    `result`: "consistent" | "inconsistent" | "undecided" (the capture cannot tell).
    `reason`: why not consistent: "rotation" (round robin's order broken), "counts" (weights'
    shares), "client-split" (ip-hash: one client address, several backends), "busier"
    (least-conn: a backend with more requests in flight was chosen); why undecided:
    "no-overlap" (least-conn: no request started while another was in flight),
    "no-repeat-client" (ip-hash: no client address made two requests with a known backend).
    `request`: the first request that contradicts the policy; `client`/`backends`: ip-hash's
    counterexample (or, for least-conn, the chosen backend then the less busy one);
    `in_flight`: least-conn's counts at that request's start."""

    policy: str
    result: str
    reason: str = ""
    request: int | None = None
    client: str = ""
    backends: tuple[str, ...] = ()
    in_flight: dict[str, int] = field(default_factory=dict)
    decisions: int = 0  # least-conn: requests that started while others were in flight


@dataclass(frozen=True, slots=True)
class Balance:
    policy: str  # declared: "round-robin" | "weights" | "ip-hash" | "least-conn"; "": none
    weights: dict[str, int]
    verdict: str  # "matches" | "differs" | "not-judged"
    # for not-judged: "backend-view" | "no-known-backend" | "single-backend" | "one-request"
    # | "no-overlap" | "no-repeat-client" (the declared policy cannot be told from this capture)
    # | "undecidable" (none declared, and no known policy can be told)
    reason: str
    expected: dict[str, float]  # only for policies that predict counts (round robin, weights)
    observed: dict[str, int]
    unknown: int  # requests left out because their backend is unknown
    rotation_broken_at: int | None  # round robin: first request index breaking the rotation
    consistent_with: tuple[str, ...] = ()  # every checked policy the sequence fits
    checks: tuple[PolicyCheck, ...] = ()


@dataclass(frozen=True, slots=True)
class Latency:
    basis: str  # "time_to_first_byte" | "backend_time" | ""
    count: int
    p50: float | None
    p90: float | None
    p99: float | None
    max: float | None


@dataclass(frozen=True, slots=True)
class Summary:
    requests: int
    frames_total: int
    frames_in_requests: int
    frames_other: int
    backend_distribution: dict[str, int]
    status_counts: dict[str, int]
    balance: Balance
    latency: Latency
    # Frames in no request by what the plugin says they are (lblab.kind; "other" if it does
    # not say), count descending then name: explains frames_other, which it sums to.
    frames_other_by_kind: dict[str, int] = field(default_factory=dict)
    # HTTPS without the key log: requests whose front exchange was only TLS records, and of
    # those, how many had an unreadable (TLS) back leg too.
    encrypted: int = 0
    encrypted_both_legs: int = 0
    # Another farm's balancer in the same capture (merged captures): address, requests it got.
    other_balancers: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class DirectRequest:
    """A client's HTTP request straight to a backend (not through M3): listed apart, never
    a balanced request. `index` is the plugin's own numbering of direct requests."""

    index: int
    client: str
    backend: str
    method: str
    uri: str
    status: int | None
    frames: int


class _DirectAcc:
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
            self.peer = r.dst_role if r.src_role == "client" else r.src_role

    def freeze(self) -> DirectRequest:
        return DirectRequest(self.index, self.client, self.backend or self.peer, self.method,
                             self.uri, self.status or None, self.frames)


class _Labels:
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


class _Acc:
    """One request while packets arrive: only what the report needs, compactly."""

    __slots__ = (
        "index", "client", "method", "uri", "up_method", "up_uri", "status", "up_statuses",
        "backend", "evidence", "packed", "times", "client_xff", "scheme", "version",
        "up_scheme", "up_version", "encrypted", "up_encrypted",
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

    def dumps(self) -> bytes:
        return marshal.dumps((
            self.index, self.client, self.method, self.uri, self.up_method, self.up_uri,
            self.status, self.up_statuses, self.backend, self.evidence, self.packed.tobytes(),
            self.times.tobytes(), self.client_xff, self.scheme, self.version, self.up_scheme,
            self.up_version, self.encrypted, self.up_encrypted,
        ))  # fmt: skip

    @classmethod
    def loads(cls, data: bytes) -> _Acc:
        acc = cls.__new__(cls)
        (acc.index, acc.client, acc.method, acc.uri, acc.up_method, acc.up_uri, acc.status,
         acc.up_statuses, acc.backend, acc.evidence, packed, times,
         acc.client_xff, acc.scheme, acc.version, acc.up_scheme, acc.up_version, acc.encrypted,
         acc.up_encrypted) = marshal.loads(data)
        acc.packed = array("q")
        acc.packed.frombytes(packed)
        acc.times = array("d")
        acc.times.frombytes(times)
        return acc

    def merge(self, later: _Acc) -> None:
        """Append a later chunk of the same request: the same first-seen rules as `add`."""
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


class _Spill:
    """Requests' chunks in a temporary file: 1 + the offset of each request's first chunk
    (indexed by request number; 0: none), and the offsets of any later chunks."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile(buffering=1 << 20)  # noqa: SIM115 - closed by GC
        self._size = 0
        self._reading = False
        self.first = array("q")
        self.more: dict[int, list[int]] = {}

    def put(self, acc: _Acc) -> None:
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

    def get(self, index: int) -> _Acc:
        """The request's chunks, merged in the order they were written (frame order)."""
        acc = self._read(self.first[index] - 1)
        for offset in self.more.get(index, ()):
            acc.merge(self._read(offset))
        return acc

    def _read(self, offset: int) -> _Acc:
        self._reading = True
        f = self._file
        f.seek(offset)
        return _Acc.loads(f.read(int.from_bytes(f.read(4), "little")))


class LifecycleBuilder:
    """Feed records in frame order with `add`; `finish` returns the `Report`.

    Incremental on purpose: a live mode can feed packets as they come.
    """

    def __init__(self) -> None:
        self._labels = _Labels()
        self._reqs: dict[int, _Acc] = {}  # held in memory
        self._held_steps = 0
        self._spill: _Spill | None = None
        self.roles: dict[str, list[str]] = {}
        self.frames_total = 0
        self.frames_in_requests = 0
        self.last_frame = 0
        self.first_time: float | None = None
        self.legs: set[str] = set()
        self.back_roles: set[str] = set()
        self.http_requests_seen = 0  # HTTP requests in the capture, in a request or not
        # Balancers of another farm in the same capture, left out: (address, requests).
        self.other_balancers: list[tuple[str, int]] = []
        self.other_kinds: Counter[str] = Counter()  # frames in no request, by lblab.kind
        # TLS records on the farm's HTTPS port(s): with no request found, the error names TLS.
        self.tls_frames_seen = 0
        self._direct: dict[int, _DirectAcc] = {}

    def add(self, r: Record) -> None:
        self.frames_total += 1
        if r.method:
            self.http_requests_seen += 1
        if r.other_balancer:
            addr, _, n = r.other_balancer.rpartition("=")
            self.other_balancers.append((addr, int(n) if n.isdigit() else 0))
        if r.kind == "tls" or r.step.startswith(("TLS-", "up-TLS-")):
            self.tls_frames_seen += 1
        self.last_frame = r.frame
        if self.first_time is None:
            self.first_time = r.time
        for definition in r.role_defs:
            role, _, addr = definition.partition("=")
            addrs = self.roles.setdefault(role, [])
            if addr and addr not in addrs:
                addrs.append(addr)
        if r.leg:
            self.legs.add(r.leg)
            if r.leg == BACK:
                # The backend end of a back-leg frame (the other end is M3).
                self.back_roles.add(r.dst_role if r.src_role == "M3" else r.src_role)
        if r.direct:
            found = self._direct.get(r.direct)
            if found is None:
                found = self._direct[r.direct] = _DirectAcc(r.direct)
            found.add(r)
        if not r.req or r.leg == DIRECT:
            # A direct request's frames are never a balanced request's, whatever their index.
            self.other_kinds[r.kind or (DIRECT if r.leg == DIRECT else "other")] += 1
            return
        self.frames_in_requests += 1
        acc = self._reqs.get(r.req)
        if acc is None:
            if len(self._reqs) >= _MAX_HELD_REQUESTS:
                self._evict()
            acc = self._reqs[r.req] = _Acc(r.req)
        self._held_steps += 1
        if self._held_steps > _MAX_HELD_STEPS:
            self._evict()
        acc.packed.append(r.frame << _LABEL_BITS | self._labels.id(r))
        acc.times.append(r.time)
        if r.client and not acc.client:
            acc.client = r.client
        if r.client_xff and not acc.client_xff:
            acc.client_xff = r.client_xff
        if r.backend and not acc.backend:
            acc.backend = r.backend
        if r.evidence and not acc.evidence:
            acc.evidence = r.evidence
        if r.method or r.uri:
            if r.leg == BACK:
                if not acc.up_method:
                    acc.up_method, acc.up_uri = r.method, r.uri
            elif not acc.method:
                acc.method, acc.uri = r.method, r.uri
        if r.scheme or r.http_version or r.encrypted:
            if r.leg == BACK and r.encrypted and r.method:
                # A readable back-leg request flagged encrypted: the plugin's exchange that
                # the client's TLS records did not show apart (an HTTP/2 stream without the
                # key log); the front is what is encrypted, and it is https.
                acc.up_scheme = acc.up_scheme or r.scheme
                acc.up_version = acc.up_version or r.http_version
                acc.encrypted, acc.scheme = True, acc.scheme or "https"
            elif r.leg == BACK:
                acc.up_scheme = acc.up_scheme or r.scheme
                acc.up_version = acc.up_version or r.http_version
                acc.up_encrypted = acc.up_encrypted or r.encrypted
            else:
                acc.scheme = acc.scheme or r.scheme
                acc.version = acc.version or r.http_version
                acc.encrypted = acc.encrypted or r.encrypted
        if r.status:
            if r.leg == BACK:
                if acc.up_statuses is None:
                    acc.up_statuses = []
                acc.up_statuses.append((r.src_role, r.status))
            elif not acc.status:
                acc.status = r.status

    def _evict(self) -> None:
        """Spill the least recently seen half of the held requests (by their last frame)."""
        if self._spill is None:
            self._spill = _Spill()
        held = sorted(self._reqs.values(), key=lambda a: a.packed[-1])
        for acc in held:
            if (len(self._reqs) <= _MAX_HELD_REQUESTS // 2
                    and self._held_steps <= _MAX_HELD_STEPS // 2):
                break
            self._spill.put(acc)
            del self._reqs[acc.index]
            self._held_steps -= len(acc.times)

    def _indexes(self) -> array:
        """Every request's index, ascending."""
        if self._spill is None:
            return array("q", sorted(self._reqs))
        spill, held = self._spill, self._reqs
        top = max(len(spill.first) - 1, max(held, default=0))
        return array("q", (i for i in range(1, top + 1) if i in held or spill.has(i)))

    def _acc(self, index: int) -> _Acc:
        """One request's accumulated frames, from memory and/or the spill file."""
        spill = self._spill
        if spill is None or not spill.has(index):
            return self._reqs[index]
        acc = spill.get(index)
        held = self._reqs.get(index)
        if held is not None:
            acc.merge(held)
        return acc

    def finish(self, *, policy: str = "", weights: dict[str, int] | None = None,
               configured_backends: Iterable[str] = (), capture: str = "",
               roles_source: str = "inferred", lab_source: str = "", truncated: bool = False,
               keylog: str = "", capture_point: str = "",
               first_time: float | None = None) -> Report:
        """The finished report: everything a renderer reads is set here (where the capture
        came from, how roles were chosen, whether tshark stopped early), never patched on
        afterwards. `capture_point` and `first_time`: a part of a capture (live builds one
        request alone) judged and timed as the whole capture is."""
        capture_point = capture_point or _capture_point(self.legs, self.back_roles)
        first_time = (self.first_time or 0.0) if first_time is None else first_time
        order = self._indexes()
        statuses: Counter[str] = Counter()
        per_backend: Counter[str] = Counter()
        sequence = _Sequence()
        dispatches = _Dispatches()
        latencies: dict[str, array] = {"time_to_first_byte": array("d"), "backend_time": array("d")}
        labels = self._labels.values
        mask = _MASK
        encrypted = encrypted_both = 0
        for index in order:
            # Only what the summary needs: no Step objects, no anomaly verdicts (the
            # renderers rebuild each request in full, one at a time).
            acc = self._acc(index)
            if acc.encrypted:
                encrypted += 1
                encrypted_both += acc.up_encrypted
            status = _status(acc, capture_point)
            per_backend[acc.backend or "unknown"] += 1
            if acc.backend:
                sequence.append(index, acc.backend)
            steps = [(labels[p & mask][3], t) for p, t in zip(acc.packed, acc.times, strict=True)]
            # An encrypted response is a response whose status is unreadable, not "none".
            unread = not status and acc.encrypted and any(n == "response" for n, _ in steps)
            statuses[str(status) if status else "encrypted" if unread else "none"] += 1
            dispatches.append(index, acc.backend, acc.client, steps)
            measured = timings(steps)
            for basis, values in latencies.items():
                value = measured[basis]
                if value is not None:
                    values.append(value)
        backends = _backend_roles(configured_backends, self.roles, per_backend)
        kinds = sorted(self.other_kinds.items(), key=lambda kv: (-kv[1], kv[0]))
        summary = Summary(
            requests=len(order),
            frames_total=self.frames_total,
            frames_in_requests=self.frames_in_requests,
            frames_other=self.frames_total - self.frames_in_requests,
            backend_distribution={b: per_backend[b] for b in role_sort(per_backend)},
            status_counts=dict(sorted(statuses.items())),
            balance=_balance(policy, weights or {}, backends, sequence, dispatches,
                             per_backend["unknown"], capture_point),
            latency=_latency(latencies),
            frames_other_by_kind=dict(kinds),
            encrypted=encrypted,
            encrypted_both_legs=encrypted_both,
            other_balancers=tuple(self.other_balancers),
        )
        roles = {role: self.roles[role] for role in role_sort(self.roles)}
        direct = tuple(self._direct[i].freeze() for i in sorted(self._direct))
        return Report(self, capture_point, roles, summary, first_time, order, capture=capture,
                      roles_source=roles_source, lab_source=lab_source, truncated=truncated,
                      last_frame=self.last_frame, direct_requests=direct, keylog=keylog)

    # -- one request ------------------------------------------------------------------------

    def rebuild(self, index: int, first_time: float, capture_point: str) -> Request:
        """Request `index` in full (for `Report.requests`: the report keeps only indexes and
        rebuilds each request from here, from memory or the spill file, when it is read)."""
        return self._request(self._acc(index), first_time, capture_point)

    def _request(self, acc: _Acc, first_time: float, capture_point: str) -> Request:
        labels = self._labels.values
        mask = _MASK
        steps = tuple([
            Step(packed >> _LABEL_BITS, time - first_time, *labels[packed & mask])
            for packed, time in zip(acc.packed, acc.times, strict=True)
        ])
        up_statuses = tuple(acc.up_statuses or ())
        status = _status(acc, capture_point)
        # A redirect M3 made itself (port 80 → https://): no upstream request was ever sent,
        # so a missing back leg is its normal lifecycle, not an anomaly.
        by_balancer = (capture_point == "M3" and status in REDIRECTS and not up_statuses
                       and not any(st.leg == BACK for st in steps))
        return Request(
            index=acc.index,
            client=acc.client,
            method=acc.method or acc.up_method,
            uri=acc.uri or acc.up_uri,
            status=status or None,
            backend=acc.backend or None,
            evidence=acc.evidence or "none",
            upstream_statuses=up_statuses,
            steps=steps,
            timings=timings([(st.step, st.time) for st in steps]),
            anomalies=anomalies(steps, status or None, up_statuses, capture_point,
                                answered_by_balancer=by_balancer),
            client_forwarded_for=acc.client_xff,
            scheme=acc.scheme or (acc.up_scheme if capture_point not in ("client", "M3") else ""),
            http_version=acc.version or (acc.up_version if capture_point not in ("client", "M3")
                                         else ""),
            encrypted=acc.encrypted,
            status_source=("front" if acc.status else "back-leg") if status else "",
            answered_by_balancer=by_balancer,
            back_encrypted=acc.up_encrypted,
        )


def _status(acc: _Acc, capture_point: str) -> int:
    """The client's status; in a backend view (no front leg) the backend's own answer; at M3
    with an encrypted front leg, the backend's last answer: the balancer forwarded it (the
    request says so: status_source "back-leg")."""
    if acc.status or not acc.up_statuses:
        return acc.status
    if capture_point in ("client", "M3") and not acc.encrypted:
        return acc.status
    return acc.up_statuses[-1][1]


REDIRECTS = frozenset((301, 302, 303, 307, 308))


@dataclass(frozen=True, slots=True)
class Report:
    """The model every renderer reads, finished by `LifecycleBuilder.finish` and never changed
    afterwards (frozen: one per capture, so it costs nothing). Requests are rebuilt lazily,
    one at a time, from the builder it keeps (private: renderers only call `requests()`)."""

    _builder: LifecycleBuilder
    capture_point: str  # "client" | "M3" | a backend role ("M2") | "unknown"
    roles: dict[str, list[str]]
    summary: Summary
    first_time: float
    _order: Sequence[int]  # request indexes, ascending (an array on big captures)
    capture: str = ""
    roles_source: str = "inferred"  # "configured" | "inferred"
    lab_source: str = ""
    truncated: bool = False
    last_frame: int = 0
    direct_requests: tuple[DirectRequest, ...] = ()  # not through M3: listed apart
    keylog: str = ""  # the TLS key log tshark was given, if any

    def requests(self) -> Iterator[Request]:
        rebuild = self._builder.rebuild
        for index in self._order:
            yield rebuild(index, self.first_time, self.capture_point)

    @property
    def backends(self) -> list[str]:
        """Every backend of the farm, in role order: those that served a request and those
        the roles name (M1, M2, M4…: "M3 is the balancer"), known even when idle."""
        served = (b for b in self.summary.backend_distribution if b != "unknown")
        return role_sort({*served, *(r for r in self.roles if r[:1] == "M" and r != "M3")})

    def lanes(self, request: Request) -> list[str]:
        """A ladder's lanes for `request`: the capture's roles (client, M3, M1, M2…) plus any
        other role it touches (broadcast for ARP), in role order. The same lanes for every
        request of a capture, so diagrams compare at a glance."""
        return role_sort(set(self.roles) | set(request.lanes))


# -- measures and verdicts (pure functions of a request's steps) -----------------------------


def timings(steps: Sequence[tuple[str, float]]) -> dict[str, float | None]:
    """The request's durations, from its (step name, time) pairs in frame order."""
    first = dict(reversed(steps))  # each step's first time: earlier pairs overwrite later ones

    def between(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else round(b - a, 9)

    # Backend time: from the upstream request that got the first upstream response (after a
    # failover that is the last one sent before it) to that response.
    up_response = first.get("up-response")
    up_request = None
    for step, time in steps:
        if step == "up-request" and (up_response is None or time <= up_response):
            up_request = time
    return {
        "handshake_rtt": between(first.get("SYN"), first.get("SYN/ACK")),
        "request_to_upstream": between(first.get("request"), first.get("up-request")),
        "backend_time": between(up_request, up_response),
        "time_to_first_byte": between(first.get("request"), first.get("response")),
        "total": between(steps[0][1], steps[-1][1]) if steps else None,
    }


def anomalies(
    steps: tuple[Step, ...],
    status: int | None,
    up_statuses: tuple[tuple[str, int], ...],
    capture_point: str,
    answered_by_balancer: bool = False,
) -> tuple[Anomaly, ...]:
    """Departures from the canonical lifecycle (docs/fields.md), for the legs this capture
    point can see. `answered_by_balancer`: M3 answered it itself (a redirect): no back leg
    is expected."""
    found: list[Anomaly] = []
    front = [s for s in steps if s.leg == FRONT]
    back = [s for s in steps if s.leg == BACK]
    sees_front = capture_point in ("client", "M3")
    sees_back = capture_point not in ("client", "unknown")

    if sees_front:
        found += _leg_anomalies(front, STEPS[FRONT], judge_response=True)
    if sees_back:
        by_backend: dict[str, list[Step]] = {}
        for s in back:
            by_backend.setdefault(s.dst_role if s.src_role == "M3" else s.src_role, []).append(s)
        if capture_point == "M3" and not back and not answered_by_balancer:
            found.append(Anomaly("no-upstream"))
        for group in by_backend.values():
            found += _leg_anomalies(group, STEPS[BACK], judge_response=not sees_front)
        if len(by_backend) > 1:
            found.append(Anomaly("failover", path=tuple(by_backend)))

    resets = [(s.src_role, s.dst_role) for s in steps if s.step in RESETS]
    for who in dict.fromkeys(resets):
        found.append(Anomaly("rst", path=who))
    retrans = sum(1 for s in steps if "retrans" in s.flags)
    if retrans:
        found.append(Anomaly("retransmission", count=retrans))
    if status is not None and status >= 500:
        found.append(Anomaly("http-5xx", status=status))
    for backend, up_status in up_statuses:
        if up_status >= 500 and (sees_front or up_status != status):
            found.append(Anomaly("upstream-5xx", status=up_status, backend=backend))
    return tuple(dict.fromkeys(found))


def _leg_anomalies(steps: list[Step], names_of: TcpSteps, judge_response: bool) -> list[Anomaly]:
    """Missing/repeated steps on one leg, named by `names_of` (the leg's vocabulary).
    `judge_response`: this leg's missing response means the request got no response (else it
    is a missing step)."""
    found: list[Anomaly] = []
    if not steps:
        return found
    counts = Counter(s.step for s in steps if "retrans" not in s.flags)
    names = set(counts)
    v = names_of

    def missing(step: str) -> None:
        found.append(Anomaly("missing-step", steps=(step,)))

    reset = v.rst in names
    # A SYN answered by RST is a refused connection: reported as the RST, not a missing step.
    if v.syn in names and v.synack not in names and not reset:
        missing(v.synack)
    if v.synack in names and v.syn not in names:
        missing(v.syn)
    # The client may ACK the SYN/ACK with its request; only an unused handshake lacks the ACK.
    if v.syn in names and v.synack in names and v.ack not in names and v.request not in names:
        missing(v.ack)
    if v.request in names and v.response not in names:
        found.append(Anomaly("no-response") if judge_response else
                     Anomaly("missing-step", steps=(v.response,)))
    if v.response in names and v.request not in names:
        missing(v.request)
    # A back-leg connection may outlive its requests (pooled by the balancer, closed by
    # either side later, or half-closed): one side's FIN alone is normal there.
    pooled = v is STEPS[BACK]
    if (v.fin_a in names or v.fin_b in names) and not reset:
        if not pooled:
            for fin in (v.fin_a, v.fin_b):
                if fin not in names:
                    missing(fin)
        if v.fin_a in names and v.fin_b in names and v.last_ack not in names:
            missing(v.last_ack)
    for name in v.once:
        if counts[name] > 1:
            found.append(Anomaly("repeated-step", steps=(name,), count=counts[name]))
    return found


def _capture_point(legs: set[str], back_roles: set[str]) -> str:
    if FRONT in legs and BACK in legs:
        return "M3"
    if FRONT in legs:
        return "client"
    if BACK in legs:
        backends = sorted(back_roles - {"M3", "client", ""}, key=_role_key)
        return backends[0] if len(backends) == 1 else "backend"
    return "unknown"


def _backend_roles(configured: Iterable[str], roles: dict[str, list[str]],
                   per_backend: Counter[str]) -> list[str]:
    known = list(configured) or [r for r in roles if r.startswith("M") and r != "M3"]
    known += [b for b in per_backend if b != "unknown" and b not in known]
    return sorted(dict.fromkeys(known), key=_role_key)


class _Sequence:
    """(request index, backend) pairs in request order, packed: two numbers a request."""

    def __init__(self) -> None:
        self._index = array("q")
        self._backend = array("l")
        self._ids: dict[str, int] = {}
        self._names: list[str] = []

    def append(self, index: int, backend: str) -> None:
        found = self._ids.get(backend)
        if found is None:
            found = self._ids[backend] = len(self._names)
            self._names.append(backend)
        self._index.append(index)
        self._backend.append(found)

    def __len__(self) -> int:
        return len(self._index)

    def __getitem__(self, i: int) -> tuple[int, str]:
        return self._index[i], self._names[self._backend[i]]

    def __iter__(self) -> Iterator[tuple[int, str]]:
        names = self._names
        for index, b in zip(self._index, self._backend, strict=True):
            yield index, names[b]


class _Dispatches:
    """Every request in request order, packed, for the policy checks: its backend (-1:
    unknown), its client address, and when it was dispatched and done. Dispatch is when M3
    chose the backend (its connection to it, else its upstream request; in a client view the
    request itself). Done: `end_lo` when the backend certainly still had it (its response
    arrives), `end_hi` when it certainly no longer had it (the response's last frame out of
    M3, plus a millisecond for the balancer to release it); inf without a response."""

    def __init__(self) -> None:
        self.index = array("q")
        self.backend = array("l")
        self.client = array("l")
        self.start = array("d")
        self.end_lo = array("d")
        self.end_hi = array("d")
        self.backends: dict[str, int] = {}
        self.clients: dict[str, int] = {}

    def append(self, index: int, backend: str, client: str,
               steps: Sequence[tuple[str, float]]) -> None:
        first: dict[str, float] = {}
        last_out = -math.inf
        for step, time in steps:
            first.setdefault(step, time)
            if step in _RESPONSE_STEPS:
                last_out = time
        start = first.get("up-SYN", first.get("up-request"))
        if start is None or first.get("up-request", start) < start:
            start = first.get("up-request", first.get("request", first.get("SYN", math.nan)))
        end_lo = first.get("up-response", first.get("response", math.inf))
        end_hi = last_out + _RELEASE if last_out > -math.inf else math.inf
        self.index.append(index)
        self.backend.append(self.backends.setdefault(backend, len(self.backends))
                            if backend else -1)
        self.client.append(self.clients.setdefault(_address(client), len(self.clients)))
        self.start.append(start)
        self.end_lo.append(end_lo)
        self.end_hi.append(max(end_hi, end_lo))


_RESPONSE_STEPS = frozenset(("response", "up-response", "data", "up-data"))
_RELEASE = 0.001  # seconds a balancer may take to release a backend after the response
_MAX_ROTATION_BACKENDS = 6  # beyond: (k-1)! rotations to try; unknown requests then skipped


def _address(client: str) -> str:
    """ "ip:port" / "[v6]:port" → the address (ip-hash hashes the address, not the port)."""
    if client.startswith("["):
        return client[1:].partition("]")[0]
    return client.rpartition(":")[0] if client.count(":") == 1 else client


def _balance(policy: str, weights: dict[str, int], backends: list[str],
             sequence: Sequence[tuple[int, str]], dispatches: _Dispatches, unknown: int,
             capture_point: str) -> Balance:
    observed = {b: 0 for b in backends}
    for _, b in sequence:
        observed[b] = observed.get(b, 0) + 1
    n = len(sequence)
    share = {b: weights.get(b, 0) for b in backends} if policy == "weights" else dict.fromkeys(
        backends, 1)
    total_share = sum(share.values()) or 1
    # Only a policy that predicts counts has an expectation to show.
    expected = {b: round(n * share[b] / total_share, 2) for b in backends} if policy in (
        "round-robin", "weights") else {}

    def result(verdict: str, reason: str = "", checks: tuple[PolicyCheck, ...] = ()) -> Balance:
        rr = next((c for c in checks if c.policy == "round-robin"), None)
        broken = rr.request if rr is not None and rr.result == "inconsistent" else None
        consistent = tuple(c.policy for c in checks if c.result == "consistent")
        return Balance(policy, weights, verdict, reason, expected, observed, unknown, broken,
                       consistent, checks)

    if capture_point not in ("client", "M3", "unknown"):
        return result("not-judged", "backend-view")
    if n == 0:
        return result("not-judged", "no-known-backend")
    if len(backends) < 2:
        return result("not-judged", "single-backend")
    if n == 1:  # any policy sends one request anywhere: nothing to tell them apart
        return result("not-judged", "one-request")
    # Each backend's id in `dispatches`; one never chosen gets its own negative id.
    ids = [dispatches.backends.get(b, -2 - i) for i, b in enumerate(backends)]
    checks = [
        _check_round_robin(dispatches, ids),
        _check_ip_hash(dispatches),
        _check_least_conn(dispatches, ids),
    ]
    if policy == "weights":
        checks.insert(0, _check_weights(backends, observed, share, total_share, n, unknown))
    checks = [_named(c, dispatches) for c in checks]
    if policy:
        mine = next(c for c in checks if c.policy == policy)
        verdict = {"consistent": "matches", "inconsistent": "differs"}.get(mine.result)
        return result(verdict or "not-judged", "" if verdict else mine.reason, tuple(checks))
    results = {c.result for c in checks}
    if "consistent" in results:
        return result("matches", "", tuple(checks))
    if "inconsistent" in results:
        return result("differs", "", tuple(checks))
    return result("not-judged", "undecidable", tuple(checks))


def _named(check: PolicyCheck, d: _Dispatches) -> PolicyCheck:
    """Backend and client ids → names, for the report."""
    names = {i: b for b, i in d.backends.items()}
    clients = {i: c for c, i in d.clients.items()}
    if not check.backends and not check.in_flight and not check.client:
        return check
    return PolicyCheck(
        check.policy, check.result, check.reason, check.request,
        clients.get(int(check.client), "") if check.client else "",
        tuple(names.get(int(b), b) for b in check.backends),
        {names.get(int(b), b): v for b, v in check.in_flight.items()},
        check.decisions,
    )


def _check_weights(backends: list[str], observed: dict[str, int], share: dict[str, int],
                   total_share: int, n: int, unknown: int) -> PolicyCheck:
    """Weighted round robin keeps each backend's count within one request of its share. The
    unknown requests went somewhere: each backend may have up to `unknown` more."""
    total = n + unknown
    for b in backends:
        ideal = total * share[b] / total_share
        if not ideal - 1 - unknown < observed[b] < ideal + 1:
            return PolicyCheck("weights", "inconsistent", "counts")
    return PolicyCheck("weights", "consistent")


def _check_round_robin(d: _Dispatches, ids: list[int]) -> PolicyCheck:
    """Round robin visits the k backends in a fixed cyclic order. A request with an unknown
    backend took one turn (a 304 a backend served) or none (answered by M3 itself): both are
    allowed. Every cyclic order is tried; the rotation breaks at the request where the one
    that went furthest fails. Turns follow the dispatch order (concurrent clients' requests
    may reach M3 in one order and get their backend in another)."""
    k = len(ids)
    # Positions in dispatch order; a request never dispatched keeps its place by index.
    order = sorted(range(len(d.index)), key=lambda j: (
        math.inf if math.isnan(d.start[j]) else d.start[j], d.index[j]))
    if k > _MAX_ROTATION_BACKENDS:
        # Too many orders to try: the first k known backends fix it; unknown ones are skipped.
        known = [j for j in order if d.backend[j] >= 0]
        seq = [d.backend[j] for j in known]
        for i, b in enumerate(seq):
            if (b != seq[i - k]) if i >= k else (b in seq[:i]):
                return PolicyCheck("round-robin", "inconsistent", "rotation", d.index[known[i]])
        return PolicyCheck("round-robin", "consistent")
    backend_in_order = [d.backend[j] for j in order]
    mask = (1 << k) - 1
    furthest = 0
    for rest in permutations(range(1, k)):
        turn = {ids[o]: i for i, o in enumerate((0, *rest))}
        reachable = mask  # the turns the next request may take: any, at first
        for j, b in enumerate(backend_in_order):
            if b < 0:
                reachable |= ((reachable << 1) | (reachable >> (k - 1))) & mask
                continue
            i = turn.get(b, -1)
            if i < 0 or not reachable >> i & 1:
                furthest = max(furthest, j)
                break
            reachable = 1 << ((i + 1) % k)
        else:
            return PolicyCheck("round-robin", "consistent")
    return PolicyCheck("round-robin", "inconsistent", "rotation", d.index[order[furthest]])


def _check_ip_hash(d: _Dispatches) -> PolicyCheck:
    """One client address → always the same backend (which one depends on the hash)."""
    first: dict[int, int] = {}
    repeated = False
    for index, client, b in zip(d.index, d.client, d.backend, strict=True):
        if b < 0:
            continue
        seen = first.get(client)
        if seen is None:
            first[client] = b
            continue
        if seen != b:
            return PolicyCheck("ip-hash", "inconsistent", "client-split", index, str(client),
                               (str(seen), str(b)))
        repeated = True
    if not repeated:
        return PolicyCheck("ip-hash", "undecided", "no-repeat-client")
    return PolicyCheck("ip-hash", "consistent")


def _check_least_conn(d: _Dispatches, ids: list[int]) -> PolicyCheck:
    """least-conn sends each request to a backend with the fewest requests in flight. The
    balancer's own counter is not in the capture, so it is bounded from the times: at a
    request's dispatch, a backend certainly had the earlier requests dispatched to it whose
    response had not arrived, and at most those not yet released (plus, for any backend, the
    requests whose backend is unknown). Contradicted only when the chosen backend certainly
    had more than another could have had; decided only when something was in flight."""
    order = sorted((s, i) for i, s in enumerate(d.start) if not math.isnan(s))
    active: list[int] = []  # earlier requests not yet released
    decisions = 0
    for start, i in order:
        active = [j for j in active if d.end_hi[j] > start]
        chosen = d.backend[i]
        # A choice says something only if some earlier request was certainly in flight.
        if chosen >= 0 and any(d.start[j] < start < d.end_lo[j] for j in active):
            decisions += 1
        if chosen >= 0 and active:
            certain = sum(1 for j in active if d.backend[j] == chosen and d.end_lo[j] > start
                          and d.start[j] < start)
            wild = sum(1 for j in active if d.backend[j] < 0)
            possible = Counter(d.backend[j] for j in active if d.backend[j] >= 0)
            for other in ids:
                if 0 <= other != chosen and certain > possible[other] + wild:
                    # The chosen backend: at least; the others: at most.
                    in_flight = {str(b): possible[b] + wild for b in ids if b >= 0}
                    in_flight[str(chosen)] = certain
                    return PolicyCheck("least-conn", "inconsistent", "busier", d.index[i],
                                       "", (str(chosen), str(other)), in_flight, decisions)
        active.append(i)
    if not decisions:
        return PolicyCheck("least-conn", "undecided", "no-overlap")
    return PolicyCheck("least-conn", "consistent", decisions=decisions)


def _latency(latencies: dict[str, array]) -> Latency:
    for basis in ("time_to_first_byte", "backend_time"):
        values = sorted(latencies[basis])
        if values:
            def rank(p: float, v: list[float] = values) -> float:
                # Nearest-rank percentile: an observed value, never an interpolation.
                return v[max(0, -(-len(v) * p // 100) - 1)]
            return Latency(basis, len(values), rank(50), rank(90), rank(99), values[-1])
    return Latency("", 0, None, None, None, None)


def _role_key(role: str) -> tuple[int, int, str]:
    """client, M3, then M1, M2, … numerically; anything else last."""
    if role == "client":
        return (0, 0, role)
    if role == "M3":
        return (1, 0, role)
    if role[:1] == "M" and role[1:].isdigit():
        return (2, int(role[1:]), role)
    return (3, 0, role)


def role_sort(roles: Iterable[str]) -> list[str]:
    return sorted(roles, key=_role_key)

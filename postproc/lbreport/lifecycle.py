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
import tempfile
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from lbreport.pdml import Record

FRONT, BACK, ARP = "front", "back", "arp"
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
    """`code` is stable (JSON, translations key off it); `detail` is data (roles, counts)."""

    code: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}" if self.detail else self.code


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


@dataclass(frozen=True, slots=True)
class Balance:
    policy: str  # "round-robin" | "weights"
    weights: dict[str, int]
    verdict: str  # "matches" | "differs" | "not-judged"
    reason: str  # for not-judged: "backend-view" | "no-known-backend" | "single-backend"
    expected: dict[str, float]
    observed: dict[str, int]
    unknown: int  # requests left out because their backend is unknown
    rotation_broken_at: int | None  # round robin: first request index breaking the rotation


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
        "backend", "evidence", "packed", "times", "client_xff",
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

    def dumps(self) -> bytes:
        return marshal.dumps((
            self.index, self.client, self.method, self.uri, self.up_method, self.up_uri,
            self.status, self.up_statuses, self.backend, self.evidence, self.packed.tobytes(),
            self.times.tobytes(), self.client_xff,
        ))  # fmt: skip

    @classmethod
    def loads(cls, data: bytes) -> _Acc:
        acc = cls.__new__(cls)
        (acc.index, acc.client, acc.method, acc.uri, acc.up_method, acc.up_uri, acc.status,
         acc.up_statuses, acc.backend, acc.evidence, packed, times,
         acc.client_xff) = marshal.loads(data)
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

    def add(self, r: Record) -> None:
        self.frames_total += 1
        if r.method:
            self.http_requests_seen += 1
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
        if not r.req:
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

    def finish(self, *, policy: str = "round-robin", weights: dict[str, int] | None = None,
               configured_backends: Iterable[str] = ()) -> Report:
        capture_point = _capture_point(self.legs, self.back_roles)
        first_time = self.first_time or 0.0
        order = self._indexes()
        statuses: Counter[str] = Counter()
        per_backend: Counter[str] = Counter()
        sequence = _Sequence()
        latencies: dict[str, array] = {"time_to_first_byte": array("d"), "backend_time": array("d")}
        labels = self._labels.values
        mask = _MASK
        for index in order:
            # Only what the summary needs: no Step objects, no anomaly verdicts (the
            # renderers rebuild each request in full, one at a time).
            acc = self._acc(index)
            status = _status(acc, capture_point)
            statuses[str(status) if status else "none"] += 1
            per_backend[acc.backend or "unknown"] += 1
            if acc.backend:
                sequence.append(index, acc.backend)
            steps = [(labels[p & mask][3], t) for p, t in zip(acc.packed, acc.times, strict=True)]
            measured = timings(steps)
            for basis, values in latencies.items():
                value = measured[basis]
                if value is not None:
                    values.append(value)
        backends = _backend_roles(configured_backends, self.roles, per_backend)
        summary = Summary(
            requests=len(order),
            frames_total=self.frames_total,
            frames_in_requests=self.frames_in_requests,
            frames_other=self.frames_total - self.frames_in_requests,
            backend_distribution={b: per_backend[b] for b in role_sort(per_backend)},
            status_counts=dict(sorted(statuses.items())),
            balance=_balance(policy, weights or {}, backends, sequence,
                             per_backend["unknown"], capture_point),
            latency=_latency(latencies),
        )
        roles = {role: self.roles[role] for role in role_sort(self.roles)}
        return Report(self, capture_point, roles, summary, first_time, order)

    # -- one request ------------------------------------------------------------------------

    def _request(self, acc: _Acc, first_time: float, capture_point: str) -> Request:
        labels = self._labels.values
        mask = _MASK
        steps = tuple([
            Step(packed >> _LABEL_BITS, time - first_time, *labels[packed & mask])
            for packed, time in zip(acc.packed, acc.times, strict=True)
        ])
        up_statuses = tuple(acc.up_statuses or ())
        status = _status(acc, capture_point)
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
            anomalies=anomalies(steps, status or None, up_statuses, capture_point),
            client_forwarded_for=acc.client_xff,
        )


def _status(acc: _Acc, capture_point: str) -> int:
    """The client's status; in a backend view (no front leg) the backend's own answer."""
    if acc.status or capture_point in ("client", "M3") or not acc.up_statuses:
        return acc.status
    return acc.up_statuses[-1][1]


@dataclass(slots=True)
class Report:
    """The model every renderer reads. Requests are rebuilt lazily, one at a time."""

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

    def requests(self) -> Iterator[Request]:
        b = self._builder
        for index in self._order:
            yield b._request(b._acc(index), self.first_time, self.capture_point)


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


_ONCE = ("SYN", "SYN/ACK", "request", "response", "FIN-client", "FIN-M3")


def anomalies(
    steps: tuple[Step, ...],
    status: int | None,
    up_statuses: tuple[tuple[str, int], ...],
    capture_point: str,
) -> tuple[Anomaly, ...]:
    """Departures from the canonical lifecycle (docs/fields.md), for the legs this capture
    point can see."""
    found: list[Anomaly] = []
    front = [s for s in steps if s.leg == FRONT]
    back = [s for s in steps if s.leg == BACK]
    sees_front = capture_point in ("client", "M3")
    sees_back = capture_point not in ("client", "unknown")

    if sees_front:
        found += _leg_anomalies(front, "", judge_response=True)
    if sees_back:
        by_backend: dict[str, list[Step]] = {}
        for s in back:
            by_backend.setdefault(s.dst_role if s.src_role == "M3" else s.src_role, []).append(s)
        if capture_point == "M3" and not back:
            found.append(Anomaly("no-upstream"))
        for group in by_backend.values():
            found += _leg_anomalies(group, "up-", judge_response=not sees_front)
        if len(by_backend) > 1:
            found.append(Anomaly("failover", " → ".join(by_backend)))

    resets = [f"{s.src_role}→{s.dst_role}" for s in steps if s.step in ("RST", "up-RST")]
    for who in dict.fromkeys(resets):
        found.append(Anomaly("rst", who))
    retrans = sum(1 for s in steps if "retrans" in s.flags)
    if retrans:
        found.append(Anomaly("retransmission", f"{retrans} frame(s)"))
    if status is not None and status >= 500:
        found.append(Anomaly("http-5xx", str(status)))
    for backend, up_status in up_statuses:
        if up_status >= 500 and (sees_front or up_status != status):
            found.append(Anomaly("upstream-5xx", f"{up_status} ({backend})"))
    return tuple(dict.fromkeys(found))


def _leg_anomalies(steps: list[Step], p: str, judge_response: bool) -> list[Anomaly]:
    """Missing/repeated steps on one leg (p = "" front, "up-" back). `judge_response`: this
    leg's missing response means the request got no response (else it is a missing step)."""
    found: list[Anomaly] = []
    if not steps:
        return found
    counts = Counter(s.step for s in steps if "retrans" not in s.flags)
    names = set(counts)

    def missing(step: str) -> None:
        found.append(Anomaly("missing-step", step))

    syn, synack, ack = p + "SYN", p + "SYN/ACK", p + "ACK"
    request, response = p + "request", p + "response"
    reset = p + "RST" in names
    # A SYN answered by RST is a refused connection: reported as the RST, not a missing step.
    if syn in names and synack not in names and not reset:
        missing(synack)
    if synack in names and syn not in names:
        missing(syn)
    # The client may ACK the SYN/ACK with its request; only an unused handshake lacks the ACK.
    if syn in names and synack in names and ack not in names and request not in names:
        missing(ack)
    if request in names and response not in names:
        found.append(Anomaly("no-response") if judge_response else Anomaly("missing-step",
                                                                           response))
    if response in names and request not in names:
        missing(request)
    fin_a, fin_b = (p + "FIN-client", p + "FIN-M3") if not p else ("up-FIN-M3", "up-FIN-backend")
    if (fin_a in names or fin_b in names) and not reset:
        for fin in (fin_a, fin_b):
            if fin not in names:
                missing(fin)
        if fin_a in names and fin_b in names and p + "last-ACK" not in names:
            missing(p + "last-ACK")
    for name in _ONCE:
        if counts[p + name] > 1:
            found.append(Anomaly("repeated-step", f"{p + name} ×{counts[p + name]}"))
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


def _balance(policy: str, weights: dict[str, int], backends: list[str],
             sequence: Sequence[tuple[int, str]], unknown: int, capture_point: str) -> Balance:
    observed = {b: 0 for b in backends}
    for _, b in sequence:
        observed[b] = observed.get(b, 0) + 1
    n = len(sequence)
    share = {b: weights.get(b, 0) for b in backends} if policy == "weights" else dict.fromkeys(
        backends, 1)
    total_share = sum(share.values()) or 1
    expected = {b: round(n * share[b] / total_share, 2) for b in backends}

    def result(verdict: str, reason: str = "", broken: int | None = None) -> Balance:
        return Balance(policy, weights, verdict, reason, expected, observed, unknown, broken)

    if capture_point not in ("client", "M3", "unknown"):
        return result("not-judged", "backend-view")
    if n == 0:
        return result("not-judged", "no-known-backend")
    if len(backends) < 2:
        return result("not-judged", "single-backend")
    # A policy's counts may lag the ideal share by less than one request at any point.
    matches = all(abs(observed[b] - expected[b]) < 1 for b in backends)
    broken = _rotation_break(sequence, len(backends)) if policy == "round-robin" else None
    return result("matches" if matches else "differs", "", broken)


def _rotation_break(sequence: Sequence[tuple[int, str]], k: int) -> int | None:
    """Round robin repeats with period k and visits k different backends per period."""
    for i, (index, backend) in enumerate(sequence):
        if i >= k and backend != sequence[i - k][1]:
            return index
        if i < k and any(backend == sequence[j][1] for j in range(i)):
            return index
    return None


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

"""Packet records → requests, timings, anomalies, summary: the lifecycle's rules. Pure: no
I/O, no rendering.

The plugin decides every per-packet label (roles, request index, step, leg, backend and its
evidence); this module only groups, measures and judges across packets. It never re-derives a
role or an index. Frames are held by store.py until the capture is read; the balance verdict
is balance.py's; what comes out is model.py's `Report`, whose requests are rebuilt from the
store one at a time when a renderer reads them.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace

from lbreport.balance import BackendSequence, Dispatches, balance
from lbreport.model import (
    INTERIM_TIMING,
    Anomaly,
    Latency,
    Report,
    Request,
    RequestsSeen,
    Step,
    Summary,
    farm_backends,
)
from lbreport.pdml import Record
from lbreport.store import Acc, DirectAcc, Store
from lbreport.vocabulary import (
    BACK,
    BALANCER,
    CACHE,
    CLIENT,
    DIRECT,
    FRONT,
    LOST_SEGMENT,
    NO_BALANCER,
    NO_EVIDENCE,
    RESETS,
    RETRANS,
    SERVER,
    SERVER_STEPS,
    STEPS,
    TLS_STEPS,
    UNKNOWN,
    TcpSteps,
    is_backend,
    role_sort,
)

_FRONT_STEPS, _BACK_STEPS = STEPS[FRONT], STEPS[BACK]
# Capture points that see the front leg (the client's own connection to M3, or to the web
# server when there is no balancer).
_SEES_FRONT = (CLIENT, BALANCER, NO_BALANCER)
# Capture points that see no back leg at all.
_NO_BACK = (CLIENT, UNKNOWN, NO_BALANCER)
# Responses on a leg, any step set: a frame with one of these and no request is a response
# whose request tshark could not read.
_RESPONSE_STEPS = frozenset(steps.response for steps in STEPS.values())
REDIRECTS = frozenset((301, 302, 303, 307, 308))


def backend_end(src_role: str, dst_role: str) -> str:
    """The backend end of a back-leg frame (the other end is M3)."""
    return dst_role if src_role == BALANCER else src_role


class LifecycleBuilder:
    """Feed records in frame order with `add`; `finish` returns the `Report`.

    Incremental on purpose: a live mode can feed packets as they come.
    """

    def __init__(self) -> None:
        self._store = Store()
        self.roles: dict[str, list[str]] = {}
        self.frames_total = 0
        self.frames_in_requests = 0
        self.last_frame = 0
        self.first_time: float | None = None
        self.legs: set[str] = set()
        self.back_roles: set[str] = set()
        self.http_requests_seen = 0  # HTTP requests in the capture, in a request or not
        # Where each HTTP request message tshark read went (frames carrying lblab.method):
        # "front", "upstream", "direct", "outside" (in no request: health checks, another
        # farm's); and responses in no request (their request tshark could not read).
        self.messages: Counter[str] = Counter()
        self.orphan_responses = 0
        # Frame 1's word on the whole capture (two passes; None: not said): what shows a
        # balancer, and tshark's own count of HTTP requests and of retransmitted copies.
        self.balancer_evidence: tuple[str, ...] | None = None
        self.tshark_requests: tuple[int, int] | None = None
        # Balancers of another farm in the same capture, left out: (address, requests).
        self.other_balancers: list[tuple[str, int]] = []
        self.other_kinds: Counter[str] = Counter()  # frames in no request, by lblab.kind
        # TLS records on the farm's HTTPS port(s): with no request found, the error names TLS.
        self.tls_frames_seen = 0
        self._direct: dict[int, DirectAcc] = {}
        self._lost: list[tuple[int, int]] = []  # (request, frame) of each lost-segment finding

    def add(self, r: Record) -> None:
        self._capture_facts(r)
        if r.direct:
            found = self._direct.get(r.direct)
            if found is None:
                found = self._direct[r.direct] = DirectAcc(r.direct)
            found.add(r)
        if not r.req or r.leg == DIRECT:
            # A direct request's frames are never a balanced request's, whatever their index.
            self.other_kinds[r.kind or (DIRECT if r.leg == DIRECT else "other")] += 1
            return
        self.frames_in_requests += 1
        _accumulate(self._store.add_step(r), r)

    def _capture_facts(self, r: Record) -> None:
        """What the whole capture says, whichever request (if any) a frame belongs to."""
        self.frames_total += 1
        if r.method:
            self.http_requests_seen += 1
            self.messages[_place(r)] += 1
        elif r.step in _RESPONSE_STEPS and not r.req and r.leg != DIRECT:
            self.orphan_responses += 1
        if r.req and LOST_SEGMENT in r.flags:
            self._lost.append((r.req, r.frame))
        if (r.other_balancers or r.balancer_evidence is not None
                or r.http_requests_seen is not None):
            self._whole_capture(r)
        if r.kind == "tls" or r.step in TLS_STEPS:
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
                self.back_roles.add(backend_end(r.src_role, r.dst_role))

    def _whole_capture(self, r: Record) -> None:
        """Frame 1's facts of the whole capture (the plugin's second pass)."""
        for other in r.other_balancers:
            addr, _, n = other.rpartition("=")
            self.other_balancers.append((addr, int(n) if n.isdigit() else 0))
        if r.balancer_evidence is not None:
            self.balancer_evidence = tuple(e for e in r.balancer_evidence.split(",") if e)
        if r.http_requests_seen is not None:
            self.tshark_requests = (r.http_requests_seen, r.http_request_copies or 0)

    def finish(self, *, policy: str = "", weights: dict[str, int] | None = None,
               configured_backends: Iterable[str] = (), capture: str = "",
               roles_source: str = "inferred", lab_source: str = "", truncated: bool = False,
               keylog: str = "", capture_point: str = "",
               first_time: float | None = None, lab_addresses_seen: int = 0) -> Report:
        """The finished report: everything a renderer reads is set here (where the capture
        came from, how roles were chosen, whether tshark stopped early), never patched on
        afterwards. `capture_point` and `first_time`: a part of a capture (live builds one
        request alone) judged and timed as the whole capture is."""
        capture_point = capture_point or _capture_point(self.legs, self.back_roles,
                                                        self.balancer_evidence)
        first_time = (self.first_time or 0.0) if first_time is None else first_time
        order = self._store.indexes()
        tally = _Tally(self._store, order, capture_point)
        backends = farm_backends(configured_backends, self.roles,
                                 (b for b in tally.per_backend if b != UNKNOWN))
        requests = _Requests(self._store, order, first_time, capture_point,
                             _Unanswered(self._lost_by_conn(), truncated))
        return Report(
            capture_point, {role: self.roles[role] for role in role_sort(self.roles)}, backends,
            self._summary(len(order), tally, backends, policy, weights, capture_point),
            requests, capture=capture,
            roles_source=roles_source, lab_source=lab_source, truncated=truncated,
            last_frame=self.last_frame, keylog=keylog, lab_addresses_seen=lab_addresses_seen,
            direct_requests=tuple(self._direct[i].freeze() for i in sorted(self._direct)),
        )

    def _summary(self, requests: int, tally: _Tally, backends: tuple[str, ...], policy: str,
                 weights: dict[str, int] | None, capture_point: str) -> Summary:
        kinds = sorted(self.other_kinds.items(), key=lambda kv: (-kv[1], kv[0]))
        return Summary(
            requests=requests,
            frames_total=self.frames_total,
            frames_in_requests=self.frames_in_requests,
            frames_other=self.frames_total - self.frames_in_requests,
            backend_distribution={b: tally.per_backend[b] for b in role_sort(tally.per_backend)},
            status_counts=dict(sorted(tally.statuses.items())),
            balance=balance(policy, weights or {}, backends, tally.sequence, tally.dispatches,
                            tally.per_backend[UNKNOWN], capture_point),
            latency=_latency(tally.latencies),
            frames_other_by_kind=dict(kinds),
            encrypted=tally.encrypted,
            encrypted_both_legs=tally.encrypted_both,
            other_balancers=tuple(self.other_balancers),
            cache_hits=tally.cache_hits,
            balancer_evidence=self.balancer_evidence,
            requests_seen=self._requests_seen(),
        )

    def _requests_seen(self) -> RequestsSeen | None:
        """Every HTTP request tshark read, where it went (None: the plugin did not count)."""
        if self.tshark_requests is None:
            return None
        seen, copies = self.tshark_requests
        m = self.messages
        placed = m["front"] + m["upstream"] + m["direct"] + m["outside"] + copies
        other = sum(n for _, n in self.other_balancers)
        return RequestsSeen(seen, copies, m["front"], m["upstream"], m["direct"], m["outside"],
                            other, seen - placed, self.orphan_responses)

    def _lost_by_conn(self) -> dict[int, list[int]]:
        """Frames with a lost-segment finding, by each connection of the request they are in."""
        found: dict[int, list[int]] = {}
        for req, frame in self._lost:
            for conn in self._store.get(req).conns or ():
                found.setdefault(conn, []).append(frame)
        return found


def _place(r: Record) -> str:
    """Where an HTTP request message's frame is in the report."""
    if r.leg == DIRECT:
        return "direct"
    if not r.req:
        return "outside"
    return "upstream" if r.leg == BACK else "front"


def _accumulate(acc: Acc, r: Record) -> None:
    """A request's fields from one of its frames: the first value seen wins, each leg's
    apart (the client's request and status; the back leg's request and statuses)."""
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
        _accumulate_http(acc, r)
    if r.status:
        if r.leg == BACK:
            if acc.up_statuses is None:
                acc.up_statuses = []
            acc.up_statuses.append((r.src_role, r.status))
        elif not acc.status:
            acc.status = r.status
    if r.conn >= 0:
        acc.add_conn(r.conn)
    if r.interim and RETRANS not in r.flags:
        if r.leg == BACK:
            acc.up_interim = [*(acc.up_interim or ()), r.interim]
        else:
            acc.interim = [*(acc.interim or ()), r.interim]


def _accumulate_http(acc: Acc, r: Record) -> None:
    """Scheme, HTTP version and encryption, per leg."""
    if r.leg == BACK and r.encrypted and r.method:
        # A readable back-leg request flagged encrypted: the plugin's exchange that the
        # client's TLS records did not show apart (an HTTP/2 stream without the key log);
        # the front is what is encrypted, and it is https.
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


class _Tally:
    """Every request's share of the summary, in one pass over the store: no Step objects,
    no anomaly verdicts (the renderers rebuild each request in full, one at a time)."""

    def __init__(self, store: Store, order: Sequence[int], capture_point: str) -> None:
        self.statuses: Counter[str] = Counter()
        self.per_backend: Counter[str] = Counter()
        self.sequence = BackendSequence()
        self.dispatches = Dispatches()
        self.latencies: dict[str, array] = {"time_to_first_byte": array("d"),
                                            "backend_time": array("d")}
        self.encrypted = self.encrypted_both = 0
        self.cache_hits = 0
        self._no_balancer = capture_point == NO_BALANCER
        for index in order:
            acc = store.get(index)
            self._add(index, acc, store.step_times(acc), _status(acc, capture_point))

    def _add(self, index: int, acc: Acc, steps: list[tuple[str, float]], status: int) -> None:
        if acc.encrypted:
            self.encrypted += 1
            self.encrypted_both += acc.up_encrypted
        # An encrypted response is a response whose status is unreadable, not "none".
        unread = (not status and acc.encrypted
                  and any(n == _FRONT_STEPS.response for n, _ in steps))
        self.statuses[str(status) if status else "encrypted" if unread else "none"] += 1
        # The balance counts only requests that reached a backend: not a cache hit (the
        # balancer answered), nor a web server's own answer where there is no balancer.
        if acc.evidence == CACHE:
            self.cache_hits += 1
        elif not self._no_balancer:
            self.per_backend[acc.backend or UNKNOWN] += 1
            if acc.backend:
                self.sequence.append(index, acc.backend)
            self.dispatches.append(index, acc.backend, acc.client, steps)
        measured = timings(steps)
        for basis, values in self.latencies.items():
            value = measured[basis]
            if value is not None:
                values.append(value)


class _Unanswered:
    """Why a request got no response, when the capture shows it: a segment tshark saw missing
    on one of its connections after the request began (`lost` holds those frames by
    connection), else the capture file cut short."""

    def __init__(self, lost: dict[int, list[int]], truncated: bool) -> None:
        self._lost = lost
        self._truncated = truncated

    def reason(self, acc: Acc, steps: tuple[Step, ...]) -> str:
        start = steps[0].frame if steps else 0
        if any(LOST_SEGMENT in s.flags for s in steps) or any(
                frame > start for conn in acc.conns or () for frame in self._lost.get(conn, ())):
            return "lost-segment"
        return "cut-short" if self._truncated else ""


class _Requests:
    """A finished capture's requests (`Report.source`): rebuilt in full from the store, one at
    a time, each time they are read."""

    def __init__(self, store: Store, order: Sequence[int], first_time: float,
                 capture_point: str, unanswered: _Unanswered | None = None) -> None:
        self._store = store
        self._order = order
        self._first_time = first_time
        self._capture_point = capture_point
        self._unanswered = unanswered or _Unanswered({}, False)

    def __call__(self) -> Iterator[Request]:
        store = self._store
        for index in self._order:
            acc = store.get(index)
            yield _request(acc, store.steps(acc, self._first_time), self._capture_point,
                           self._unanswered)


def _request(acc: Acc, steps: tuple[Step, ...], capture_point: str,
             unanswered: _Unanswered | None = None) -> Request:
    up_statuses = tuple(acc.up_statuses or ())
    status = _status(acc, capture_point)
    sees_front = capture_point in _SEES_FRONT
    by_balancer = _answered_by_balancer(acc, steps, status, capture_point)
    found = anomalies(steps, status or None, up_statuses, capture_point,
                      answered_by_balancer=by_balancer)
    why = ""
    if unanswered is not None and any(a.code == "no-response" for a in found):
        why = unanswered.reason(acc, steps)
        found = tuple(replace(a, reason=why) if a.code == "no-response" else a for a in found)
    return Request(
        index=acc.index,
        client=acc.client,
        method=acc.method or acc.up_method,
        uri=acc.uri or acc.up_uri,
        status=status or None,
        backend=acc.backend or None,
        evidence=acc.evidence or NO_EVIDENCE,
        upstream_statuses=up_statuses,
        steps=steps,
        timings=timings([(st.step, st.time) for st in steps]),
        anomalies=found,
        client_forwarded_for=acc.client_xff,
        scheme=acc.scheme or (acc.up_scheme if not sees_front else ""),
        http_version=acc.version or (acc.up_version if not sees_front else ""),
        encrypted=acc.encrypted,
        status_source=("front" if acc.status else "back-leg") if status else "",
        answered_by_balancer=by_balancer,
        back_encrypted=acc.up_encrypted,
        interim=tuple(acc.interim or (() if sees_front else acc.up_interim or ())),
        no_response_reason=why,
        no_balancer=capture_point == NO_BALANCER,
    )


def _answered_by_balancer(acc: Acc, steps: tuple[Step, ...], status: int,
                          capture_point: str) -> bool:
    """M3 answered it itself, so no backend served it and a missing back leg is its normal
    lifecycle: a hit of its cache (evidence `cache`), or a redirect it made (port 80 →
    https://, seen at M3: no upstream request was ever sent)."""
    if acc.evidence == CACHE:
        return True
    return (capture_point == BALANCER and status in REDIRECTS and not acc.up_statuses
            and not any(st.leg == BACK for st in steps))


def _status(acc: Acc, capture_point: str) -> int:
    """The client's status; in a backend view (no front leg) the backend's own answer; at M3
    with an encrypted front leg, the backend's last answer: the balancer forwarded it (the
    request says so: status_source "back-leg")."""
    if acc.status or not acc.up_statuses:
        return acc.status
    if capture_point in _SEES_FRONT and not acc.encrypted:
        return acc.status
    return acc.up_statuses[-1][1]


# -- measures and verdicts (pure functions of a request's steps) -----------------------------


def timings(steps: Sequence[tuple[str, float]]) -> dict[str, float | None]:
    """The request's durations, from its (step name, time) pairs in frame order."""
    first = dict(reversed(steps))  # each step's first time: earlier pairs overwrite later ones
    front, back = _FRONT_STEPS, _BACK_STEPS

    def between(a: float | None, b: float | None) -> float | None:
        # Never negative: steps in another order than the measure describes (an answer
        # before the request is complete) have no such duration, not a negative one.
        return None if a is None or b is None or b < a else round(b - a, 9)

    # Backend time: from the upstream request that got the first upstream response (after a
    # failover that is the last one sent before it) to that response.
    up_response = first.get(back.response)
    up_request = None
    for step, time in steps:
        if step == back.request and (up_response is None or time <= up_response):
            up_request = time
    return {
        "handshake_rtt": between(first.get(front.syn), first.get(front.synack)),
        "request_to_upstream": between(first.get(front.request), first.get(back.request)),
        "backend_time": between(up_request, up_response),
        "time_to_first_byte": between(first.get(front.request), first.get(front.response)),
        "total": between(steps[0][1], steps[-1][1]) if steps else None,
        INTERIM_TIMING: _time_to_interim(steps, first),
    }


def _time_to_interim(steps: Sequence[tuple[str, float]], first: dict[str, float]) -> float | None:
    """From the request's first segment to its first interim answer (100 Continue comes
    after the headers, before the body that completes the request: so not from `request`).
    Before that answer, a request's only segments are the client's."""
    front = _FRONT_STEPS
    interim = first.get(front.interim)
    if interim is None:
        return None
    start = min((t for step, t in steps if step in (front.request, front.data)), default=None)
    return None if start is None or interim < start else round(interim - start, 9)


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
    sees_front = capture_point in _SEES_FRONT
    if sees_front:
        front = [s for s in steps if s.leg == FRONT]
        found += _leg_anomalies(front, _front_names(front), judge_response=True)
    if capture_point not in _NO_BACK:  # sees the back leg
        found += _back_anomalies(steps, capture_point, sees_front, answered_by_balancer)
    resets = [(s.src_role, s.dst_role) for s in steps if s.step in RESETS]
    for who in dict.fromkeys(resets):
        found.append(Anomaly("rst", path=who))
    retrans = sum(1 for s in steps if RETRANS in s.flags)
    if retrans:
        found.append(Anomaly("retransmission", count=retrans))
    if status is not None and status >= 500:
        found.append(Anomaly("http-5xx", status=status))
    for backend, up_status in up_statuses:
        if up_status >= 500 and (sees_front or up_status != status):
            found.append(Anomaly("upstream-5xx", status=up_status, backend=backend))
    return tuple(dict.fromkeys(found))


def _back_anomalies(steps: tuple[Step, ...], capture_point: str, sees_front: bool,
                    answered_by_balancer: bool) -> list[Anomaly]:
    """The back leg's: each backend's connection judged on its own, then failover (more
    than one backend) or no upstream request at all (seen at M3)."""
    found: list[Anomaly] = []
    by_backend: dict[str, list[Step]] = {}
    for s in steps:
        if s.leg == BACK:
            by_backend.setdefault(backend_end(s.src_role, s.dst_role), []).append(s)
    if capture_point == BALANCER and not by_backend and not answered_by_balancer:
        found.append(Anomaly("no-upstream"))
    for group in by_backend.values():
        found += _leg_anomalies(group, _BACK_STEPS, judge_response=not sees_front)
    if len(by_backend) > 1:
        found.append(Anomaly("failover", path=tuple(by_backend)))
    return found


def _leg_anomalies(steps: list[Step], names_of: TcpSteps, judge_response: bool) -> list[Anomaly]:
    """Missing/repeated steps on one leg, named by `names_of` (the leg's vocabulary).
    `judge_response`: this leg's missing response means the request got no response (else it
    is a missing step)."""
    found: list[Anomaly] = []
    if not steps:
        return found
    counts = Counter(s.step for s in steps if RETRANS not in s.flags)
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
    pooled = v is _BACK_STEPS
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


def _front_names(front: list[Step]) -> TcpSteps:
    """The front leg's step names: a web server's (FIN-server) where there is no balancer."""
    if any(SERVER in (s.src_role, s.dst_role) for s in front):
        return SERVER_STEPS
    return _FRONT_STEPS


def _capture_point(legs: set[str], back_roles: set[str],
                   balancer_evidence: tuple[str, ...] | None = None) -> str:
    # The plugin found nothing that shows a balancer (frame 1 says so only when it looked).
    if balancer_evidence == ():
        return NO_BALANCER
    if FRONT in legs and BACK in legs:
        return BALANCER
    if FRONT in legs:
        return CLIENT
    if BACK in legs:
        backends = role_sort(r for r in back_roles if is_backend(r))
        return backends[0] if len(backends) == 1 else "backend"
    return UNKNOWN


def _latency(latencies: dict[str, array]) -> Latency:
    for basis in ("time_to_first_byte", "backend_time"):
        values = sorted(latencies[basis])
        if values:
            def rank(p: float, v: list[float] = values) -> float:
                # Nearest-rank percentile: an observed value, never an interpolation.
                return v[max(0, -(-len(v) * p // 100) - 1)]
            return Latency(basis, len(values), rank(50), rank(90), rank(99), values[-1])
    return Latency("", 0, None, None, None, None)

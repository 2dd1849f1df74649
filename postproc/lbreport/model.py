"""The model every renderer reads: a finished capture's requests, their steps and anomalies,
the summary and the balance verdict. Frozen data and a few answers derived from it; no
storage, no rules (lifecycle.py builds it, store.py holds the frames until then).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from lbreport.vocabulary import is_backend, role_sort

TIMING_KEYS = (
    "handshake_rtt",
    "request_to_upstream",
    "backend_time",
    "time_to_first_byte",
    "total",
)
# Only a request with an interim (1xx) answer has this one; it is shown after the time to
# first byte (which is always to the final response).
INTERIM_TIMING = "time_to_interim"
# The lane of a frame's end that has no role.
UNNAMED_LANE = "?"


def lane(role: str) -> str:
    return role or UNNAMED_LANE


@dataclass(slots=True, unsafe_hash=True)
class Step:
    """Read-only by convention; not `frozen` because a frozen dataclass's __init__ costs ~5x
    more and the renderers build one Step per frame. Hashable and comparable."""

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
    failover: path (backends in order); no-response: reason (why, when the capture shows it:
    Request.no_response_reason's values); no-upstream: none."""

    code: str
    steps: tuple[str, ...] = ()
    count: int = 0
    status: int | None = None
    backend: str = ""
    path: tuple[str, ...] = ()
    reason: str = ""


# Anomaly codes that mean a request's lifecycle did not run its course.
INCOMPLETE = frozenset({"no-response", "missing-step", "no-upstream", "rst"})


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
    # scheme "http"/"https" and http_version "1.0"/"1.1"/"2" of the client's request ("" when
    # unseen or unreadable); encrypted: the front leg's exchange was seen only as TLS records
    # (no key log); status_source: where `status` was read: "front" (the client's response),
    # "back-leg" (the backend's answer: an encrypted front leg at M3, or a backend's view), ""
    # without a status; answered_by_balancer: M3 answered a redirect itself (3xx, no upstream
    # request at all), so no backend served it.
    scheme: str = ""
    http_version: str = ""
    encrypted: bool = False
    status_source: str = ""
    answered_by_balancer: bool = False
    back_encrypted: bool = False  # the back leg is TLS too and unreadable (re-encryption)
    # Interim answers (100 Continue, 102, 103) the client got before the final response, by
    # status (a backend view: the backend's); never the request's status.
    interim: tuple[int, ...] = ()
    # Why no response is in the capture, when the capture shows it: "lost-segment" (tshark
    # saw a segment missing on its connection after the request), "cut-short" (the capture
    # file ends in the middle of a packet); "" when answered or not known.
    no_response_reason: str = ""
    # The capture shows no balancer at all: the web server answered itself, so "backend"
    # does not apply (not "unknown").
    no_balancer: bool = False

    @property
    def timing_keys(self) -> tuple[str, ...]:
        """The timings to show for this request, in order (time to interim only if it had
        an interim answer)."""
        if not self.interim:
            return TIMING_KEYS
        i = TIMING_KEYS.index("time_to_first_byte")
        return (*TIMING_KEYS[:i], INTERIM_TIMING, *TIMING_KEYS[i:])

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
        """The lanes of its own ladder: the roles its steps touch, in role order."""
        return role_sort({lane(s.src_role) for s in self.steps}
                         | {lane(s.dst_role) for s in self.steps})


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
    # for not-judged: "backend-view" | "no-balancer" (the capture shows none) |
    # "no-known-backend" | "single-backend" | "one-request"
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
    # Requests the balancer answered from its cache (evidence "cache"): no backend, so neither
    # in backend_distribution nor in the balance verdict.
    cache_hits: int = 0
    # What shows a balancer (vocabulary.BALANCER_EVIDENCE names, strongest first); () with
    # capture point "no-balancer"; None when the plugin did not say (one pass, older plugin).
    balancer_evidence: tuple[str, ...] | None = None
    requests_seen: RequestsSeen | None = None  # None: the plugin did not count them


@dataclass(frozen=True, slots=True)
class RequestsSeen:
    """Every HTTP request tshark read, accounted for as frames are: `seen` (the plugin's
    count, HTTP/1 and HTTP/2, retransmitted copies included) = `front` (the clients' requests
    in the report) + `upstream` (M3's to the backends, in the report) + `direct` + `outside`
    (in no request: health checks, another farm's traffic) + `copies` + `missing` (read by
    tshark, in no part of the report). `other_balancers`: of `outside`, the requests the
    other balancers received; `orphan_responses`: responses tshark read whose request it could
    not (HTTP/2 request headers it could not decode)."""

    seen: int
    copies: int
    front: int
    upstream: int
    direct: int
    outside: int
    other_balancers: int
    missing: int
    orphan_responses: int = 0


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


def farm_backends(configured: Iterable[str], roles: Iterable[str],
                  served: Iterable[str]) -> tuple[str, ...]:
    """The farm's backends, in role order: the lab file's if it names any, else every role
    the plugin named as a backend (known even when idle); and any other that served a
    request."""
    known = list(configured) or [r for r in roles if is_backend(r)]
    return tuple(role_sort(dict.fromkeys([*known, *served])))


# Yields the capture's requests in index order, each time it is called (renderers read them
# more than once; a big capture's are rebuilt one at a time, never all held).
RequestSource = Callable[[], Iterable[Request]]


@dataclass(frozen=True, slots=True)
class Report:
    """What every renderer reads: finished by `LifecycleBuilder.finish` and never changed
    afterwards. Its requests come from `source`, one at a time, when they are read."""

    capture_point: str  # "client" | "M3" | a backend role ("M2") | "unknown"
    roles: dict[str, list[str]]
    backends: tuple[str, ...]  # the farm's (`farm_backends`)
    summary: Summary
    source: RequestSource
    capture: str = ""
    roles_source: str = "inferred"  # "configured" | "inferred"
    lab_source: str = ""
    # Roles inferred although some of the lab's addresses are in the capture (the lab does
    # not describe it, e.g. no balancer of it is there): how many, so that the header does
    # not say none matched.
    lab_addresses_seen: int = 0
    truncated: bool = False
    last_frame: int = 0
    direct_requests: tuple[DirectRequest, ...] = ()  # not through M3: listed apart
    keylog: str = ""  # the TLS key log tshark was given, if any

    def requests(self) -> Iterator[Request]:
        return iter(self.source())

    def lanes(self, request: Request) -> list[str]:
        """A ladder's lanes for `request` in a page of every request (HTML): the capture's
        roles (client, M3, M1, M2…) plus any other role it touches (broadcast for ARP), in
        role order, so that diagrams compare at a glance. The text ladder draws the request's
        own lanes (`Request.lanes`): narrower, for a terminal."""
        return role_sort(set(self.roles) | set(request.lanes))

"""The balance verdict: could the observed sequence of backends come from the declared
policy (round robin, weights, ip-hash, least-conn), or, with none declared, from which?

The builder feeds each request's backend, client and dispatch times in request order
(`BackendSequence`, `Dispatches`); `balance` judges them once the capture is read.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Iterator, Sequence
from itertools import permutations

from lbreport.model import Balance, PolicyCheck
from lbreport.vocabulary import (
    BACK,
    BALANCER,
    CLIENT,
    FRONT,
    NO_BALANCER,
    RESPONSES,
    STEPS,
    UNKNOWN,
)

_FRONT_STEPS, _BACK_STEPS = STEPS[FRONT], STEPS[BACK]


class BackendSequence:
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


class Dispatches:
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
            if step in RESPONSES:
                last_out = time
        front, back = _FRONT_STEPS, _BACK_STEPS
        start = first.get(back.syn, first.get(back.request))
        if start is None or first.get(back.request, start) < start:
            front_start = first.get(front.request, first.get(front.syn, math.nan))
            start = first.get(back.request, front_start)
        end_lo = first.get(back.response, first.get(front.response, math.inf))
        end_hi = last_out + _RELEASE if last_out > -math.inf else math.inf
        self.index.append(index)
        self.backend.append(self.backends.setdefault(backend, len(self.backends))
                            if backend else -1)
        self.client.append(self.clients.setdefault(_address(client), len(self.clients)))
        self.start.append(start)
        self.end_lo.append(end_lo)
        self.end_hi.append(max(end_hi, end_lo))


_RELEASE = 0.001  # seconds a balancer may take to release a backend after the response
_MAX_ROTATION_BACKENDS = 6  # beyond: (k-1)! rotations to try; unknown requests then skipped


def _address(client: str) -> str:
    """ "ip:port" / "[v6]:port" → the address (ip-hash hashes the address, not the port)."""
    if client.startswith("["):
        return client[1:].partition("]")[0]
    return client.rpartition(":")[0] if client.count(":") == 1 else client


def balance(policy: str, weights: dict[str, int], backends: Sequence[str],
            sequence: Sequence[tuple[int, str]], dispatches: Dispatches, unknown: int,
            capture_point: str) -> Balance:
    """The verdict on `sequence` ((request, backend) in request order, known backends only)
    among the farm's `backends`; `unknown`: requests whose backend is unknown."""
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

    if capture_point == NO_BALANCER:  # a web server answers its own requests
        return result("not-judged", "no-balancer")
    if capture_point not in (CLIENT, BALANCER, UNKNOWN):
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


def _named(check: PolicyCheck, d: Dispatches) -> PolicyCheck:
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


def _check_weights(backends: Sequence[str], observed: dict[str, int], share: dict[str, int],
                   total_share: int, n: int, unknown: int) -> PolicyCheck:
    """Weighted round robin keeps each backend's count within one request of its share. The
    unknown requests went somewhere: each backend may have up to `unknown` more."""
    total = n + unknown
    for b in backends:
        ideal = total * share[b] / total_share
        if not ideal - 1 - unknown < observed[b] < ideal + 1:
            return PolicyCheck("weights", "inconsistent", "counts")
    return PolicyCheck("weights", "consistent")


def _check_round_robin(d: Dispatches, ids: list[int]) -> PolicyCheck:
    """Round robin visits the k backends in a fixed cyclic order. A request with an unknown
    backend took one turn (a 304 a backend served) or none (answered by M3 itself): both are
    allowed. Every cyclic order is tried; the rotation breaks at the request where the one
    that went furthest fails. Turns follow the dispatch order (concurrent clients' requests
    may reach M3 in one order and get their backend in another)."""
    k = len(ids)
    # Positions in dispatch order; a request never dispatched keeps its place by index.
    # Two stable sorts (by index, then by start) instead of a key tuple per request.
    order = sorted(range(len(d.index)), key=d.index.__getitem__)
    order.sort(key=lambda j: math.inf if math.isnan(d.start[j]) else d.start[j])
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


def _check_ip_hash(d: Dispatches) -> PolicyCheck:
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


def _check_least_conn(d: Dispatches, ids: list[int]) -> PolicyCheck:
    """least-conn sends each request to a backend with the fewest requests in flight. The
    balancer's own counter is not in the capture, so it is bounded from the times: at a
    request's dispatch, a backend certainly had the earlier requests dispatched to it whose
    response had not arrived, and at most those not yet released (plus, for any backend, the
    requests whose backend is unknown). Contradicted only when the chosen backend certainly
    had more than another could have had; decided only when something was in flight."""
    # Indexes by start (ties by index: the sort is stable), not (start, index) tuples: on a
    # big capture this list is the end of the report's largest transient memory.
    order = sorted((i for i, s in enumerate(d.start) if not math.isnan(s)),
                   key=d.start.__getitem__)
    active: list[int] = []  # earlier requests not yet released
    decisions = 0
    for i in order:
        start = d.start[i]
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

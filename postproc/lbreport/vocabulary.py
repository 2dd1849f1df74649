"""The one vocabulary of roles, legs, steps, evidence levels and frame kinds on the Python side.

The plugin publishes its own (`tshark -G values`: the value strings of its `lblab.vocab.*`
fields); tests/test_vocabulary.py fails when the two disagree. A new step or leg is added here,
in plugins/lblab.lua's step tables, and in the message catalogues (`step.<name>`). No other
module of lbreport spells a role, leg or step name: they import it from here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# -- roles ---------------------------------------------------------------------------------
# The balancer is M3 (its name in the course); every backend is M<n> with n != 3, numbered by
# the "Soy la máquina N" page it serves, else in address order. `broadcast`: the destination
# of an ARP/ND broadcast or multicast; `server`: a web server in a capture that shows no
# balancer at all. The plugin publishes these as `lblab.vocab.roles`.
CLIENT, BALANCER, BROADCAST, SERVER = "client", "M3", "broadcast", "server"
ROLES = (CLIENT, BALANCER, BROADCAST, SERVER)  # every role but the backends
BACKEND_PREFIX = "M"
# Not a role: a request whose backend is unknown, and a capture whose point is unknown.
UNKNOWN = "unknown"


def backend_role(n: int) -> str:
    """Backend number `n`'s role (the page it serves says "Soy la máquina n")."""
    return f"{BACKEND_PREFIX}{n}"


def is_backend(role: str) -> bool:
    """M1, M2, M4…: a backend's name (M3 is the balancer's)."""
    return role[:1] == BACKEND_PREFIX and role[1:].isdigit() and role != BALANCER


def role_key(role: str) -> tuple[int, int, str]:
    """The order roles are listed in: client, M3, then M1, M2, … numerically; anything else
    (broadcast, an unnamed end) last, by name."""
    if role == CLIENT:
        return (0, 0, role)
    if role == BALANCER:
        return (1, 0, role)
    if is_backend(role):
        return (2, int(role[1:]), role)
    return (3, 0, role)


def role_sort(roles: Iterable[str]) -> list[str]:
    return sorted(roles, key=role_key)


# -- legs and steps --------------------------------------------------------------------------

FRONT, BACK, DIRECT, ARP = "front", "back", "direct", "arp"
LEGS = (FRONT, BACK, DIRECT, ARP)


@dataclass(frozen=True, slots=True)
class TcpSteps:
    """A TCP leg's step names, by what each step is. `a` opened the connection (the client,
    or M3 on the back leg), `b` answered it."""

    syn: str
    synack: str
    ack: str
    request: str
    data: str
    response: str
    ack_resp: str
    fin_a: str
    fin_b: str
    last_ack: str
    rst: str
    ack_req: str
    ack_fin: str
    tls_client_hello: str
    tls_server_hello: str
    tls_finished: str  # the rest of the handshake (key exchange, ChangeCipherSpec, Finished)
    tls_close: str  # a TLS alert (close_notify)
    # A 1xx answer other than 101 (100 Continue, 102, 103): the request is still waiting for
    # its final response, so an interim answer is never the response (nor its time).
    interim: str

    def names(self) -> tuple[str, ...]:
        return tuple(getattr(self, f) for f in self.__slots__)  # type: ignore[attr-defined]

    @property
    def once(self) -> tuple[str, ...]:
        """Steps a request's connection has at most once on this leg (more is an anomaly)."""
        return (self.syn, self.synack, self.request, self.response, self.fin_a, self.fin_b)


def _tcp(prefix: str, fin_a: str, fin_b: str) -> TcpSteps:
    names = ("SYN", "SYN/ACK", "ACK", "request", "data", "response", "ACK-resp")
    tail = ("last-ACK", "RST", "ACK-req", "ACK-FIN", "TLS-ClientHello", "TLS-ServerHello",
            "TLS-Finished", "TLS-close", "interim")
    return TcpSteps(*(prefix + n for n in names), prefix + fin_a, prefix + fin_b,
                    *(prefix + n for n in tail))


STEPS: dict[str, TcpSteps] = {
    FRONT: _tcp("", "FIN-client", "FIN-M3"),
    BACK: _tcp("up-", "FIN-M3", "FIN-backend"),
    DIRECT: _tcp("", "FIN-client", "FIN-backend"),
}
# Not a leg: the front leg's names in a capture with no balancer, where the client talks to a
# web server (role `server`) that closes with FIN-server, not FIN-M3. The plugin publishes it
# as lblab.vocab.server; a request whose front steps are a server's is judged with these.
SERVER_STEPS = _tcp("", "FIN-client", "FIN-server")
# Every step set the plugin publishes (lblab.vocab.<name>), by that name.
STEP_SETS: dict[str, TcpSteps] = {**STEPS, SERVER: SERVER_STEPS}
ARP_STEPS = ("ARP-who-has", "ARP-reply", "ND-solicit", "ND-advert")
RESETS = frozenset(steps.rst for steps in STEPS.values())
RESPONSES = frozenset(s for steps in STEPS.values() for s in (steps.response, steps.data))
TLS_STEPS = frozenset(s for steps in STEPS.values() for s in (
    steps.tls_client_hello, steps.tls_server_hello, steps.tls_finished, steps.tls_close))

# How a request's backend is known, strongest first; `cache`: no backend at all, the
# balancer answered from its cache (the response's own headers, or no back leg at M3).
CACHE, NO_EVIDENCE = "cache", "none"
EVIDENCE = ("back-leg", CACHE, "marker", "arp", NO_EVIDENCE)

# What shows a balancer in a capture, strongest first (frame 1's lblab.balancer_evidence;
# none: there is no balancer). `x-forwarded-for` is weak: a client can write that header.
BALANCER_EVIDENCE = ("lab-file", "back-leg", "arp-for-third-hosts", "marker", "x-forwarded-for")
WEAK_BALANCER_EVIDENCE = "x-forwarded-for"
# The capture point of a capture that shows no balancer (a client and plain web servers).
NO_BALANCER = "no-balancer"

# TCP findings (lblab.flags) the report reads: a retransmitted copy, and a segment before
# this one that the capture never got.
RETRANS, LOST_SEGMENT = "retrans", "lost-segment"

# What frames outside any request are (lblab.kind); the plugin may add kinds: treat as open.
KINDS = ("ssh", "dns", "icmp", "arp", "nd", "neighbour-refresh", "direct", "http", "tls", "ntp",
         "mdns", "dhcp", "tcp", "udp", "other")


# lblab.pkt, the plugin's compact labels: the label fields (`lblab.<name>`) it holds, in this
# order, `;`-separated. New ones only ever go at the end: an older plugin's shorter string still
# parses (a missing part is an absent label).
PKT_ORDER = ("req", "step", "src_role", "dst_role", "leg", "backend", "backend_evidence",
             "flags", "arp_target", "kind", "direct")


def all_step_names() -> set[str]:
    return {n for steps in STEP_SETS.values() for n in steps.names()} | set(ARP_STEPS)


def leg_steps(leg: str) -> tuple[str, ...]:
    return ARP_STEPS if leg == ARP else STEPS[leg].names()

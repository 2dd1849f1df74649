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

    def names(self) -> tuple[str, ...]:
        return tuple(getattr(self, f) for f in self.__slots__)  # type: ignore[attr-defined]

    @property
    def once(self) -> tuple[str, ...]:
        """Steps a request's connection has at most once on this leg (more is an anomaly)."""
        return (self.syn, self.synack, self.request, self.response, self.fin_a, self.fin_b)


def _tcp(prefix: str, fin_a: str, fin_b: str) -> TcpSteps:
    names = ("SYN", "SYN/ACK", "ACK", "request", "data", "response", "ACK-resp")
    tail = ("last-ACK", "RST", "ACK-req", "ACK-FIN", "TLS-ClientHello", "TLS-ServerHello",
            "TLS-Finished", "TLS-close")
    return TcpSteps(*(prefix + n for n in names), prefix + fin_a, prefix + fin_b,
                    *(prefix + n for n in tail))


STEPS: dict[str, TcpSteps] = {
    FRONT: _tcp("", "FIN-client", "FIN-M3"),
    BACK: _tcp("up-", "FIN-M3", "FIN-backend"),
    DIRECT: _tcp("", "FIN-client", "FIN-backend"),
}
ARP_STEPS = ("ARP-who-has", "ARP-reply", "ND-solicit", "ND-advert")
RESETS = frozenset(steps.rst for steps in STEPS.values())
RESPONSES = frozenset(s for steps in STEPS.values() for s in (steps.response, steps.data))
TLS_STEPS = frozenset(s for steps in STEPS.values() for s in (
    steps.tls_client_hello, steps.tls_server_hello, steps.tls_finished, steps.tls_close))

EVIDENCE = ("back-leg", "marker", "arp", "none")
NO_EVIDENCE = EVIDENCE[-1]

# What frames outside any request are (lblab.kind); the plugin may add kinds: treat as open.
KINDS = ("ssh", "dns", "icmp", "arp", "nd", "neighbour-refresh", "direct", "http", "tls", "ntp",
         "mdns", "dhcp", "tcp", "udp", "other")


# lblab.pkt, the plugin's compact labels: the label fields (`lblab.<name>`) it holds, in this
# order, `;`-separated. New ones only ever go at the end: an older plugin's shorter string still
# parses (a missing part is an absent label).
PKT_ORDER = ("req", "step", "src_role", "dst_role", "leg", "backend", "backend_evidence",
             "flags", "arp_target", "kind", "direct")


def all_step_names() -> set[str]:
    return {n for steps in STEPS.values() for n in steps.names()} | set(ARP_STEPS)


def leg_steps(leg: str) -> tuple[str, ...]:
    return ARP_STEPS if leg == ARP else STEPS[leg].names()

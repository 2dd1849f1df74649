"""The one vocabulary of legs, steps, evidence levels and frame kinds on the Python side.

The plugin publishes its own (`tshark -G values`: the value strings of its `lblab.vocab.*`
fields); tests/test_vocabulary.py fails when the two disagree. A new step or leg is added here,
in plugins/lblab.lua's step tables, and in the message catalogues (`step.<name>`).
"""

from __future__ import annotations

from dataclasses import dataclass

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

EVIDENCE = ("back-leg", "marker", "arp", "none")

# What frames outside any request are (lblab.kind); the plugin may add kinds: treat as open.
KINDS = ("ssh", "dns", "icmp", "arp", "nd", "neighbour-refresh", "direct", "http", "tls", "ntp",
         "mdns", "dhcp", "tcp", "udp", "other")


def all_step_names() -> set[str]:
    return {n for steps in STEPS.values() for n in steps.names()} | set(ARP_STEPS)


def leg_steps(leg: str) -> tuple[str, ...]:
    return ARP_STEPS if leg == ARP else STEPS[leg].names()

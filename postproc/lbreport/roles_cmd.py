"""`lbreport roles`: the roles the plugin infers from a capture, as a lab file."""

from __future__ import annotations

from pathlib import Path

from lbreport import tshark
from lbreport.config import to_toml
from lbreport.errors import LbreportError
from lbreport.messages import t
from lbreport.vocabulary import BALANCER, CLIENT, FRONT, STEPS, is_backend, role_sort

# Frame 1 (two passes) also says what shows a balancer and which ports HTTP went to; the
# request count tells a frame 1 that says so (with an empty evidence: no balancer) from a
# frame that says nothing (an older plugin), as -T fields prints both as "".
_FIELDS = ["lblab.role_def", "lblab.step", "lblab.leg", "tcp.dstport", "lblab.balancer_evidence",
           "lblab.http_ports", "lblab.http_requests_seen"]


class _Seen:
    """What the labelled frames say: roles, the front requests' ports, frame 1's facts."""

    def __init__(self) -> None:
        self.roles: dict[str, list[str]] = {}
        self.ports: list[int] = []
        self.http_ports: list[int] | None = None  # frame 1's lblab.http_ports
        self.no_balancer = False

    def add(self, line: str) -> None:
        defs, step, leg, dstport, evidence, http_ports, seen = (line.split("\t") + [""] * 7)[:7]
        for definition in filter(None, defs.split("|")):
            role, _, addr = definition.partition("=")
            if addr and addr not in self.roles.setdefault(role, []):
                self.roles[role].append(addr)
        if step == STEPS[FRONT].request and leg == FRONT and dstport.isdigit():
            port = int(dstport)
            if port not in self.ports:
                self.ports.append(port)
        if seen.isdigit() and self.http_ports is None:
            self.no_balancer = not evidence
            self.http_ports = [int(p) for p in http_ports.split(",") if p.isdigit()]


def inferred_lab_file(capture: Path) -> str:
    tshark.check_capture(capture)
    runner = tshark.preflight(None).runner
    # No preferences: the plugin infers every role from the traffic.
    reads = runner.capture_path(capture)
    argv = tshark.fields_command(runner, reads, [], _FIELDS)
    run = tshark.TsharkRun(argv, capture, runner.env(), reads=reads)
    seen = _Seen()
    try:
        for raw in run.stdout:
            seen.add(raw.decode("utf-8", "replace").rstrip("\n"))
        run.finish()
    finally:
        run.close()
    roles = seen.roles
    if seen.no_balancer:  # a lab file with no balancer would be no use to anyone
        raise LbreportError(t("roles.no_balancer", path=capture))
    if BALANCER not in roles:
        raise LbreportError(t("roles.none", path=capture))
    backends = {r: roles[r] for r in role_sort(roles) if is_backend(r)}
    # The ports every HTTP request went to (frame 1), else those of the front requests seen.
    ports = sorted(seen.http_ports or seen.ports) or [80]
    return to_toml(
        clients=roles.get(CLIENT, []),
        balancer=roles[BALANCER],
        ports=ports,
        backends=backends,
        header=t("roles.header", capture=capture),
        markers_hint=t("roles.markers_hint"),
    )

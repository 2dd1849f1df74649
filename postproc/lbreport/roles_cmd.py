"""`lbreport roles`: the roles the plugin infers from a capture, as a lab file."""

from __future__ import annotations

from pathlib import Path

from lbreport import tshark
from lbreport.config import to_toml
from lbreport.errors import LbreportError
from lbreport.messages import t
from lbreport.vocabulary import BALANCER, CLIENT, FRONT, STEPS, is_backend, role_sort

_FIELDS = ["lblab.role_def", "lblab.step", "lblab.leg", "tcp.dstport"]


def inferred_lab_file(capture: Path) -> str:
    tshark.check_capture(capture)
    runner = tshark.preflight(None).runner
    # No preferences: the plugin infers every role from the traffic.
    reads = runner.capture_path(capture)
    argv = tshark.fields_command(runner, reads, [], _FIELDS)
    run = tshark.TsharkRun(argv, capture, runner.env(), reads=reads)
    roles: dict[str, list[str]] = {}
    ports: list[int] = []
    try:
        for raw in run.stdout:
            defs, step, leg, dstport = (raw.decode("utf-8", "replace").rstrip("\n").split("\t")
                                        + ["", "", "", ""])[:4]
            for definition in filter(None, defs.split("|")):
                role, _, addr = definition.partition("=")
                if addr and addr not in roles.setdefault(role, []):
                    roles[role].append(addr)
            if step == STEPS[FRONT].request and leg == FRONT and dstport.isdigit():
                port = int(dstport)
                if port not in ports:
                    ports.append(port)
        run.finish()
    finally:
        run.close()
    if BALANCER not in roles:
        raise LbreportError(t("roles.none", path=capture))
    backends = {r: roles[r] for r in role_sort(roles) if is_backend(r)}
    return to_toml(
        clients=roles.get(CLIENT, []),
        balancer=roles[BALANCER],
        ports=sorted(ports) or [80],
        backends=backends,
        header=t("roles.header", capture=capture),
        markers_hint=t("roles.markers_hint"),
    )

"""Run the real tshark with the real plugin and read its labels as rows.

Shared by the plugin tests: one tshark run per (capture, preferences), cached.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PLUGIN = REPO / "plugins" / "lblab.lua"
CAPTURES = REPO / "captures"

FIELDS = [
    "frame.number",
    "frame.time_epoch",
    "lblab.src_role",
    "lblab.dst_role",
    "lblab.req",
    "lblab.step",
    "lblab.leg",
    "lblab.backend",
    "lblab.backend_evidence",
    "lblab.client",
    "lblab.method",
    "lblab.uri",
    "lblab.status",
    "tcp.stream",
    "lblab.flags",
    "lblab.arp_target",
    "lblab.role_def",
    "_ws.lua.error",
    "lblab.kind",
    "lblab.direct",
]


@dataclass(frozen=True)
class Row:
    frame: int
    time: float
    src_role: str
    dst_role: str
    req: int | None
    step: str
    leg: str
    backend: str
    evidence: str
    client: str
    method: str
    uri: str
    status: int | None
    conn: int | None
    flags: str
    arp_target: str
    role_def: tuple[str, ...]
    lua_error: str
    kind: str = ""
    direct: int | None = None


@dataclass(frozen=True)
class Labelled:
    rows: tuple[Row, ...]
    stderr: str


def truth_files() -> list[Path]:
    return sorted(CAPTURES.glob("*.truth.json"))


def load_truth(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def prefs_from_truth(truth: dict) -> tuple[str, ...]:
    """The lab's configuration as `-o lblab.*` preferences, from a truth file."""
    roles = truth["roles"]
    backends = ",".join(
        f"{role}={addr}"
        for role, addrs in sorted(roles.items())
        if role not in ("client", "M3")
        for addr in addrs
    )
    markers = ";".join(f"{role}={text}" for role, text in sorted(truth.get("markers", {}).items()))
    prefs = [
        f"lblab.balancer:{','.join(roles['M3'])}",
        f"lblab.backends:{backends}",
        f"lblab.clients:{','.join(roles.get('client', []))}",
        f"lblab.ports:{truth.get('http_port', 80)}",
    ]
    if markers:
        prefs.append(f"lblab.markers:{markers}")
    return tuple(prefs)


def _int(text: str) -> int | None:
    return int(text.split(",")[0]) if text else None


def keylog_of(capture: Path) -> Path | None:
    """The TLS key log committed beside an HTTPS capture (`<name>.keys`), if any."""
    keys = capture.with_suffix(".keys")
    return keys if keys.is_file() else None


@functools.lru_cache(maxsize=64)
def label(capture: Path, prefs: tuple[str, ...] = (), two_pass: bool = True,
          keys: bool = True) -> Labelled:
    """Label a capture with the plugin: every frame, one Row each. An HTTPS capture is read
    with its key log (the truth is the decrypted traffic) unless `keys` is False."""
    cmd = ["tshark", "-n", "-r", str(capture), "-X", f"lua_script:{PLUGIN}"]
    if two_pass:
        cmd += ["-2", "-Y", "frame"]
    keylog = keylog_of(capture) if keys else None
    if keylog is not None:
        cmd += ["-o", f"tls.keylog_file:{keylog}"]
    for pref in prefs:
        cmd += ["-o", pref]
    cmd += ["-T", "fields", "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=|"]
    for field in FIELDS:
        cmd += ["-e", field]
    env = dict(os.environ, HOME="/nonexistent-lblab-home")  # no personal plugins or prefs
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    rows = []
    for line in proc.stdout.splitlines():
        cols = line.split("\t")
        cols += [""] * (len(FIELDS) - len(cols))
        rows.append(
            Row(
                frame=int(cols[0]),
                time=float(cols[1]),
                src_role=cols[2],
                dst_role=cols[3],
                req=_int(cols[4]),
                step=cols[5],
                leg=cols[6],
                backend=cols[7],
                evidence=cols[8],
                client=cols[9],
                method=cols[10],
                uri=cols[11],
                status=_int(cols[12]),
                conn=_int(cols[13]),
                flags=cols[14],
                arp_target=cols[15],
                role_def=tuple(d for d in cols[16].split("|") if d),
                lua_error=cols[17],
                kind=cols[18],
                direct=_int(cols[19]),
            )
        )
    return Labelled(rows=tuple(rows), stderr=proc.stderr)

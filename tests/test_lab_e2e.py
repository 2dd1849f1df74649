"""The lab itself: a fresh farm (nginx balancer, Apache backends) recorded at the client and
at M3 agrees with its own balancer log, and the farm leaves nothing behind.

Needs root (network namespaces) and the servers; skipped with the reason otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_captures import check_capture

LAB = Path(__file__).resolve().parent.parent / "captures" / "lab"
sys.path.insert(0, str(LAB))

from farm import Farm, FarmSpec  # noqa: E402
from regenerate import Scenario, record, sequential  # noqa: E402

NEEDED = ("ip", "nginx", "apache2", "dumpcap", "tshark", "curl", "ping")


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "the lab needs root (network namespaces)"
    missing = [b for b in NEEDED if not shutil.which(b) and not Path("/usr/sbin", b).exists()]
    return f"missing {', '.join(missing)} (run scripts/setup.sh)" if missing else None


pytestmark = [pytest.mark.lab,
              pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")]


def our_namespaces(prefix: str) -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(prefix)]


def test_fresh_classic_farm_agrees_with_its_log(tmp_path: Path) -> None:
    scenario = Scenario("e2e", FarmSpec(), {"e2e-client": "client1", "e2e-m3": "m3"},
                        sequential(4, pause=0.1), flush=True, settle=0.5)
    written = record(scenario, tmp_path, tmp_path / "work")
    assert [p.name for p in written] == ["e2e-client.pcapng", "e2e-m3.pcapng"]
    for pcap in written:
        truth = json.loads(pcap.with_name(pcap.stem + ".truth.json").read_text())
        assert len(truth["requests"]) == 4
        assert [r["backend"] for r in truth["requests"]] == ["M1", "M2", "M1", "M2"]
        check_capture(truth, pcap)
    assert not our_namespaces(f"lbl{os.getpid()}")


def test_farm_cleans_up_when_a_step_fails(tmp_path: Path) -> None:
    prefix = f"lbl{os.getpid()}x"
    with pytest.raises(RuntimeError, match="boom"), Farm(FarmSpec(), tmp_path, prefix) as farm:
        assert len(our_namespaces(prefix)) == 5  # switch, client, M3, M1, M2
        pids = [p.popen.pid for p in farm._procs.values()]
        raise RuntimeError("boom")
    assert not our_namespaces(prefix)
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or _is_zombie(pid), f"pid {pid} still runs"


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True

"""Two farms in one capture (two captures merged): one is reported, the other's balancer is
named with how many requests it had, never filed silently as "other" (issue 12)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from craft import CAPTURES

LBREPORT = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "lbreport"


@pytest.fixture(scope="module")
def merged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("farms") / "two-farms.pcapng"
    subprocess.run(["mergecap", "-w", str(out), str(CAPTURES / "classic-m3.pcapng"),
                    str(CAPTURES / "three-backends.pcapng")], check=True)
    return out


def _report(capture: Path, *args: str) -> tuple[dict, str]:
    run = subprocess.run([str(LBREPORT), "report", str(capture), "--format", "json", *args],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout), run.stderr


def test_the_left_out_balancer_is_named_with_its_requests(merged: Path) -> None:
    rep, err = _report(merged)  # the classic lab: its balancer is reported
    assert rep["summary"]["requests"] == 3
    assert rep["summary"]["other_balancers"] == [{"address": "10.20.0.1", "requests": 6}]
    assert "10.20.0.1 (6 request(s)), left out" in err


def test_the_other_farm_is_reported_when_named(merged: Path, tmp_path: Path) -> None:
    lab = tmp_path / "lab.toml"
    lab.write_text('[farm]\nbalancer = ["10.20.0.1"]\n')
    rep, _ = _report(merged, "--lab", str(lab))
    assert rep["summary"]["requests"] == 6
    assert rep["summary"]["other_balancers"] == [{"address": "192.168.56.103", "requests": 3}]


@pytest.mark.parametrize("name", ["classic-m3", "three-backends", "two-nics-m3", "backend-m2"])
def test_one_farm_names_no_other_balancer(name: str) -> None:
    rep, err = _report(CAPTURES / f"{name}.pcapng")
    assert rep["summary"]["other_balancers"] == []
    assert "left out" not in err

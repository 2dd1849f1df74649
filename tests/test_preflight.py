"""The preflight: what it asks tshark, what it keeps between runs, and when it asks again.
Real tshark throughout; a `tshark` shim first on PATH logs every command line lbreport runs."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from lbreport import tshark

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")

ROOT = Path(__file__).resolve().parents[1]
CLASSIC = ROOT / "captures" / "classic-client.pcapng"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A clean HOME and cache, and the logging shim."""
    real = shutil.which("tshark")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    shim = bindir / "tshark"
    shim.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{tmp_path / "argv.log"}"\n'
                    f'exec "{real}" "$@"\n')
    shim.chmod(0o755)
    home = tmp_path / "home"
    return {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_CACHE_HOME": str(tmp_path / "cache"), "PATH": f"{bindir}:{os.environ['PATH']}"}


def lbreport(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lbreport", *args], capture_output=True,
                          text=True, env=env, cwd=ROOT, check=False)


def runs(env: dict[str, str]) -> list[str]:
    """The tshark command lines run since the last call."""
    log = Path(env["XDG_CACHE_HOME"]).parent / "argv.log"
    if not log.exists():
        return []
    lines = log.read_text().splitlines()
    log.unlink()
    return lines


def probes(lines: list[str]) -> list[str]:
    return [ln for ln in lines if ln.startswith(("-v", "-G "))]


def test_the_probe_runs_once_then_again_when_the_plugin_folder_changes(
    env: dict[str, str],
) -> None:
    first = lbreport(env, "report", str(CLASSIC), "--format", "json")
    assert first.returncode == 0, first.stderr
    asked = probes(runs(env))
    assert "-v" in asked and any(ln.startswith("-G fields") for ln in asked), asked

    again = lbreport(env, "report", str(CLASSIC), "--format", "json")
    assert again.stdout == first.stdout
    lines = runs(env)
    assert probes(lines) == [], lines  # the kept answer: no -v, no -G
    assert any(" -T pdml " in ln and "-X lua_script:" in ln for ln in lines), lines

    # Installing the plugin changes what Wireshark loads: asked again, and the installed copy
    # then runs alone (no -X).
    assert lbreport(env, "install").returncode == 0
    runs(env)
    installed = lbreport(env, "report", str(CLASSIC), "--format", "json")
    assert installed.stdout == first.stdout
    lines = runs(env)
    assert any(ln.startswith("-G fields") for ln in lines), lines
    assert not any("-X" in ln.split() for ln in lines if " -T pdml " in ln), lines
    lbreport(env, "report", str(CLASSIC), "--format", "json")
    assert probes(runs(env)) == []

    # Uninstalled: the folders are as at first, and so is the answer kept for them.
    assert lbreport(env, "install", "--uninstall").returncode == 0
    runs(env)
    lbreport(env, "report", str(CLASSIC), "--format", "json")
    lines = runs(env)
    assert any("-X lua_script:" in ln for ln in lines if " -T pdml " in ln), lines


def test_doctor_and_lbreport_cache_0_always_ask(env: dict[str, str]) -> None:
    assert lbreport(env, "report", str(CLASSIC)).returncode == 0
    runs(env)
    assert lbreport(env, "doctor").returncode == 0
    assert any(ln.startswith("-G fields") for ln in runs(env))
    assert lbreport({**env, "LBREPORT_CACHE": "0"}, "report", str(CLASSIC)).returncode == 0
    assert any(ln.startswith("-G fields") for ln in runs(env))


def test_a_changed_plugin_is_probed_again(env: dict[str, str], tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The key holds the plugin's bytes: a copy with a Lua error is found out, never served
    the answer kept for the good one."""
    monkeypatch.setenv("XDG_CACHE_HOME", env["XDG_CACHE_HOME"])
    monkeypatch.setenv("HOME", env["HOME"])
    good = tshark.preflight(None).runner
    assert tshark.preflight(None).runner == good
    broken = tmp_path / "lblab.lua"
    broken.write_text(tshark.REPO_PLUGIN.read_text() + "\nlocal x = = 1\n")
    monkeypatch.setattr(tshark, "REPO_PLUGIN", broken)
    with pytest.raises(tshark.PluginError, match="Lua"):
        tshark.preflight(None)


def test_fields_are_filtered_as_they_stream() -> None:
    """Only lblab lines are kept, wherever the 64 KB reads cut the text."""
    filler = "".join(f"F\tField {i}\tproto{i}.x\tFT_UINT8\tproto{i}\n" for i in range(20000))
    ours = "F\tRequest index\tlblab.req\tFT_UINT32\tlblab\nF\tx\tlblab.pkt\tFT_STRING\tlblab"
    for text in (filler + ours, filler[:65530] + ours + "\n" + filler, ours + "\n" + filler):
        kept = tshark._grep_fields(io.BytesIO(text.encode())).decode()
        assert kept.splitlines() == [ln for ln in text.splitlines() if "\tlblab." in ln]
        assert tshark._fields(kept) == {"lblab.req", "lblab.pkt"}

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
    assert any(" -z lblab,labels" in ln and "-X lua_script:" in ln for ln in lines), lines

    # Installing the plugin changes what Wireshark loads: asked again, and the installed copy
    # then runs alone (no -X).
    assert lbreport(env, "install").returncode == 0
    runs(env)
    installed = lbreport(env, "report", str(CLASSIC), "--format", "json")
    assert installed.stdout == first.stdout
    lines = runs(env)
    assert any(ln.startswith("-G fields") for ln in lines), lines
    assert not any("-X" in ln.split() for ln in lines if " -z lblab,labels" in ln), lines
    lbreport(env, "report", str(CLASSIC), "--format", "json")
    assert probes(runs(env)) == []

    # Uninstalled: the folders are as at first, and so is the answer kept for them.
    assert lbreport(env, "install", "--uninstall").returncode == 0
    runs(env)
    lbreport(env, "report", str(CLASSIC), "--format", "json")
    lines = runs(env)
    assert any("-X lua_script:" in ln for ln in lines if " -z lblab,labels" in ln), lines


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


def _report_runs(lines: list[str]) -> list[str]:
    """The report's dissecting runs: the plugin's labels, or (an older plugin) the PDML."""
    return [ln for ln in lines if " -z lblab,labels" in ln or " -T pdml " in ln]


def test_one_tshark_per_report_the_plugin_decides_the_lab(env: dict[str, str]) -> None:
    """No lab file: the classic lab goes to the plugin with lblab.lab_when_seen, which applies
    it only if the capture shows it (frame 1's lblab.lab_applied); no address probe runs
    first. Two-pass runs ask for lblab.two_pass; a lab file is passed as it is."""
    assert lbreport(env, "report", str(CLASSIC)).returncode == 0  # the probe, kept
    runs(env)
    import json

    seen = {}
    for name in ("classic-client", "ipv6"):
        out = lbreport(env, "report", str(ROOT / "captures" / f"{name}.pcapng"), "-f", "json")
        assert out.returncode == 0, out.stderr
        seen[name] = json.loads(out.stdout)
        lines = runs(env)
        assert len(lines) == 1 and _report_runs(lines) == lines, lines  # the dissecting run only
        assert " -z lblab,labels" in lines[0] and " -2 " not in lines[0], lines  # one pass
        argv = lines[0].split()
        for pref in ("lblab.lab_when_seen:TRUE", "lblab.two_pass:TRUE",
                     "lblab.balancer:192.168.56.103"):
            assert argv[argv.index(pref) - 1] == "-o", (pref, argv)
    assert seen["classic-client"]["roles_source"] == "configured"
    assert seen["ipv6"]["roles_source"] == "inferred"  # the classic lab is not that farm
    assert seen["ipv6"]["roles"]["M3"] == "fd00:56::103"

    lab = ROOT / "postproc" / "lbreport" / "data" / "classic.toml"
    assert lbreport(env, "report", str(CLASSIC), "--lab", str(lab)).returncode == 0
    lines = runs(env)
    assert len(lines) == 1 and "lblab.lab_when_seen" not in lines[0], lines
    assert "-o lblab.two_pass:TRUE" in lines[0]

    assert lbreport(env, "roles", str(CLASSIC)).returncode == 0
    lines = runs(env)
    assert len(lines) == 1 and " -2 " in lines[0] and "-o lblab.two_pass:TRUE" in lines[0]


def test_a_plugin_without_lab_when_seen_gets_the_address_probe(
        env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """An installed plugin older than lblab.lab_when_seen would refuse the unknown -o: the
    lab is chosen before dissecting, as before, and neither preference is passed."""
    from lbreport import pipeline

    for name in ("HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "PATH"):
        monkeypatch.setenv(name, env[name])
    monkeypatch.setenv("LBREPORT_CACHE", "0")
    monkeypatch.setattr(tshark.PluginProbe, "lab_when_seen", property(lambda _self: False))
    runner = tshark.preflight(None).runner
    assert not runner.lab_when_seen and not runner.two_pass
    assert not any("lab_when_seen" in a or "two_pass" in a
                   for a in tshark.pdml_command(runner, CLASSIC, []))
    runs(env)
    classic = pipeline.build_report(CLASSIC)
    lines = runs(env)
    assert any(" -c 500 " in ln for ln in lines), lines  # the address probe
    pdml = _report_runs(lines)
    assert len(pdml) == 1 and "lab_when_seen" not in pdml[0] and "two_pass" not in pdml[0]
    assert " -T pdml " in pdml[0]  # such a plugin writes no labels of its own either
    assert classic.roles_source == "configured"
    assert pipeline.build_report(ROOT / "captures" / "ipv6.pcapng").roles_source == "inferred"


def test_live_never_asks_for_two_pass() -> None:
    """A single pass (live) needs the labels of the one pass there is."""
    from lbreport import live_capture
    from lbreport.config import classic_lab

    _, prefs = live_capture.plugin_and_prefs(classic_lab())
    assert not any("two_pass" in p or "lab_when_seen" in p for p in prefs)


def test_report_starts_tshark_before_converting_its_options(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI starts the report's tshark from the raw command line (pipeline.prestart), and
    build_report takes that run: one dissecting tshark, whatever the options' order."""
    from craft import invoke
    from lbreport import pipeline

    started, taken = [], []
    real_prestart, real_take = pipeline.prestart, pipeline._take_prestarted
    monkeypatch.setattr(pipeline, "prestart",
                        lambda *a: (started.append(a), real_prestart(*a))[1])
    monkeypatch.setattr(pipeline, "_take_prestarted",
                        lambda *a: (r := real_take(*a), taken.append(r[1] is not None))[0])
    lab = ROOT / "postproc" / "lbreport" / "data" / "classic.toml"
    for args in (["report", str(CLASSIC), "-f", "json"],
                 ["--lang", "es", "report", "-f", "json", "--lab", str(lab), str(CLASSIC)]):
        started.clear(), taken.clear()
        result = invoke(*args)
        assert result.exit_code == 0, result.output
        assert started and taken == [True], (started, taken)
    assert started == [(CLASSIC, lab, None)]


def test_a_prestarted_tshark_nobody_takes_is_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    """A command line that fails after tshark started (a bad option value) stops it."""
    from craft import invoke
    from lbreport import pipeline

    runs_seen = []
    real_start = pipeline._Plan.start
    monkeypatch.setattr(pipeline._Plan, "start",
                        lambda self: (r := real_start(self), runs_seen.append(r))[0])
    big = ROOT / "captures" / "ab-concurrency.pcapng"
    result = invoke("report", str(big), "--format", "nope")
    assert result.exit_code == 2
    assert len(runs_seen) == 1 and runs_seen[0].proc.poll() is not None
    assert pipeline._prestarted is None
    # --help starts nothing.
    assert invoke("report", str(big), "--help").exit_code == 0
    assert len(runs_seen) == 1

"""The `lbreport` entry point (launch.py) starts a report's tshark before importing the CLI,
from the command line's shape; the CLI's own parser confirms or replaces that run.
Real tshark: a `tshark` shim first on PATH logs every command line."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from lbreport import launch, pipeline

ROOT = Path(__file__).resolve().parents[1]
CLASSIC = ROOT / "captures" / "classic-client.pcapng"
LAB = ROOT / "postproc" / "lbreport" / "data" / "classic.toml"


def test_it_knows_every_option_of_report_that_takes_a_value() -> None:
    """An option added to `report` must be added here too, or launch would misread the
    command lines that use it (it would take the option's value for the capture)."""
    import typer
    from lbreport.cli import app

    report = typer.main.get_command(app).commands["report"]
    takes_value = {name for p in report.params if p.param_type_name == "option"
                   and not p.is_flag for name in (*p.opts, *p.secondary_opts)}
    assert takes_value == launch.REPORT_VALUE_OPTIONS


@pytest.mark.parametrize(("args", "inputs"), [
    (["report", "a.pcapng"], ("a.pcapng", None, None)),
    (["report", "-f", "json", "a.pcapng", "-o", "out.json"], ("a.pcapng", None, None)),
    (["--lang", "es", "report", "--lab", "lab.toml", "a.pcapng"], ("a.pcapng", "lab.toml", None)),
    (["--lang=es", "report", "a.pcapng", "--keylog=k.keys", "--lab=l.toml"],
     ("a.pcapng", "l.toml", "k.keys")),
    (["report", "--lab", "-odd-name.toml", "a.pcapng"], ("a.pcapng", "-odd-name.toml", None)),
])
def test_a_report_command_line_names_its_inputs(args: list[str], inputs: tuple) -> None:
    capture, lab, keylog = inputs
    assert launch.report_inputs(args) == (
        Path(capture), lab and Path(lab), keylog and Path(keylog))


@pytest.mark.parametrize("args", [
    [], ["doctor"], ["roles", "a.pcapng"], ["report"], ["report", "--help"],
    ["report", "a.pcapng", "b.pcapng"], ["report", "--", "a.pcapng"],
    ["report", "-fjson", "a.pcapng"], ["report", "a.pcapng", "--lab"],
    ["report", "--nonsense", "a.pcapng"], ["report", "a.pcapng", "--help"],
])
def test_anything_unsure_starts_nothing(args: list[str]) -> None:
    assert launch.report_inputs(args) is None


def test_prestart_tries_the_same_inputs_once(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure (here a missing capture) is not repeated when the CLI's parser confirms
    launch's guess: build_report plans once more and says why."""
    planned = []
    real_plan = pipeline._plan
    monkeypatch.setattr(pipeline, "_plan", lambda *a: (planned.append(a), real_plan(*a))[1])
    missing = tmp_path / "missing.pcapng"
    try:
        pipeline.prestart(missing, None, None)
        pipeline.prestart(missing, None, None)
        assert len(planned) == 1 and pipeline._prestarted is None
        assert pipeline._take_prestarted(missing, None, None) == (None, None)
        pipeline.prestart(missing, None, None)  # a new command: tried again
        assert len(planned) == 2
    finally:
        pipeline.drop_prestarted()


def test_prestart_keeps_a_run_for_the_same_inputs_and_replaces_another() -> None:
    try:
        pipeline.prestart(CLASSIC, None, None)
        first = pipeline._prestarted
        assert first is not None
        pipeline.prestart(CLASSIC, None, None)
        assert pipeline._prestarted is first  # launch's guess, confirmed by the CLI
        pipeline.prestart(CLASSIC, LAB, None)
        assert pipeline._prestarted is not first and first[1].proc.poll() is not None
    finally:
        pipeline.drop_prestarted()


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
@pytest.mark.parametrize("args", [
    ["report", str(CLASSIC), "-f", "json"],
    ["--lang", "es", "report", "-f", "json", "--lab", str(LAB), str(CLASSIC)],
    ["report", "-fjson", str(CLASSIC)],  # launch unsure: the CLI's parser starts it
])
def test_one_dissecting_tshark_per_report(tmp_path: Path, args: list[str]) -> None:
    real = shutil.which("tshark")
    log = tmp_path / "argv.log"
    shim = tmp_path / "bin" / "tshark"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{log}"\nexec "{real}" "$@"\n')
    shim.chmod(0o755)
    env = {**os.environ, "PATH": f"{shim.parent}:{os.environ['PATH']}",
           "XDG_CACHE_HOME": str(tmp_path / "cache"), "HOME": str(tmp_path / "home")}
    proc = subprocess.run([sys.executable, "-m", "lbreport", *args], capture_output=True,
                          text=True, env=env, cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stderr
    assert '"requests"' in proc.stdout
    dissecting = [ln for ln in log.read_text().splitlines()
                  if " -T pdml " in ln or " -z lblab,labels" in ln]
    assert len(dissecting) == 1, dissecting


def _entry_point(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "lbreport", *args], capture_output=True,
                          cwd=ROOT, check=False)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_a_report_ends_with_its_exit_status_and_all_its_output(tmp_path: Path) -> None:
    """launch ends a report without the interpreter's teardown (os._exit): the status is the
    command's, and everything written reaches the pipe and the file."""
    import json

    whole = _entry_point("report", str(CLASSIC), "-f", "json")
    assert whole.returncode == 0, whole.stderr
    assert json.loads(whole.stdout)["summary"]["requests"] == 3
    text = _entry_point("report", str(CLASSIC))
    assert text.returncode == 0, text.stderr
    assert b"HTTP requests tshark read" in text.stdout  # the summary's last block: all written
    to_file = tmp_path / "r.json"
    assert _entry_point("report", str(CLASSIC), "-f", "json", "-o", str(to_file)).returncode == 0
    assert json.loads(to_file.read_text()) == json.loads(whole.stdout)

    missing = _entry_point("report", str(tmp_path / "nothing.pcapng"))
    assert missing.returncode == 1 and b"No such file" in missing.stderr
    assert b"Traceback" not in missing.stderr

    data = (ROOT / "captures" / "classic-m3.pcapng").read_bytes()
    cut = tmp_path / "cut.pcapng"
    cut.write_bytes(data[: len(data) - 40])  # in the middle of the last packet
    truncated = _entry_point("report", str(cut), "-f", "json")
    assert truncated.returncode == 3, truncated.stderr
    assert json.loads(truncated.stdout)["truncated"] is True
    assert b"cut short" in truncated.stderr
    assert _entry_point("report", str(CLASSIC), "--format", "nonsense").returncode == 2


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="the unprivileged run's folder is made as root only")
def test_ending_without_teardown_still_removes_the_unprivileged_folder() -> None:
    """A report run as root may dissect as an unprivileged user from a folder removed at
    exit (tshark.unprivileged): launch's os._exit runs the exit handlers first."""
    code = ("from lbreport import tshark, launch\n"
            "print(tshark.unprivileged().home, flush=True)\n"
            "launch._exit_now(4)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 4, proc.stderr
    home = Path(proc.stdout.strip())
    assert home.name.startswith("lbreport-") and not home.exists()

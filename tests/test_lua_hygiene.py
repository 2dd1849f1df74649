"""The plugin's Lua: parses as Lua 5.2 (Wireshark 4.0) and 5.4 (4.4+), defines no
globals, keeps its extractors at file scope, never prints, resets its state."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PLUGIN = REPO / "plugins" / "lblab.lua"
SOURCE = PLUGIN.read_text(encoding="utf-8")


@pytest.mark.parametrize("luac", ["luac5.2", "luac5.4"])
def test_parses_in_both_lua_versions(luac: str) -> None:
    if shutil.which(luac) is None:
        pytest.fail(f"{luac} missing: scripts/setup.sh installs lua5.2 and lua5.4")
    proc = subprocess.run([luac, "-p", str(PLUGIN)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("std", ["lua52", "lua54"])
def test_luacheck_clean(std: str) -> None:
    """No global of its own, nothing unused, nothing shadowed by mistake."""
    proc = subprocess.run(
        ["luacheck", "--config", str(PLUGIN.parent / ".luacheckrc"), "--std", std,
         "--no-color", str(PLUGIN)],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_extractors_only_at_file_scope() -> None:
    """Field.new inside a function raises on every packet (wireshark-4.0-lua.md)."""
    lines = [ln for ln in SOURCE.splitlines() if "Field.new(" in ln]
    assert len(lines) > 10
    assert all(re.match(r"^F\.\w+ = Field\.new\(", ln) for ln in lines), lines


def test_never_prints() -> None:
    """A print at load breaks tools that parse `tshark -v` (pyshark)."""
    code = "\n".join(ln.split("--", 1)[0] for ln in SOURCE.splitlines())
    assert not re.search(r"\bprint\s*\(", code)


def test_state_reset_in_init_and_prefs_changed() -> None:
    init = re.search(r"function lblab\.init\(\)(.*?)\nend", SOURCE, re.S)
    prefs = re.search(r"function lblab\.prefs_changed\(\)(.*?)\nend", SOURCE, re.S)
    assert init and "reset_state()" in init.group(1)
    assert prefs and "reset_state()" in prefs.group(1) and "parse_prefs()" in prefs.group(1)


# -- behaviour: what tshark prints with the plugin loaded (the greps above say less) ---------

needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")


def _tshark(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HOME="/nonexistent-lblab-home")  # no installed copy, no prefs
    return subprocess.run(["tshark", *args], capture_output=True, text=True, check=False,
                          env=env)


@needs_tshark
def test_loading_prints_nothing() -> None:
    """`tshark -v` with the plugin is byte for byte what it is without (pyshark and doctor
    parse it); `-G plugins` gains exactly the plugin's own line, and nothing on stderr."""
    plain, loaded = _tshark("-v"), _tshark("-v", "-X", f"lua_script:{PLUGIN}")
    assert (loaded.stdout, loaded.stderr) == (plain.stdout, plain.stderr)
    plain, loaded = _tshark("-G", "plugins"), _tshark("-G", "plugins", "-X",
                                                      f"lua_script:{PLUGIN}")
    assert loaded.stderr == plain.stderr
    added = [ln for ln in loaded.stdout.splitlines() if ln not in plain.stdout.splitlines()]
    assert len(loaded.stdout.splitlines()) == len(plain.stdout.splitlines()) + 1
    assert len(added) == 1 and added[0].split("\t")[0].endswith("lblab.lua"), added


@needs_tshark
def test_dissecting_prints_nothing() -> None:
    """A print while dissecting would land in tshark's own output: with -T fields only the
    frame numbers may come out, one per frame."""
    capture = REPO / "captures" / "classic-m3.pcapng"
    # -Y frame: with -2, tshark builds the tree (and so runs the plugin's fields) for it.
    proc = _tshark("-n", "-2", "-Y", "frame", "-r", str(capture), "-X", f"lua_script:{PLUGIN}",
                   "-T", "fields", "-e", "frame.number", "-e", "lblab.step")
    assert proc.returncode == 0 and "Lua" not in proc.stderr, proc.stderr
    lines = proc.stdout.splitlines()
    assert [ln.split("\t")[0] for ln in lines] == [str(i) for i in range(1, len(lines) + 1)]
    assert any(ln.split("\t")[1] for ln in lines)  # the plugin did label frames

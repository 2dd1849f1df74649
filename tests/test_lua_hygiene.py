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


# -- room to grow: Lua allows 200 active locals in a chunk --------------------------------

LOCALS_BUDGET = 150  # well under Lua's hard limit of 200, so the plugin can take new state


def _main_chunk_active_locals(luac: str, chunk: Path = PLUGIN) -> int:
    """The most locals live at once in the main chunk, from `luac -l -l`'s listing of the
    main function's locals (name, startpc, endpc: live on [startpc, endpc))."""
    out = subprocess.run([luac, "-l", "-l", "-p", str(chunk)], capture_output=True,
                         text=True, check=True).stdout
    main_locals = out.split("\nlocals (", 1)[1].split("\nupvalues", 1)[0]
    spans = [(int(a), int(b)) for a, b in
             re.findall(r"^\s*\d+\s+\S+\s+(\d+)\s+(\d+)\s*$", main_locals, re.M)]
    assert spans, "luac listed no locals for the main chunk"
    events = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    live = most = 0
    for _, delta in events:
        live += delta
        most = max(most, live)
    return most


@pytest.mark.parametrize("luac", ["luac5.2", "luac5.4"])
def test_main_chunk_has_room_for_new_locals(luac: str) -> None:
    if shutil.which(luac) is None:
        pytest.fail(f"{luac} missing: scripts/setup.sh installs lua5.2 and lua5.4")
    assert _main_chunk_active_locals(luac) <= LOCALS_BUDGET


def test_locals_counter_sees_the_limit(tmp_path: Path) -> None:
    """The counter itself: a chunk of 180 file-level locals counts 180."""
    chunk = tmp_path / "many.lua"
    chunk.write_text("".join(f"local v{i} = {i}\n" for i in range(180)) + "return v1\n")
    assert _main_chunk_active_locals("luac5.2", chunk) == 180


# -- the debug preference ---------------------------------------------------------------------

@needs_tshark
def test_debug_preference_logs_to_a_field_only_when_on() -> None:
    """lblab.debug on: frame 1 carries what was inferred (roles, the resolve's counts) and
    every frame its own facts; off (the default): no lblab.debug field at all."""
    capture = str(REPO / "captures" / "classic-client.pcapng")
    base = ["-n", "-2", "-Y", "frame", "-r", capture, "-X", f"lua_script:{PLUGIN}",
            "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=|", "-e", "lblab.debug"]
    off = _tshark(*base)
    on = _tshark(*base, "-o", "lblab.debug:TRUE")
    assert off.returncode == on.returncode == 0 and "Lua" not in on.stderr, on.stderr
    assert off.stdout.strip() == ""
    frames = on.stdout.splitlines()
    assert len(frames) == len(off.stdout.splitlines()) > 1
    first = frames[0].split("|")
    assert first[0].startswith("connection 0, step 1, HTTP message 0, request 1"), first
    assert "roles: 192.168.56.101=M1 192.168.56.102=M2 192.168.56.103=M3 " \
           "192.168.56.1=client" in first
    assert any(x.startswith("resolved: ") and "requests=3" in x for x in first), first
    assert all(ln.startswith("connection ") for ln in frames)

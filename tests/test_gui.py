"""The real Wireshark (Qt) on Xvfb: `lbreport install`, then `wireshark -C LB-Lab -r CAPTURE`.

Needs Debian's wireshark, xvfb, xdotool and imagemagick (scripts/setup.sh installs them); this
test installs nothing itself. Set LBLAB_SCREENSHOT=docs/lb-lab-profile.png to keep the shot.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.gui

ROOT = Path(__file__).resolve().parents[1]
CLASSIC = ROOT / "captures" / "classic-client.pcapng"
NEEDED = ("wireshark", "Xvfb", "xdotool", "import", "convert")


@pytest.fixture
def display() -> Iterator[str]:
    missing = [c for c in NEEDED if shutil.which(c) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (bash scripts/setup.sh installs them)")
    # -displayfd: Xvfb picks a free display number and writes it once it accepts clients,
    # so parallel runs never collide and no sleep guesses when it is ready.
    read, write = os.pipe()
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "1600x900x24",
                             "-nolisten", "tcp"], pass_fds=(write,),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as f:
        number = f.readline().strip()
    try:
        assert number, "Xvfb did not start"
        yield f":{number}"
    finally:
        xvfb.terminate()
        xvfb.wait(10)


def _wait_window(env: dict[str, str], title: str, timeout: float = 60) -> str:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = subprocess.run(["xdotool", "search", "--name", title], capture_output=True,
                               text=True, env=env, check=False).stdout.split()
        if found:
            return found[0]
        time.sleep(0.5)
    raise AssertionError(f"no window titled {title!r} within {timeout} s")


def _colours(png: Path) -> set[str]:
    hist = subprocess.run(["convert", str(png), "-format", "%c", "histogram:info:-"],
                          capture_output=True, text=True, check=True).stdout
    return {word[1:7].lower() for line in hist.splitlines() for word in line.split()
            if word.startswith("#") and len(word) >= 7}


def test_wireshark_opens_the_capture_with_the_lb_lab_profile(
    display: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
           "XDG_RUNTIME_DIR": str(tmp_path / "run"), "DISPLAY": display}
    (tmp_path / "run").mkdir(mode=0o700)
    done = subprocess.run([sys.executable, "-m", "lbreport", "install"], env=env, cwd=ROOT,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr

    log = (tmp_path / "wireshark.log").open("w")
    ws = subprocess.Popen(["wireshark", "-C", "LB-Lab", "-r", str(CLASSIC)], env=env,
                          stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        win = _wait_window(env, CLASSIC.name)
        # No window manager on Xvfb: size the window ourselves, then View → Resize Columns
        # (Ctrl+Shift+R) so the Step column shows whole step names.
        subprocess.run(["xdotool", "windowmove", win, "0", "0", "windowsize", win, "1600",
                        "900"], env=env, check=True)
        time.sleep(2)
        subprocess.run(["xdotool", "windowfocus", "--sync", win], env=env, check=True)
        subprocess.run(["xdotool", "key", "--window", win, "ctrl+shift+r"], env=env, check=True)
        time.sleep(2)
        shot = tmp_path / "lb-lab-profile.png"
        subprocess.run(["import", "-display", display, "-window", "root", str(shot)], env=env,
                       check=True)
        if keep := os.environ.get("LBLAB_SCREENSHOT"):
            shutil.copyfile(shot, ROOT / keep)
        # The rows are painted with the profile's colouring rules: M1's green and M2's blue
        # (front leg), which no default Wireshark rule uses.
        colours = _colours(shot)
        assert {"d7f5d0", "d0e4ff"} <= colours, sorted(colours)[:40]

        # Quit like a user (Ctrl+Q): Wireshark then writes its recent files.
        subprocess.run(["xdotool", "key", "--window", win, "ctrl+q"], env=env, check=True)
        assert ws.wait(30) == 0
    finally:
        if ws.poll() is None:
            ws.kill()
            ws.wait()
        log.close()

    config = home / ".config" / "wireshark"
    common = (config / "recent_common").read_text()
    assert "\ngui.last_used_profile: LB-Lab\n" in common
    assert f"\nrecent.capture_file: {CLASSIC}\n" in common
    # Wireshark 4.0 keeps the packet list's column widths per profile, keyed by format.
    recent = (config / "profiles" / "LB-Lab" / "recent").read_text()
    widths = recent.split("column.width:", 1)[1].split("\n\n", 1)[0]
    keys = [ln.strip().rsplit(",", 2)[0] for ln in widths.strip().splitlines()]
    assert keys == ["%m", "%t", "%s", '"%Cus:lblab.src_role"', "%d", '"%Cus:lblab.dst_role"',
                    '"%Cus:lblab.req"', '"%Cus:lblab.step"', '"%Cus:lblab.backend"', "%p", "%i"]

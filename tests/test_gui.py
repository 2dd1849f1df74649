"""The real Wireshark (Qt) on Xvfb: `lbreport install`, then `wireshark -C LB-Lab -r CAPTURE`.

Needs Debian's wireshark, xvfb, xdotool, imagemagick and xclip (scripts/setup.sh installs them);
these tests install nothing themselves. Set LBLAB_SCREENSHOT=docs/lb-lab-profile.png to keep the
profile's shot, LBLAB_REQUESTS_SCREENSHOT=docs/lb-lab-requests.png the Requests window's.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


# Tools > LB-Lab > Requests, driven like a user: keys and clicks through xdotool, the window's
# text read back through the clipboard (xclip). No window manager runs on Xvfb, so every window
# gets the keyboard focus explicitly before it is typed at.

class Screen:
    """xdotool, xclip and import on one X display."""

    def __init__(self, env: dict[str, str], shots: Path) -> None:
        self.env, self.shots = env, shots

    def xdo(self, *args: str) -> str:
        return subprocess.run(["xdotool", *args], env=self.env, capture_output=True, text=True,
                              check=True, timeout=30).stdout

    def visible(self) -> dict[str, str]:
        """Wireshark's mapped windows (menus included: they are named "Wireshark"), by id."""
        ids = subprocess.run(["xdotool", "search", "--onlyvisible", "--class", "Wireshark"],
                             env=self.env, capture_output=True, text=True, check=False,
                             timeout=30).stdout.split()
        names = {}
        for wid in ids:
            name = subprocess.run(["xdotool", "getwindowname", wid], env=self.env,
                                  capture_output=True, text=True, check=False, timeout=30)
            if name.returncode == 0:  # a menu may close between the two calls
                names[wid] = name.stdout.rstrip("\n")
        return names

    def until(self, what: str, probe: Callable[[], str | None], timeout: float) -> str:
        end = time.monotonic() + timeout
        while True:
            found = probe()
            if found is not None:
                return found
            if time.monotonic() > end:
                shot = self.shots / f"timeout-{time.monotonic_ns()}.png"
                self.shot(shot)
                raise AssertionError(f"{what}: not within {timeout} s (screen: {shot}; "
                                     f"windows: {sorted(self.visible().values())})")
            time.sleep(0.2)

    def window(self, title: str, timeout: float = 30) -> str:
        """The visible window whose title contains title (Qt prefixes "Wireshark · ")."""
        return self.until(f"a window titled {title!r}", lambda: next(
            (w for w, n in self.visible().items() if title in n), None), timeout)

    def gone(self, wid: str, timeout: float = 15) -> None:
        self.until(f"window {wid} closed",
                   lambda: None if wid in self.visible() else "", timeout)

    def menus(self) -> set[str]:
        return {w for w, n in self.visible().items() if n == "Wireshark"}

    def new_menu(self, before: set[str], timeout: float) -> str | None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if new := self.menus() - before:
                return new.pop()
            time.sleep(0.1)
        return None

    def focus(self, wid: str, x: int, y: int, click: bool = False) -> None:
        """The keyboard to wid, the pointer at (x, y) in it (and a click there)."""
        self.xdo("windowfocus", "--sync", wid)
        self.xdo("mousemove", "--window", wid, str(x), str(y), *(["click", "1"] if click else []))

    def clipboard(self) -> str | None:
        got = subprocess.run(["xclip", "-o", "-selection", "clipboard"], env=self.env,
                             capture_output=True, check=False, timeout=30)
        return got.stdout.decode() if got.returncode == 0 else None

    def copy(self, wid: str, x: int, y: int, *keys: str, timeout: float = 15) -> str:
        """Click at (x, y) in wid, press keys (then Ctrl+A, Ctrl+C) and read the clipboard.
        The clipboard first holds a sentinel, so an old copy is never read as the new one."""
        sentinel = f"lblab-sentinel-{time.monotonic_ns()}"
        # xclip -i serves the selection from a child in the background until Qt takes it over.
        subprocess.run(["xclip", "-i", "-selection", "clipboard"], input=sentinel.encode(),
                       env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=True, timeout=30)
        self.until("the sentinel in the clipboard",
                   lambda: "" if self.clipboard() == sentinel else None, timeout)
        self.focus(wid, x, y, click=True)
        self.xdo("key", "--clearmodifiers", *keys, "ctrl+a", "ctrl+c")
        return self.until(f"a copy from window {wid}", lambda: (
            None if (text := self.clipboard()) in (None, sentinel) else text), timeout)

    def geometry(self, wid: str) -> tuple[int, int]:
        shape = dict(ln.split("=", 1) for ln in self.xdo("getwindowgeometry", "--shell",
                                                          wid).split())
        return int(shape["WIDTH"]), int(shape["HEIGHT"])

    def shot(self, path: Path) -> None:
        subprocess.run(["import", "-display", self.env["DISPLAY"], "-window", "root", str(path)],
                       env=self.env, check=True, timeout=60)

    def settled_shot(self, path: Path, timeout: float = 15) -> None:
        """A screenshot once two in a row are the same (Qt has finished painting)."""
        def raw() -> bytes:
            return subprocess.run(["import", "-display", self.env["DISPLAY"], "-window", "root",
                                   "rgb:-"], env=self.env, capture_output=True, check=True,
                                  timeout=60).stdout
        last = raw()
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            time.sleep(0.3)
            now = raw()
            if now == last:
                break
            last = now
        self.shot(path)


@contextmanager
def _wireshark(display: str, tmp_path: Path, *options: str) -> Iterator[tuple[Screen, str]]:
    """`lbreport install` into a private HOME, `wireshark -C LB-Lab [options] -r CLASSIC` on
    display: the screen and the main window, sized to the screen; quits with Ctrl+Q."""
    missing = [c for c in (*NEEDED, "xclip") if shutil.which(c) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (bash scripts/setup.sh installs them)")
    home = tmp_path / "home"
    # English menus (Alt+T is Tools) whatever the machine's locale.
    env = {**{k: v for k, v in os.environ.items() if k not in ("LANGUAGE", "LC_MESSAGES")},
           "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": str(home),
           "XDG_CONFIG_HOME": str(home / ".config"), "XDG_RUNTIME_DIR": str(tmp_path / "run"),
           "DISPLAY": display}
    (tmp_path / "run").mkdir(mode=0o700)
    done = subprocess.run([sys.executable, "-m", "lbreport", "install"], env=env, cwd=ROOT,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    screen = Screen(env, tmp_path)
    with (tmp_path / "wireshark.log").open("w") as log:
        ws = subprocess.Popen(["wireshark", "-C", "LB-Lab", *options, "-r", str(CLASSIC)],
                              env=env, stdout=log, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL)
        try:
            main = _wait_window(env, CLASSIC.name)
            screen.xdo("windowmove", "--sync", main, "0", "0")
            screen.xdo("windowsize", "--sync", main, "1600", "900")
            screen.focus(main, 800, 200)
            screen.xdo("key", "ctrl+shift+r")  # View > Resize Columns
            yield screen, main
            screen.focus(main, 800, 200)
            screen.xdo("key", "--clearmodifiers", "ctrl+q")
            assert ws.wait(30) == 0
        finally:
            if ws.poll() is None:
                ws.kill()
                ws.wait()
    assert "Lua" not in (tmp_path / "wireshark.log").read_text()


def _open_requests(screen: Screen, main: str, title: str) -> str:
    """Tools > LB-Lab > Requests with the keyboard. Wireshark 4.0's Tools menu: Firewall ACL
    Rules, Credentials, then the Lua plugins' submenus sorted by name (LB-Lab, Lua), each
    sorted too (Go to request, Requests). Every menu is waited for before the next key."""
    def tools() -> str | None:
        screen.focus(main, 800, 200)
        before = screen.menus()
        screen.xdo("key", "--clearmodifiers", "alt+t")
        if screen.new_menu(before, 3) is not None:
            return ""
        screen.xdo("key", "Escape")  # the menu bar may not take keys yet: again
        return None
    screen.until("Wireshark's Tools menu (Alt+T)", tools, 60)
    before = screen.menus()
    screen.xdo("key", "Down", "Down", "Right")  # Tools > LB-Lab >
    assert screen.new_menu(before, 5) is not None, "no submenu at Tools > (third item)"
    screen.xdo("key", "Down", "Return")  # > Requests
    return screen.window(title, 60)


def _tshark(*args: str, env: dict[str, str]) -> str:
    """tshark as the GUI runs: the installed plugin and the LB-Lab profile of env's HOME."""
    done = subprocess.run(["tshark", "-C", "LB-Lab", "-r", str(CLASSIC), *args], env=env,
                          capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0 and "Lua" not in done.stderr, done.stderr
    return done.stdout


@pytest.mark.parametrize(("lang", "title", "button", "number"), [
    ("en", "LB-Lab: requests", "Filter request...", 2),
    ("es", "LB-Lab: peticiones", "Filtrar petición...", 3),
], ids=["en", "es"])
def test_tools_lb_lab_requests_lists_every_request_and_filters_one(
    display: str, tmp_path: Path, lang: str, title: str, button: str, number: int
) -> None:
    options = ["-o", f"lblab.lang:{lang}"] if lang != "en" else []
    with _wireshark(display, tmp_path, *options) as (screen, main):
        win = _open_requests(screen, main, title)
        # Over the packet details, the packet list still in sight above it.
        screen.xdo("windowmove", "--sync", win, "250", "330")
        screen.xdo("windowsize", "--sync", win, "1100", "420")
        width, height = screen.geometry(win)
        assert (width, height) == (1100, 420)
        if lang == "en":
            shot = tmp_path / "lb-lab-requests.png"
            screen.focus(win, width // 2, height // 3)
            screen.settled_shot(shot)
            if keep := os.environ.get("LBLAB_REQUESTS_SCREENSHOT"):
                shutil.copyfile(shot, ROOT / keep)

        # The window's own text: the three requests of the original exercise, M1, M2, M1,
        # each by the page's "Soy la máquina N" marker, and the summary.
        text = screen.copy(win, width // 2, height // 3)
        lines = text.splitlines()
        marker = "marker" if lang == "en" else "marca"
        assert lines[0] == title, text
        for index, backend in ((1, "M1"), (2, "M2"), (3, "M1")):
            row = re.compile(rf"{index}  192\.168\.56\.1:\d+ +GET /ejemplo\.html +200 +"
                             rf"{backend} \({marker}\) +\d+\.\d{{3}} ms +\d+\.\d{{3}} ms +"
                             rf"{'none' if lang == 'en' else 'ninguna'}$")
            assert sum(bool(row.fullmatch(ln)) for ln in lines) == 1, (index, text)
        if lang == "en":
            assert "Requests: 3" in lines, text
            assert "Requests per backend: M1: 2, M2: 1" in lines, text
            assert "Backends in order: M1 M2 M1" in lines, text
        else:
            assert "Peticiones: 3" in lines, text
            assert "Peticiones por servidor final: M1: 2, M2: 1" in lines, text
            assert "Servidores finales en orden: M1 M2 M1" in lines, text
        # Word for word what `tshark -z lblab,requests` prints with the same profile.
        table = _tshark("-q", "-z", "lblab,requests", *options, env=screen.env)
        assert [ln.rstrip() for ln in lines] == [ln.rstrip() for ln in table.splitlines()]

        # The window's button (tab order: text, Highlight, the button, Close) asks a request
        # number and applies lblab.req == N.
        screen.focus(win, width // 2, height // 3, click=True)
        screen.xdo("key", "Tab", "Tab", "space")
        ask = screen.window(button)
        ask_width, _ = screen.geometry(ask)
        # The number field is the dialog's first row, right of its label.
        typed = screen.copy(ask, ask_width - 60, 23, str(number))
        assert typed == str(number), typed
        screen.xdo("key", "Return")
        screen.gone(ask)

        # The display filter toolbar (Ctrl+/) holds the filter...
        shown = screen.copy(main, 800, 200, "ctrl+slash")
        assert shown == f"lblab.req == {number}", shown
        # ...and it is applied: Statistics > Capture File Properties counts the displayed
        # packets as many as tshark's two-pass filter finds.
        frames = _tshark("-2", "-Y", f"lblab.req == {number}", "-T", "fields",
                         "-e", "frame.number", env=screen.env).split()
        assert len(frames) == {2: 11, 3: 10}[number], frames  # 12-22, 23-32
        screen.focus(main, 800, 200)
        screen.xdo("key", "--clearmodifiers", "ctrl+alt+shift+c")
        props = screen.window("Capture File Properties")
        props_width, props_height = screen.geometry(props)
        details = screen.copy(props, props_width // 2, props_height // 3)
        counts = re.search(r"^Packets\n(\d+)\n(\d+) \(", details, re.M)
        assert counts, details
        assert (int(counts[1]), int(counts[2])) == (32, len(frames)), details
        screen.focus(props, props_width // 2, props_height // 3)
        screen.xdo("key", "Escape")
        screen.gone(props)

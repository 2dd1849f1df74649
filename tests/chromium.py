"""Load a local HTML file in real headless Chromium (Debian's `chromium`): the DOM after
scripts would have run, the console messages, and a screenshot.

Flags: as root Chromium needs --no-sandbox; the background-networking flags keep it from
calling Google on a machine whose network is closed; a fresh --user-data-dir per run so no
profile state leaks between tests. --virtual-time-budget lets event handlers (an injected
`onerror`) fire before the DOM is dumped.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--enable-logging=stderr", "--v=0", "--virtual-time-budget=3000",
]  # fmt: skip
CONSOLE = re.compile(r":CONSOLE[^\]]*\] (.*)")


@dataclass(frozen=True)
class Page:
    dom: str
    console: list[str]  # every console message (errors, CSP violations, console.log…)
    stderr: str


def chromium() -> str:
    exe = shutil.which("chromium")
    assert exe, "Debian's chromium is not installed: run `bash scripts/setup.sh` as root"
    return exe


def _run(args: list[str], page: Path) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="lbreport-chromium-") as profile:
        return subprocess.run(
            [chromium(), *FLAGS, f"--user-data-dir={profile}", *args, page.resolve().as_uri()],
            capture_output=True, text=True, timeout=120, check=False,
        )


def load(page: Path) -> Page:
    proc = _run(["--dump-dom"], page)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "<html" in proc.stdout, proc.stderr[-2000:]
    return Page(proc.stdout, CONSOLE.findall(proc.stderr), proc.stderr)


def screenshot(page: Path, png: Path, width: int = 1280, height: int = 1600) -> Path:
    proc = _run([f"--screenshot={png}", f"--window-size={width},{height}"], page)
    assert proc.returncode == 0 and png.exists(), proc.stderr[-2000:]
    return png


def png_size(png: Path) -> tuple[int, int]:
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")

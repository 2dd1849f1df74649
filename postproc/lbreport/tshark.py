"""Find and check tshark, build its command lines, run it, and interpret its stderr.

Everything that knows tshark's flags and messages lives here.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from lbreport.errors import LbreportError
from lbreport.messages import t

MINIMUM_VERSION = (4, 0)
PLUGIN_NAME = "lblab.lua"
# The repository's copy: <repo>/plugins/lblab.lua, two levels above postproc/lbreport/.
REPO_PLUGIN = Path(__file__).resolve().parents[2] / "plugins" / PLUGIN_NAME

_CUT_SHORT = "appears to have been cut short in the middle of a packet"
_NOT_CAPTURE = ("isn't a capture file", "unknown file format", "isn't a capture file in a format")
_NOISE = ("Running as user",)  # tshark's warning when run as root: not an error


@dataclass(frozen=True, slots=True)
class TsharkInfo:
    path: str
    version: tuple[int, ...]
    version_text: str
    lua: str  # Lua version, "" when built without Lua


@dataclass(slots=True)
class Outcome:
    """What tshark's exit code and stderr say once its output has been read."""

    truncated: bool = False
    warnings: list[str] = field(default_factory=list)


def find_tshark() -> str:
    path = shutil.which("tshark")
    if path is None:
        raise LbreportError(t("err.tshark_missing"))
    return path


def parse_version(text: str, path: str) -> TsharkInfo:
    """`tshark -v` → version and Lua. The Lua mention may wrap across lines."""
    flat = " ".join(text.split())
    m = re.search(r"TShark \(Wireshark\) (\d+)\.(\d+)\.(\d+)", flat)
    if m is None:
        raise LbreportError(t("err.tshark_version", detail=text.strip()[:200] or "nothing"))
    lua = re.search(r"with Lua (\d[\d.]*)", flat)
    version = tuple(int(x) for x in m.groups())
    return TsharkInfo(path, version, ".".join(m.groups()), lua.group(1) if lua else "")


def require(info: TsharkInfo) -> None:
    """Refuse a tshark that cannot run the plugin."""
    minimum = ".".join(map(str, MINIMUM_VERSION))
    if info.version[:2] < MINIMUM_VERSION:
        raise LbreportError(t("err.tshark_old", version=info.version_text, minimum=minimum))
    if not info.lua:
        raise LbreportError(t("err.tshark_no_lua", version=info.version_text))


def installed_plugin(plugins_listing: str) -> str | None:
    """The installed lblab.lua's path from `tshark -G plugins`, or None."""
    for line in plugins_listing.splitlines():
        parts = line.split("\t")
        if parts and parts[0].strip() == PLUGIN_NAME:
            return parts[-1].strip()
    return None


def plugin_args(plugins_listing: str) -> list[str]:
    """The one decision about which plugin runs: an installed copy wins (passing -X as well
    would load it twice), else the repository's copy through -X."""
    if installed_plugin(plugins_listing):
        return []
    if not REPO_PLUGIN.is_file():
        raise LbreportError(t("err.plugin_missing", path=REPO_PLUGIN))
    return ["-X", f"lua_script:{REPO_PLUGIN}"]


# pcap (both byte orders, µs and ns), pcapng, and the compressions tshark reads transparently.
_CAPTURE_MAGIC = (
    b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d",
    b"\x0a\x0d\x0d\x0a", b"\x1f\x8b", b"\x28\xb5\x2f\xfd", b"\x04\x22\x4d\x18",
)  # fmt: skip


def check_capture(path: Path) -> bool:
    """Problems tshark would report less clearly. Returns whether the file starts like a
    pcap/pcapng (tshark's heuristics read other bytes as exotic formats: a short text file
    can pass for "MP4 media" and an empty one for ERF)."""
    if not path.exists():
        raise LbreportError(t("err.missing", path=path))
    if path.is_dir():
        raise LbreportError(t("err.directory", path=path))
    try:
        with path.open("rb") as f:
            head = f.read(4)
    except OSError as exc:
        raise LbreportError(t("err.unreadable", path=path, reason=exc.strerror)) from None
    if not head:
        raise LbreportError(t("err.empty_file", path=path))
    return head.startswith(_CAPTURE_MAGIC)


@dataclass(frozen=True, slots=True)
class Preflight:
    """What lbreport learns from tshark before the real run (three quick runs, in parallel)."""

    info: TsharkInfo
    plugin: list[str]
    addresses: set[str]  # addresses in the capture's first frames ("" entries dropped)
    compact: bool = False  # the plugin that runs offers lblab.compact (one field per packet)


def preflight(capture: Path | None, probe_frames: int = 500) -> Preflight:
    tshark = find_tshark()
    runs = {
        "version": [tshark, "-v"],
        "plugins": [tshark, "-G", "plugins"],
    }
    if capture is not None:
        runs["addresses"] = [
            tshark, "-n", "-r", str(capture), "-c", str(probe_frames), "-T", "fields",
            "-E", "separator=,", "-E", "occurrence=a", "-E", "aggregator=,",
            "-e", "ip.addr", "-e", "ipv6.addr", "-e", "arp.src.proto_ipv4",
            "-e", "arp.dst.proto_ipv4",
        ]  # fmt: skip
    outputs = _run_parallel(runs)
    info = parse_version(outputs["version"][0], tshark)
    require(info)
    addresses: set[str] = set()
    if capture is not None:
        out, err, code = outputs["addresses"]
        judge_stderr(capture, err, code, allow_cut_short=True)
        addresses = {a for a in re.split(r"[,\s]+", out) if a}
    listing = outputs["plugins"][0]
    return Preflight(info, plugin_args(listing), addresses, offers_compact(listing))


# The plugin's compact mode: one `lblab.pkt` field per packet instead of nine, a third less
# PDML for lxml to parse (the report's bottleneck). The GUI keeps the separate fields.
COMPACT_PREF = "lblab.compact:TRUE"


def offers_compact(plugins_listing: str) -> bool:
    """Whether the plugin that will run knows `lblab.compact`: an older installed copy does
    not, and tshark rejects an unknown `-o`."""
    path = installed_plugin(plugins_listing)
    source = Path(path) if path else REPO_PLUGIN
    try:
        return "lblab.pkt" in source.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def _run_parallel(runs: dict[str, list[str]]) -> dict[str, tuple[str, str, int]]:
    procs = {
        name: subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
        )
        for name, argv in runs.items()
    }
    results = {}
    for name, proc in procs.items():
        out, err = proc.communicate()
        results[name] = (
            out.decode("utf-8", "replace"),
            err.decode("utf-8", "replace"),
            proc.returncode,
        )
    return results


def pdml_command(
    info: TsharkInfo, capture: Path, plugin: list[str], prefs: list[str], compact: bool = False
) -> list[str]:
    """Two passes so labels may use later frames; `-Y frame` so pass 1 builds trees (without
    a filter, `-2` leaves every Field extractor nil); never `-2 -R`. `-J lblab` keeps PDML small:
    geninfo survives it and gives the frame number and timestamp."""
    argv = [info.path, "-n", "-2", "-Y", "frame", "-r", str(capture), *plugin]
    for pref in [*prefs, *([COMPACT_PREF] if compact else [])]:
        argv += ["-o", pref]
    return [*argv, "-T", "pdml", "-J", "lblab"]


def fields_command(
    info: TsharkInfo, capture: Path, plugin: list[str], prefs: list[str], fields: list[str]
) -> list[str]:
    argv = [info.path, "-n", "-2", "-Y", "frame", "-r", str(capture), *plugin]
    for pref in prefs:
        argv += ["-o", pref]
    argv += ["-T", "fields", "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=|"]
    for name in fields:
        argv += ["-e", name]
    return argv


class TsharkRun:
    """A running tshark whose stdout is streamed; stderr goes to a temporary file so a chatty
    tshark can never block on a full pipe while we read stdout."""

    def __init__(self, argv: list[str], capture: Path) -> None:
        self.capture = capture
        # Closed in finish()/kill(): its life spans the caller's read loop.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=self._stderr, stdin=subprocess.DEVNULL,
            bufsize=1 << 16,
        )  # fmt: skip
        _widen_pipe(self.stdout)

    @property
    def stdout(self) -> IO[bytes]:
        assert self.proc.stdout is not None
        return self.proc.stdout

    def stderr_text(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")

    def finish(self) -> Outcome:
        """Wait for tshark and judge its stderr. Raises on errors; returns warnings."""
        self.stdout.close()
        code = self.proc.wait()
        err = self.stderr_text()
        self._stderr.close()
        return judge_stderr(self.capture, err, code, allow_cut_short=True)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._stderr.close()


PIPE_SIZE = 1 << 20


def _widen_pipe(stream: IO[bytes]) -> None:
    """A 1 MB pipe (Linux) instead of 64 KB (~30 packets of PDML): tshark and the parser
    stop waiting on each other at every burst. Best effort: refused above pipe-max-size."""
    try:
        import fcntl

        fcntl.fcntl(stream.fileno(), fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    except (ImportError, AttributeError, OSError):
        pass


def judge_stderr(capture: Path, err: str, code: int, *, allow_cut_short: bool) -> Outcome:
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith(_NOISE)]
    lua = [ln for ln in lines if "Lua:" in ln or "lua_script" in ln]
    if lua:
        raise LbreportError(t("err.plugin_lua", detail="\n".join(lua[:10])))
    outcome = Outcome()
    if any(_CUT_SHORT in ln for ln in lines):
        outcome.truncated = True
        if not allow_cut_short:
            raise LbreportError(t("err.tshark_failed", code=code, detail=lines[0]))
        return outcome
    if any(marker in ln for ln in lines for marker in _NOT_CAPTURE):
        raise LbreportError(t("err.not_capture", path=capture, detail=_strip(lines[0])))
    if code != 0:
        raise LbreportError(t("err.tshark_failed", code=code, detail=_strip(" ".join(lines))))
    outcome.warnings = lines
    return outcome


def _strip(line: str) -> str:
    return line.removeprefix("tshark: ").strip()


def read_positions(pid: int, capture: Path) -> list[int]:
    """How far (bytes) tshark has read the capture on each descriptor open on it, in
    descriptor order, from /proc (Linux; [] elsewhere). With -2, pass 1 reads sequentially on
    one descriptor and pass 2 re-reads frames through a second, random-access one."""
    target = os.path.realpath(capture)
    fd_dir = f"/proc/{pid}/fd"
    positions: list[tuple[int, int]] = []
    try:
        for fd in os.listdir(fd_dir):
            if os.path.realpath(os.path.join(fd_dir, fd)) == target:
                with open(f"/proc/{pid}/fdinfo/{fd}") as info:
                    for line in info:
                        if line.startswith("pos:"):
                            positions.append((int(fd), int(line.split()[1])))
    except OSError:
        return []
    return [pos for _, pos in sorted(positions)]

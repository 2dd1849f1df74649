"""Find and check tshark, build its command lines, run it, and interpret its stderr.

Everything that knows tshark's flags and messages lives here.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shlex
import shutil
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from lbreport import probe_cache
from lbreport.errors import LbreportError
from lbreport.messages import t

MINIMUM_VERSION = (4, 0)
# The newest Wireshark this release was verified on (CI runs 4.0, 4.4 and 4.6).
NEWEST_TESTED = (4, 6)
PLUGIN_NAME = "lblab.lua"
# The plugin lbreport runs and installs, with the LB-Lab profile beside it (profiles/): in an
# installed wheel, the package's wireshark/ folder (the repository's plugins/, copied when the
# wheel is built); in a checkout, <repo>/plugins/ itself, two levels above postproc/lbreport/.
_PACKAGED = Path(__file__).resolve().parent / "wireshark" / PLUGIN_NAME
REPO_PLUGIN = (_PACKAGED if _PACKAGED.is_file()
               else Path(__file__).resolve().parents[2] / "plugins" / PLUGIN_NAME)

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
    """`tshark -v` → version, and the Lua version it mentions (for messages only: whether Lua
    works is decided by loading the plugin, not by this text, whose wording changes: 4.0 and
    4.4 say `with Lua 5.2.4`, 4.6 lists `+Lua 5.4.9`)."""
    flat = " ".join(text.split())
    m = re.search(r"TShark \(Wireshark\) (\d+)\.(\d+)\.(\d+)", flat)
    if m is None:
        raise LbreportError(t("err.tshark_version", detail=text.strip()[:200] or "nothing"))
    lua = re.search(r"(?<![-\w])(?:with |\+)?Lua (\d[\d.]*)", flat)
    if lua and re.search(r"(?:without|-)\s*Lua", flat[max(0, lua.start() - 9):lua.end()]):
        lua = None
    version = tuple(int(x) for x in m.groups())
    return TsharkInfo(path, version, ".".join(m.groups()), lua.group(1) if lua else "")


def require(info: TsharkInfo) -> None:
    """Refuse a tshark too old to run the plugin."""
    minimum = ".".join(map(str, MINIMUM_VERSION))
    if info.version[:2] < MINIMUM_VERSION:
        raise LbreportError(t("err.tshark_old", version=info.version_text, minimum=minimum))


def untested(info: TsharkInfo) -> bool:
    """Newer than the newest Wireshark this release was verified on (README: versions)."""
    return info.version[:2] > NEWEST_TESTED


def listed_plugins(listing: str) -> list[tuple[str, Path]]:
    """Every installed lblab.lua in `tshark -G plugins` (name, version, type, path) as
    (version, path): one per copy Wireshark loads, so two entries mean the protocol is
    registered twice. A copy passed with -X is listed under the path it was given, not its
    file name, so it is not among them."""
    copies = []
    for line in listing.splitlines():
        parts = [p.strip() for p in line.split("\t")]
        if len(parts) >= 4 and parts[0] == PLUGIN_NAME:
            copies.append((parts[1], Path(parts[-1])))
    return copies


# pcap (both byte orders, µs and ns), pcapng, and the compressions tshark reads transparently.
_CAPTURE_MAGIC = (
    b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d",
    b"\x0a\x0d\x0d\x0a", b"\x1f\x8b", b"\x28\xb5\x2f\xfd", b"\x04\x22\x4d\x18",
)  # fmt: skip


def _head(path: Path, size: int, missing: str, directory: str, unreadable: str) -> bytes:
    """The first bytes of a file the user named, or the catalogue's message for why not."""
    if not path.exists():
        raise LbreportError(t(missing, path=path))
    if path.is_dir():
        raise LbreportError(t(directory, path=path))
    try:
        with path.open("rb") as f:
            return f.read(size)
    except OSError as exc:
        raise LbreportError(t(unreadable, path=path, reason=exc.strerror)) from None


def check_capture(path: Path) -> bool:
    """Problems tshark would report less clearly. Returns whether the file starts like a
    pcap/pcapng (tshark's heuristics read other bytes as exotic formats: a short text file
    can pass for "MP4 media" and an empty one for ERF)."""
    head = _head(path, 1 << 16, "err.missing", "err.directory", "err.unreadable")
    if not head:
        raise LbreportError(t("err.empty_file", path=path))
    if cut_before_first_packet(head, path.stat().st_size):
        raise LbreportError(t("err.cut_in_header", path=path, size=path.stat().st_size))
    return head.startswith(_CAPTURE_MAGIC)


def cut_before_first_packet(head: bytes, size: int) -> bool:
    """A pcap or pcapng file that ends inside its header or its first packet (tshark then
    guesses another format: a pcapng cut at 72 bytes reads as a one-frame MIME file)."""
    if head[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        order = "<"
    elif head[:4] in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        order = ">"
    elif head[:4] == b"\x0a\x0d\x0d\x0a":
        return _pcapng_cut(head, size)
    else:
        return False
    if size < 24:
        return True
    if size == 24:
        return False  # a whole header and no packet: empty, not cut
    if size < 40:
        return True
    (captured,) = struct.unpack_from(order + "I", head, 32)
    return size < 40 + captured


def _pcapng_cut(head: bytes, size: int) -> bool:
    """Walk the blocks in `head`: cut when the file ends inside one before any packet block."""
    if len(head) < 12:
        return True
    order = "<" if head[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
    offset = 0
    while offset + 8 <= len(head):
        kind, length = struct.unpack_from(order + "II", head, offset)
        if length < 12 or length % 4:
            return False  # damaged: tshark says what it makes of it
        if offset + length > size:
            return True
        if kind in (2, 3, 6):  # a packet block, complete
            return False
        offset += length
    return offset < size and offset + 8 > size


# --------------------------------------------------------------------------- privileges
# Wireshark 4.2+ ships no init.lua and, started as root, skips every user Lua script (`-X
# lua_script:`, the personal plugin folder) unless `run_user_scripts_when_superuser` is set;
# nothing is printed. lbreport then runs the dissecting tshark as an ordinary user: the
# capture needs no privilege to be read, and Wireshark itself recommends dissecting unprivileged.


@dataclass(frozen=True, slots=True)
class Unprivileged:
    """Run tshark as this user (`setpriv`), with a private HOME holding what it must read."""

    uid: int
    gid: int
    home: Path

    def wrap(self, argv: list[str]) -> list[str]:
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups",
                "--", *argv]

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(HOME=str(self.home), XDG_CONFIG_HOME=str(self.home / ".config"))
        return env

    def plugin_copy(self) -> Path:
        return self.home / PLUGIN_NAME

    def tshark_wrapper(self, tshark: str) -> Path:
        """A `tshark` for programs that start tshark themselves (pyshark, for `live`): it
        dissects as this user; listing interfaces (-D) and -v stay as they are. `dumpcap`
        beside it is the real one (pyshark looks for it next to tshark): capturing keeps the
        rights it has."""
        bin_dir = self.home / "bin"
        wrapper = bin_dir / "tshark"
        if not wrapper.exists():
            bin_dir.mkdir(mode=0o755, exist_ok=True)
            env = [f"HOME={self.home}", f"XDG_CONFIG_HOME={self.home / '.config'}"]
            dissect = " ".join(map(shlex.quote, self.wrap(["env", *env, tshark])))
            wrapper.write_text(
                "#!/bin/sh\n"
                f'case "$1" in -D|-v|--version) exec {shlex.quote(tshark)} "$@";; esac\n'
                f'exec {dissect} "$@"\n')
            wrapper.chmod(0o755)
            dumpcap = shutil.which("dumpcap", path=f"{Path(tshark).parent}:{os.defpath}")
            if dumpcap:
                (bin_dir / "dumpcap").symlink_to(dumpcap)
        return wrapper

    def readable(self, capture: Path) -> Path:
        """The capture (or a TLS key log) as that user can read it: itself, or a private
        copy."""
        probe = subprocess.run(self.wrap(["test", "-r", str(capture)]), env=self.env(),
                               stdin=subprocess.DEVNULL, capture_output=True, check=False)
        if probe.returncode == 0:
            return capture
        copy = self.home / "capture" / capture.name
        if not copy.exists():
            copy.parent.mkdir(mode=0o755, exist_ok=True)
            shutil.copyfile(capture, copy)
            os.chmod(copy, 0o644)
        return copy


def _unprivileged_user() -> tuple[int, int]:
    """Who `sudo` was run by, else nobody."""
    try:
        uid, gid = int(os.environ.get("SUDO_UID", "")), int(os.environ.get("SUDO_GID", ""))
        if uid > 0:
            return uid, gid
    except ValueError:
        pass
    try:
        import pwd

        entry = pwd.getpwnam("nobody")
        return entry.pw_uid, entry.pw_gid
    except (ImportError, KeyError):
        return 65534, 65534


_unprivileged: Unprivileged | None = None


def unprivileged() -> Unprivileged | None:
    """The unprivileged user and its HOME for this process (made once, removed at exit), or
    None when that cannot be done (not root, no setpriv)."""
    global _unprivileged
    if _unprivileged is not None:
        return _unprivileged
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        return None
    uid, gid = _unprivileged_user()
    home = Path(tempfile.mkdtemp(prefix="lbreport-"))
    atexit.register(shutil.rmtree, home, True)
    os.chown(home, uid, gid)
    os.chmod(home, 0o755)
    shutil.copyfile(REPO_PLUGIN, home / PLUGIN_NAME)
    os.chmod(home / PLUGIN_NAME, 0o644)
    _unprivileged = Unprivileged(uid, gid, home)
    return _unprivileged


# --------------------------------------------------------------------------- short questions


def _ask(argv: list[str], env: dict[str, str] | None = None,
         stdin: bytes = b"") -> tuple[str, str, int]:
    """Run a tshark that answers at once: (stdout, stderr, exit code)."""
    run = subprocess.run(argv, input=stdin, capture_output=True, env=env, check=False)
    return run.stdout.decode("utf-8", "replace"), run.stderr.decode("utf-8", "replace"), \
        run.returncode


def glossary(report: str) -> str:
    """`tshark -G REPORT` (`folders`, `plugins`): what Wireshark itself answers."""
    return _ask([find_tshark(), "-G", report])[0]


def folder_table(text: str) -> dict[str, str]:
    """`tshark -G folders` (lines `Name:<spaces>\tpath`) → {name: path}."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep and value.strip():
            found[name.strip()] = value.strip()
    return found


def plugin_listing(runner: Runner) -> str:
    """`tshark -G plugins` as the report's tshark runs (same user, same plugin copy): every
    copy it loads, with its version. Not part of the preflight: it starts every extcap tool."""
    argv = [runner.info.path, "-G", "plugins", *runner.plugin]
    return _ask(runner.wrap(argv), env=runner.env())[0]


def version() -> TsharkInfo:
    """`tshark -v`, read (raises when it names no version)."""
    path = find_tshark()
    return parse_version(_ask([path, "-v"])[0], path)


# A pcap header and no packet: reading it loads every dissector and plugin, and dissects nothing.
_EMPTY_PCAP = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)


def load_check(runner: Runner) -> str | None:
    """Load the plugin for real, as the report will: read an empty capture with a display
    filter naming the plugin's protocol (tshark refuses an unknown name, and Lua says why a
    script failed). None when it loads, else the reason."""
    argv = [runner.info.path, *runner.plugin, "-r", "-", "-Y", "lblab"]
    _, err, code = _ask(runner.wrap(argv), env=runner.env(), stdin=_EMPTY_PCAP)
    heard = said(err)
    if heard.lua:
        return lua_error(heard.lua)
    if code != 0:
        return t("doc.plugin_not_registered", detail=" ".join(heard.lines))
    return None


# --------------------------------------------------------------------------- the plugin probe


@dataclass(frozen=True, slots=True)
class PluginProbe:
    """What tshark says when asked to load the plugin: the plugin's own answer (the fields it
    registers, `-G fields`) rather than anything read from its source or from `tshark -v`."""

    fields: frozenset[str]  # lblab.* fields registered
    lua_errors: list[str]

    @property
    def loaded(self) -> bool:
        return "lblab.req" in self.fields

    @property
    def compact(self) -> bool:
        return "lblab.pkt" in self.fields

    @property
    def lab_when_seen(self) -> bool:
        """The preferences lblab.lab_when_seen and lblab.two_pass: the field that says which
        lab applied came with the first (the second came just before it)."""
        return "lblab.lab_applied" in self.fields


def _probe_runs(tshark: str, plugin: list[str]) -> dict[str, list[str]]:
    """`-G fields` as installed (an installed copy loads by itself) and with the given copy
    passed through -X."""
    runs = {"fields": [tshark, "-G", "fields"]}
    if plugin:
        runs["fields_x"] = [tshark, "-G", "fields", *plugin]
    return runs


# `-G fields` lists every field of every protocol (19 MB on 4.0): read as it streams by, only
# the lines that name an lblab field are kept.
_FIELD_RUNS = ("fields", "fields_x")
_LBLAB_FIELD = b"\tlblab."


def _grep_fields(stream: IO[bytes]) -> bytes:
    kept: list[bytes] = []
    tail = b""
    while chunk := stream.read(1 << 16):
        buf = tail + chunk
        cut = buf.rfind(b"\n") + 1
        if buf.find(_LBLAB_FIELD, 0, cut) >= 0:
            kept += [ln for ln in buf[:cut].split(b"\n") if _LBLAB_FIELD in ln]
        tail = buf[cut:]
    if _LBLAB_FIELD in tail:
        kept.append(tail)
    return b"\n".join(kept)


def _fields(out: str) -> frozenset[str]:
    return frozenset(
        parts[2] for line in out.splitlines()
        if (parts := line.split("\t")) and len(parts) > 2 and parts[0] == "F"
        and parts[2].startswith("lblab.")
    )


def _probe(outputs: dict[str, tuple[str, str, int]]) -> tuple[PluginProbe, PluginProbe]:
    """(the installed copy, the -X copy) as tshark loads them."""
    installed = PluginProbe(_fields(outputs["fields"][0]), [])
    out, err, _ = outputs.get("fields_x", ("", "", 0))
    return installed, PluginProbe(_fields(out), said(err).lua)


@dataclass(frozen=True, slots=True)
class Runner:
    """How every dissecting tshark is started: its path and version, the plugin copy that
    runs, whether it offers compact labels, the user it runs as (None: as we are), and whether
    the plugin offers lblab.lab_when_seen and lblab.two_pass (a plugin older than them refuses
    an unknown -o), and the lblab fields it registers (empty: not known)."""

    info: TsharkInfo
    plugin: list[str]
    compact: bool = False
    unprivileged: Unprivileged | None = None
    lab_when_seen: bool = False
    fields: frozenset[str] = frozenset()

    @property
    def two_pass(self) -> bool:
        return self.lab_when_seen

    @property
    def writes_labels(self) -> bool:
        """The plugin writes every frame's labels itself (`-z lblab,labels`)."""
        return LABELS_FIELD in self.fields and self.two_pass

    def wrap(self, argv: list[str]) -> list[str]:
        return self.unprivileged.wrap(argv) if self.unprivileged else argv

    def env(self) -> dict[str, str] | None:
        return self.unprivileged.env() if self.unprivileged else None

    def capture_path(self, capture: Path) -> Path:
        return self.unprivileged.readable(capture) if self.unprivileged else capture

    def keylog_pref(self, keylog: Path | None) -> list[str]:
        """`tls.keylog_file:FILE` for -o (or pyshark's override_prefs), FILE as the dissecting
        user can read it (a key log is private: often 0600, owned by the student)."""
        if keylog is None:
            return []
        return [f"tls.keylog_file:{self.capture_path(keylog.resolve())}"]


def check_keylog(path: Path) -> None:
    """A key log tshark could not use is ignored by tshark without a word (the report would
    just say "encrypted"): refuse it here, with the reason."""
    head = _head(path, 1 << 12, "err.keylog_missing", "err.keylog_directory",
                 "err.keylog_unreadable")
    if not _KEYLOG_LINE.search(head):
        raise LbreportError(t("err.keylog_format", path=path))


# An NSS key log line: a label (CLIENT_RANDOM, CLIENT_HANDSHAKE_TRAFFIC_SECRET, …), then hex.
_KEYLOG_LINE = re.compile(rb"(?m)^[A-Z_0-9]+ [0-9a-fA-F]{16,} [0-9a-fA-F]{16,}\s*$")


class PluginError(LbreportError):
    """tshark runs (`info`: its version, found good enough) but cannot run the plugin."""

    def __init__(self, message: str, info: TsharkInfo) -> None:
        super().__init__(message)
        self.info = info


def _no_plugin_error(info: TsharkInfo, probe: PluginProbe, as_root_skipped: bool) -> PluginError:
    if probe.lua_errors:
        return PluginError(lua_error(probe.lua_errors), info)
    if not info.lua:
        return PluginError(t("err.tshark_no_lua", version=info.version_text), info)
    if as_root_skipped and info.version[:2] >= (4, 2):
        return PluginError(t("err.root_skips_lua", version=info.version_text), info)
    return PluginError(t("err.plugin_not_loaded", version=info.version_text), info)


def make_runner(outputs: dict[str, tuple[str, str, int]], tshark: str) -> Runner:
    """Decide, from the probe runs' outputs, how tshark will run (raising PluginError when it
    cannot run the plugin at all, with the real cause)."""
    info = parse_version(outputs["version"][0], tshark)
    require(info)
    installed, repo = _probe(outputs)
    if installed.loaded:  # an installed copy wins: passing -X as well would load it twice
        return Runner(info, [], installed.compact, None, installed.lab_when_seen,
                      installed.fields)
    if repo.loaded:
        return Runner(info, _x(REPO_PLUGIN), repo.compact, None, repo.lab_when_seen, repo.fields)
    if repo.lua_errors:
        raise _no_plugin_error(info, repo, False)
    drop = unprivileged()
    if drop is not None:
        plugin = _x(drop.plugin_copy())
        runs = {name: drop.wrap(argv) for name, argv in _probe_runs(tshark, plugin).items()}
        _, as_user = _probe(_run_parallel(runs, env=drop.env()))
        if as_user.loaded:
            return Runner(info, plugin, as_user.compact, drop, as_user.lab_when_seen,
                          as_user.fields)
        if as_user.lua_errors:
            raise _no_plugin_error(info, as_user, False)
    raise _no_plugin_error(info, repo, os.geteuid() == 0)


@dataclass(frozen=True, slots=True)
class Preflight:
    """What lbreport learns from tshark before the real run (quick runs, in parallel)."""

    runner: Runner
    addresses: set[str]  # addresses in the capture's first frames ("" entries dropped)


def preflight(capture: Path | None, probe_frames: int = 500, *, cached: bool = True
              ) -> Preflight:
    """How tshark runs the plugin (probed, or as probe_cache kept it when `cached`) and, for a
    capture, the addresses in its first frames (which lab applies)."""
    tshark = find_tshark()
    memo = _Memo(tshark) if cached else None
    runner = memo.runner() if memo else None
    runs: dict[str, list[str]] = {}
    if runner is None:
        plugin = _x(REPO_PLUGIN) if REPO_PLUGIN.is_file() else []
        runs = {"version": [tshark, "-v"], **_probe_runs(tshark, plugin)}
        if memo and memo.folders is None:
            runs["folders"] = [tshark, "-G", "folders"]
    if capture is not None:
        runs["addresses"] = _addresses_run(tshark, capture, probe_frames)
    outputs = _run_parallel(runs)
    if runner is None:
        runner = make_runner(outputs, tshark)
        if memo:
            memo.keep(runner, outputs)
    addresses: set[str] = set()
    if capture is not None:
        addresses = _addresses(capture, *outputs["addresses"])
    return Preflight(runner, addresses)


def capture_addresses(capture: Path, probe_frames: int = 500) -> set[str]:
    """The addresses in a capture's first frames, for a plugin without lblab.lab_when_seen
    (lbreport then chooses the lab before dissecting: pipeline.choose_lab)."""
    argv = _addresses_run(find_tshark(), capture, probe_frames)
    return _addresses(capture, *_run_parallel({"addresses": argv})["addresses"])


def _addresses_run(tshark: str, capture: Path, probe_frames: int) -> list[str]:
    return [
        tshark, "-n", "-r", str(capture), "-c", str(probe_frames), "-T", "fields",
        "-E", "separator=,", "-E", "occurrence=a", "-E", "aggregator=,",
        "-e", "ip.addr", "-e", "ipv6.addr", "-e", "arp.src.proto_ipv4",
        "-e", "arp.dst.proto_ipv4",
    ]  # fmt: skip


def _addresses(capture: Path, out: str, err: str, code: int) -> set[str]:
    judge_stderr(capture, err, code)
    return {a for a in re.split(r"[,\s]+", out) if a}


class _Memo:
    """The probe's answer for this tshark as probe_cache keeps it: which copy of the plugin
    runs (installed, the repository's through -X, or that one as an unprivileged user),
    whether it is compact, and what `-v` said."""

    def __init__(self, tshark: str) -> None:
        self.tshark = tshark
        self.folders: dict[str, str] | None = probe_cache.get(
            "folders", probe_cache.tshark_key(tshark))
        self.key = (None if self.folders is None
                    else probe_cache.probe_key(tshark, self.folders, REPO_PLUGIN))

    def runner(self) -> Runner | None:
        kept = probe_cache.get("runner", self.key)
        try:
            info = parse_version(kept["version"], self.tshark)
            how, compact = kept["how"], bool(kept["compact"])
            lab_when_seen = bool(kept["lab_when_seen"])  # absent: kept by an older lbreport
            fields = frozenset(map(str, kept["fields"]))  # likewise
        except (TypeError, KeyError, LbreportError):
            return None
        drop = unprivileged() if how == "unprivileged" else None
        plugin = {"installed": [], "repo": _x(REPO_PLUGIN),
                  "unprivileged": _x(drop.plugin_copy()) if drop else None}.get(how)
        if plugin is None:
            return None
        return Runner(info, plugin, compact, drop, lab_when_seen, fields)

    def keep(self, runner: Runner, outputs: dict[str, tuple[str, str, int]]) -> None:
        if self.folders is None:
            self.folders = folder_table(outputs["folders"][0])
            probe_cache.put("folders", probe_cache.tshark_key(self.tshark), self.folders)
            self.key = probe_cache.probe_key(self.tshark, self.folders, REPO_PLUGIN)
        how = ("unprivileged" if runner.unprivileged else "repo" if runner.plugin
               else "installed")
        probe_cache.put("runner", self.key, {
            "version": outputs["version"][0], "how": how, "compact": runner.compact,
            "lab_when_seen": runner.lab_when_seen, "fields": sorted(runner.fields)})


# The plugin's compact mode: one `lblab.pkt` field per packet instead of nine, a third less
# PDML for lxml to parse (the report's bottleneck). The GUI keeps the separate fields.
COMPACT_PREF = "lblab.compact:TRUE"
# With -2 the plugin's first pass only records: its labels would be discarded (two-pass runs
# only; a single pass, live, needs the labels of the one pass there is).
TWO_PASS_PREF = "lblab.two_pass:TRUE"
# The configured balancer/backends/clients apply only if the capture shows that lab (else the
# plugin infers roles); frame 1's lblab.lab_applied says which happened.
LAB_WHEN_SEEN_PREF = "lblab.lab_when_seen:TRUE"
# The plugin's labels of every frame, written once the capture is read (labels.py).
LABELS_STAT = "lblab,labels"
# Its registration says the plugin offers LABELS_STAT (the field its output carries errors in).
LABELS_FIELD = "lblab.lua_error"


def _x(plugin: Path) -> list[str]:
    return ["-X", f"lua_script:{plugin}"]


def _run_parallel(runs: dict[str, list[str]], env: dict[str, str] | None = None
                  ) -> dict[str, tuple[str, str, int]]:
    """Start every run at once and read each one's output in its own thread (a `-G fields`
    run filtered as it streams); stderr goes to a file, so no pipe is left unread."""
    with contextlib.ExitStack() as stack:
        procs = {}
        for name, argv in runs.items():
            err = stack.enter_context(tempfile.TemporaryFile())
            proc = stack.enter_context(subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, env=env))
            procs[name] = (proc, err)
        outs: dict[str, bytes] = {}

        def read(name: str, stream: IO[bytes]) -> None:
            outs[name] = _grep_fields(stream) if name in _FIELD_RUNS else stream.read()

        threads = [threading.Thread(target=read, args=(name, proc.stdout), daemon=True)
                   for name, (proc, _) in procs.items()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        results = {}
        for name, (proc, err) in procs.items():
            code = proc.wait()
            err.seek(0)
            results[name] = (outs.get(name, b"").decode("utf-8", "replace"),
                             err.read().decode("utf-8", "replace"), code)
    return results


def pdml_command(runner: Runner, capture: Path, prefs: list[str],
                 keylog: Path | None = None, *, lab_when_seen: bool = False,
                 fields: tuple[str, ...] = ()) -> list[str]:
    """Two passes so labels may use later frames; `-Y frame` so pass 1 builds trees (without
    a filter, `-2` leaves every Field extractor nil); never `-2 -R`. `keylog`: TLS secrets
    (NSS key log) so that HTTPS is read as HTTP. `lab_when_seen`: `prefs`' addresses apply
    only if the capture shows that lab (the runner must offer it: runner.lab_when_seen).

    `fields`: what the reader reads. PDML with `-e` holds geninfo (frame number, timestamp)
    and those fields only, a third of `-J lblab`'s bytes (which still writes a stub for every
    other protocol of the packet), so lxml parses a third as much beside a tshark that shares
    the machine's cores; tshark itself writes it a little faster. Only the lblab
    fields the plugin registers are asked for (tshark refuses an unknown `-e`); with none
    known, `-J lblab`."""
    argv = [runner.info.path, "-n", "-2", "-Y", "frame", "-r", str(capture), *runner.plugin,
            *_report_prefs(runner, prefs, keylog, lab_when_seen)]
    asked = [name for name in fields
             if name in runner.fields or not name.startswith("lblab.")] if runner.fields else []
    if not asked:
        return runner.wrap([*argv, "-T", "pdml", "-J", "lblab"])
    return runner.wrap([*argv, "-T", "pdml", *(arg for name in asked for arg in ("-e", name))])


def labels_command(runner: Runner, capture: Path, prefs: list[str],
                   keylog: Path | None = None, *, lab_when_seen: bool = False) -> list[str]:
    """The report's run where the plugin offers it (runner.writes_labels): one dissection,
    the plugin recording only (lblab.two_pass), then writing every frame's labels once the
    capture is read (`-z lblab,labels`, read by labels.py). `-Y frame` so the only pass
    builds trees (the extractors read nothing without one); `-q`: tshark writes nothing of
    its own. Half the work of pdml_command's two passes, tree items and PDML."""
    return runner.wrap([runner.info.path, "-n", "-q", "-Y", "frame", "-r", str(capture),
                        *runner.plugin, *_report_prefs(runner, prefs, keylog, lab_when_seen),
                        "-z", LABELS_STAT])


def _report_prefs(runner: Runner, prefs: list[str], keylog: Path | None,
                  lab_when_seen: bool) -> list[str]:
    """-o arguments of the report's run: the lab, the key log, what the plugin offers."""
    argv: list[str] = []
    for pref in [*prefs, *runner.keylog_pref(keylog),
                 *([COMPACT_PREF] if runner.compact else []),
                 *([LAB_WHEN_SEEN_PREF] if lab_when_seen else []), *_two_pass(runner)]:
        argv += ["-o", pref]
    return argv


def fields_command(runner: Runner, capture: Path, prefs: list[str], fields: list[str],
                   keylog: Path | None = None) -> list[str]:
    argv = [runner.info.path, "-n", "-2", "-Y", "frame", "-r", str(capture), *runner.plugin]
    for pref in [*prefs, *runner.keylog_pref(keylog), *_two_pass(runner)]:
        argv += ["-o", pref]
    argv += ["-T", "fields", "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=|"]
    for name in fields:
        argv += ["-e", name]
    return runner.wrap(argv)


def _two_pass(runner: Runner) -> list[str]:
    return [TWO_PASS_PREF] if runner.two_pass else []


# No progress for this long (tshark used no CPU, nothing of its output was read, lbreport
# itself computed nothing) means both sides wait for each other: stop tshark and say so.
STALL_SECONDS = 60.0


class TsharkRun:
    """A running tshark whose stdout is streamed; stderr goes to a temporary file so a chatty
    tshark can never block on a full pipe while we read stdout. A watchdog thread turns any
    stall into an error instead of a hang."""

    def __init__(self, argv: list[str], capture: Path, env: dict[str, str] | None = None,
                 stall_seconds: float = STALL_SECONDS, reads: Path | None = None) -> None:
        self.argv = argv
        self.capture = capture  # as the user named it (messages)
        self.reads = reads or capture  # the file tshark reads (a private copy when unprivileged)
        self.stalled = False
        # Closed in close(): its life spans the caller's read loop.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=self._stderr, stdin=subprocess.DEVNULL,
            bufsize=1 << 16, env=env,
        )  # fmt: skip
        assert self.proc.stdout is not None
        _widen_pipe(self.proc.stdout)
        self._out = _CountingReader(self.proc.stdout)
        self._done = threading.Event()
        self._stall_seconds = stall_seconds
        threading.Thread(target=self._watch, name="tshark-watchdog", daemon=True).start()

    @property
    def stdout(self) -> IO[bytes]:
        return self._out  # type: ignore[return-value]

    def stderr_text(self) -> str:
        if self._stderr.closed:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")

    def _watch(self) -> None:
        last = (-1, -1, -1.0)
        since = time.monotonic()
        while not self._done.wait(min(2.0, self._stall_seconds / 4)):
            if self.proc.poll() is not None:
                return
            now = (_cpu_ticks(self.proc.pid), self._out.count, round(time.process_time(), 1))
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= self._stall_seconds:
                self.stalled = True
                self.proc.kill()
                return

    def finish(self) -> Outcome:
        """Wait for tshark and judge its stderr. Raises on errors; returns warnings."""
        self.proc.stdout.close()  # type: ignore[union-attr]
        code = self.proc.wait()
        self._done.set()
        if self.stalled:
            raise LbreportError(t("err.stalled", seconds=int(self._stall_seconds)))
        err = self.stderr_text()
        self.close()
        return judge_stderr(self.capture, err, code)

    def kill(self) -> None:
        """Stop tshark now (never wait for a writer whose output nobody reads)."""
        self._done.set()
        if self.proc.poll() is None:
            self.proc.kill()
        with contextlib.suppress(OSError, ValueError):
            self.proc.stdout.close()  # type: ignore[union-attr]
        self.proc.wait()

    def close(self) -> None:
        self.kill()
        self._stderr.close()


class _CountingReader:
    """tshark's stdout, counting what the parser has read (the watchdog's sign of life)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self.count += len(data)
        return data

    def __iter__(self) -> Iterator[bytes]:
        for line in self._raw:
            self.count += len(line)
            yield line

    def fileno(self) -> int:
        return self._raw.fileno()

    def close(self) -> None:
        self._raw.close()


def _cpu_ticks(pid: int) -> int:
    """utime + stime of a process, from /proc (-1 where unavailable)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return -1


PIPE_SIZE = 1 << 20


def _widen_pipe(stream: IO[bytes]) -> None:
    """A 1 MB pipe (Linux) instead of 64 KB (~30 packets of PDML): tshark and the parser
    stop waiting on each other at every burst. Best effort: refused above pipe-max-size."""
    try:
        import fcntl

        fcntl.fcntl(stream.fileno(), fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    except (ImportError, AttributeError, OSError):
        pass


@dataclass(frozen=True, slots=True)
class Said:
    """tshark's stderr, judged once for every caller: what it said (its warning about running
    as root is not an error), and which of that is Lua failing to load or run the plugin."""

    lines: list[str]
    lua: list[str]


def said(err: str) -> Said:
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith(_NOISE)]
    return Said(lines, [ln for ln in lines if "Lua:" in ln or "lua_script" in ln])


def lua_error(lua: list[str]) -> str:
    """The message for Lua's complaints about the plugin."""
    return t("err.plugin_lua", detail="\n".join(lua[:10]))


def judge_stderr(capture: Path, err: str, code: int) -> Outcome:
    """Raises on what stops the report (a Lua error, not a capture, tshark failing); a capture
    cut short in the middle of a packet is reported as far as it was read (`truncated`)."""
    heard = said(err)
    if heard.lua:
        raise LbreportError(lua_error(heard.lua))
    lines = heard.lines
    if any(_CUT_SHORT in ln for ln in lines):
        return Outcome(truncated=True)
    if any(marker in ln for ln in lines for marker in _NOT_CAPTURE):
        raise LbreportError(t("err.not_capture", path=capture, detail=_strip(lines[0])))
    if code != 0:
        raise LbreportError(t("err.tshark_failed", code=code, detail=_strip(" ".join(lines))))
    return Outcome(warnings=lines)


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

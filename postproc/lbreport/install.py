"""`lbreport install [--system] [--lab LAB] [--uninstall]` and the plugin-version check of
`lbreport doctor`.

Every folder comes from `tshark -G folders` (the same answer Wireshark gives in Help → About →
Folders), never from a guess: the personal Lua plugin folder moves with HOME, XDG_CONFIG_HOME and
the platform, and a copy in the wrong folder silently does nothing.

With `--lab`, the profile also names the lab's hosts: a `hosts` file in the profile folder
(Wireshark 4.0 to 4.6 read one there) with M3, the backends' roles and client(s), and in its
`preferences` network name resolution from it, never from DNS, so Conversations, Endpoints,
Flow Graph and the address columns say M3, M1, M2, client. Without a lab no hosts file is
written (the names would be a guess) and resolution stays off: switched on without one it would
name addresses from /etc/hosts and the capture's DNS answers instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from lbreport import tshark
from lbreport.config import Lab
from lbreport.errors import LbreportError
from lbreport.messages import t
from lbreport.vocabulary import BALANCER, CLIENT, role_sort

PROFILE_NAME = "LB-Lab"
# The repository's profile: <repo>/plugins/profiles/LB-Lab, beside the plugin.
REPO_PROFILE = tshark.REPO_PLUGIN.parent / "profiles" / PROFILE_NAME

# `local VERSION = "0.1.0"` at the top of lblab.lua; set_plugin_info{version = ...} as a
# fallback for a copy that spells it inline.
_VERSION_RE = re.compile(r'^\s*(?:local\s+)?VERSION\s*=\s*"([^"]+)"', re.MULTILINE)
_INFO_RE = re.compile(r'set_plugin_info\s*\(?\s*\{[^}]*?\bversion\s*=\s*"([^"]+)"', re.DOTALL)
# How a file is recognised as the lblab plugin before anything deletes it.
_PROTO_RE = re.compile(r'Proto\s*\(\s*"lblab"')

# The profile's names for the lab's hosts. Its first line marks it as ours: uninstall, or an
# install without --lab, removes a hosts file only when it starts with this line.
HOSTS = "hosts"
HOSTS_MARKER = "# lblab: the lab's hosts by role, written by `lbreport install --lab`"
# Appended to the profile's preferences with a hosts file: names from it (and the capture's own
# DNS answers), no DNS queries.
NAMERES = (
    "\n# lbreport install --lab: the hosts file beside this one names the lab's hosts\n"
    "nameres.network_name: TRUE\n"
    "nameres.use_external_name_resolver: FALSE\n"
)

_FOLDER_KEYS = {
    "Personal Lua Plugins": "personal_lua",
    "Global Lua Plugins": "global_lua",
    "Personal configuration": "personal_config",
}


@dataclass(frozen=True, slots=True)
class Folders:
    personal_lua: Path
    global_lua: Path
    personal_config: Path

    @property
    def profiles(self) -> Path:
        return self.personal_config / "profiles"

    def lua(self, system: bool) -> Path:
        return self.global_lua if system else self.personal_lua


@dataclass(slots=True)
class Outcome:
    """What install/uninstall did, one line per file or folder, plus warnings."""

    done: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def text(self) -> str:
        return "\n".join([*self.done, *(t("install.warning", text=w) for w in self.warnings)])


def parse_folders(text: str) -> Folders:
    """`tshark -G folders` → the three folders install needs. Lines are `Name:<spaces>\\tpath`."""
    table = tshark.folder_table(text)
    found = {key: Path(table[name]) for name, key in _FOLDER_KEYS.items() if name in table}
    missing = [name for name, key in _FOLDER_KEYS.items() if key not in found]
    if missing:
        raise LbreportError(t("install.err.folders", missing=", ".join(missing)))
    return Folders(**found)


def wireshark_folders() -> Folders:
    return parse_folders(tshark.glossary("folders"))


def version_of(text: str) -> str | None:
    m = _VERSION_RE.search(text) or _INFO_RE.search(text)
    return m.group(1) if m else None


def plugin_version(path: Path) -> str | None:
    """The version a plugin file declares, None if unreadable or undeclared."""
    try:
        return version_of(path.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return None


def _sha(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _copy(src: Path, dst: Path) -> None:
    _write(src.read_bytes(), dst)


def _write(data: bytes, dst: Path) -> None:
    """Write dst next to itself, then rename: a Wireshark starting meanwhile never reads a
    half-written plugin or preferences file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", dir=dst.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a --system plugin must be readable by all
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_error(path: Path, exc: OSError, system: bool) -> LbreportError:
    key = "install.err.write_system" if system else "install.err.write"
    return LbreportError(t(key, path=path, reason=exc.strerror or exc))


def profile_files() -> list[Path]:
    """The files of the repository's LB-Lab profile (what install copies, uninstall removes)."""
    if not REPO_PROFILE.is_dir():
        raise LbreportError(t("install.err.no_profile", path=REPO_PROFILE))
    return sorted(p for p in REPO_PROFILE.iterdir() if p.is_file())


def host_names(lab: Lab) -> list[tuple[str, str]]:
    """(address, name) for every address of the lab: the balancer M3, each backend its role,
    the client `client`, or client1..N in address order when there are several. An address
    named twice keeps its first name (balancer, then backends, then clients)."""
    named: dict[ipaddress.IPv4Address | ipaddress.IPv6Address, str] = {}
    for addr in lab.balancer:
        named.setdefault(ipaddress.ip_address(addr), BALANCER)
    for role in role_sort(lab.backends):
        for addr in lab.backends[role]:
            named.setdefault(ipaddress.ip_address(addr), role)
    clients = sorted({a for a in map(ipaddress.ip_address, lab.clients) if a not in named},
                     key=lambda a: (a.version, a))
    for i, addr in enumerate(clients, 1):
        named[addr] = CLIENT if len(clients) == 1 else f"{CLIENT}{i}"
    return [(str(addr), name) for addr, name in named.items()]


def hosts_text(lab: Lab) -> str:
    """The profile's hosts file for `lab` (Wireshark reads it like /etc/hosts)."""
    lines = [HOSTS_MARKER, f"# {lab.source}"]
    lines += [f"{addr}\t{name}" for addr, name in host_names(lab)]
    return "\n".join(lines) + "\n"


def _ours(path: Path) -> bool:
    """A hosts file install wrote (its first line is the marker)."""
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            return f.readline().rstrip("\r\n") == HOSTS_MARKER
    except OSError:
        return False


def install(system: bool = False, folders: Folders | None = None,
            lab: Lab | None = None) -> Outcome:
    """Copy the plugin into the personal (or global) Lua plugin folder and the LB-Lab profile
    into the personal profiles folder; replace older copies and say which version they were.
    `lab`: also name its hosts in the profile (module docstring)."""
    folders = folders or wireshark_folders()
    if not tshark.REPO_PLUGIN.is_file():
        raise LbreportError(t("install.err.no_plugin", path=tshark.REPO_PLUGIN))
    files = profile_files()
    new_version = plugin_version(tshark.REPO_PLUGIN) or t("install.version_unknown")
    out = Outcome()

    target = folders.lua(system) / tshark.PLUGIN_NAME
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            what = t("install.installed", version=new_version, path=target)
        elif _sha(target) == _sha(tshark.REPO_PLUGIN):
            what = t("install.identical", version=new_version, path=target)
        else:
            old = plugin_version(target) or t("install.unknown_version")
            what = t("install.replaced", old=old, version=new_version, path=target)
        _copy(tshark.REPO_PLUGIN, target)
    except OSError as exc:
        raise _write_error(target, exc, system) from None
    out.done.append(what)

    profile_dir = folders.profiles / PROFILE_NAME
    try:
        profile_dir.mkdir(parents=True, exist_ok=True)
        hosts = _hosts(profile_dir / HOSTS, lab, out)
        for src in files:
            data = src.read_bytes()
            if hosts and src.name == "preferences":
                data += NAMERES.encode("utf-8")
            _write_profile_file(profile_dir / src.name, data, out)
        if hosts:
            _write_profile_file(profile_dir / HOSTS, hosts.encode("utf-8"), out)
    except OSError as exc:
        raise _write_error(profile_dir, exc, False) from None

    # Ask Wireshark itself what it will load: the copy just written, and nothing else.
    copies = tshark.listed_plugins(tshark.glossary("plugins"))
    if not any(path.resolve() == target.resolve() for _, path in copies):
        out.warnings.append(_not_listed_reason(target, system))
    for version, path in copies:
        if path.resolve() != target.resolve():
            command = "lbreport install --uninstall" + ("" if system else " --system")
            out.warnings.append(t("install.other_copy", version=version, path=path,
                                  command=command))
    out.done.append(t("install.use_it", profile=PROFILE_NAME))
    return out


def _hosts(path: Path, lab: Lab | None, out: Outcome) -> str:
    """The hosts file to write ("" for none): the lab's names, unless the profile holds a hosts
    file install did not write (kept, with a warning). With no names to write, one an earlier
    install wrote is removed: the profile is what this install says."""
    if lab is not None and not host_names(lab):
        out.warnings.append(t("install.hosts_no_address", lab=lab.source))
    if lab is None or not host_names(lab):
        if _ours(path):
            path.unlink()
            out.done.append(t("install.hosts_removed", path=path))
        return ""
    if path.exists() and not _ours(path):
        out.warnings.append(t("install.hosts_foreign", path=path, marker=HOSTS_MARKER))
        return ""
    return hosts_text(lab)


def _write_profile_file(dst: Path, data: bytes, out: Outcome) -> None:
    if not dst.exists():
        key = "install.profile_installed"
    elif _sha(dst) == hashlib.sha256(data).hexdigest():
        key = "install.profile_unchanged"
    else:
        key = "install.profile_replaced"
    _write(data, dst)
    out.done.append(t(key, profile=PROFILE_NAME, name=dst.name, path=dst))


def _not_listed_reason(target: Path, system: bool) -> str:
    """Why Wireshark does not list the copy just written, as precisely as we can tell."""
    if not system and os.geteuid() == 0:
        with contextlib.suppress(LbreportError):
            info = tshark.version()
            if info.version[:2] >= (4, 2):
                return t("install.root_skips", version=info.version_text, path=target)
    return t("install.not_listed", path=target)


def uninstall(system: bool = False, folders: Folders | None = None) -> Outcome:
    """Remove exactly what install put there: the plugin file and the profile's files by name.
    Files Wireshark wrote into the profile folder later (`recent`) are not ours: the folder is
    kept, and the report says so."""
    folders = folders or wireshark_folders()
    out = Outcome()
    target = folders.lua(system) / tshark.PLUGIN_NAME
    if target.is_file():
        text = target.read_text(encoding="utf-8", errors="replace")
        if not _PROTO_RE.search(text):
            raise LbreportError(t("install.err.not_lblab", path=target))
        try:
            target.unlink()
        except OSError as exc:
            raise _write_error(target, exc, system) from None
        out.done.append(t("install.removed", path=target,
                          version=version_of(text) or t("install.unknown_version_paren")))
    else:
        out.done.append(t("install.nothing_to_remove", path=target))

    profile_dir = folders.profiles / PROFILE_NAME
    for src in profile_files():
        dst = profile_dir / src.name
        if dst.is_file():
            dst.unlink()
            out.done.append(t("install.profile_removed", profile=PROFILE_NAME, name=src.name,
                              path=dst))
    hosts = profile_dir / HOSTS
    if _ours(hosts):
        hosts.unlink()
        out.done.append(t("install.profile_removed", profile=PROFILE_NAME, name=HOSTS,
                          path=hosts))
    if profile_dir.is_dir():
        left = sorted(p.name for p in profile_dir.iterdir())
        if left:
            out.warnings.append(t("install.profile_kept", path=profile_dir,
                                  files=", ".join(left)))
        else:
            profile_dir.rmdir()
            out.done.append(t("install.profile_folder_removed", path=profile_dir))
    else:
        out.done.append(t("install.no_profile", profile=PROFILE_NAME, path=profile_dir))
    return out


def version_check(listing: str) -> tuple[bool, str]:
    """For `lbreport doctor`: the plugin's version, and whether the copy Wireshark loads is the
    repository's. A different installed version means the report's labels come from other code
    than the repository's: reinstall."""
    repo = plugin_version(tshark.REPO_PLUGIN) if tshark.REPO_PLUGIN.is_file() else None
    copies = tshark.listed_plugins(listing)
    if not copies:
        return repo is not None, t("install.version_repo",
                                   version=repo or t("install.version_unknown"))
    if len(copies) > 1:
        where = ", ".join(t("install.version_at", version=v, path=p) for v, p in copies)
        return False, t("install.version_twice", where=where)
    installed, path = copies[0]
    if repo is None or installed == repo:
        return True, t("install.version_installed", version=installed, path=path)
    return False, t("install.version_differs", version=installed, path=path, repo=repo)

"""`lbreport install [--system] [--uninstall]` and the plugin-version check of `lbreport doctor`.

Every folder comes from `tshark -G folders` (the same answer Wireshark gives in Help → About →
Folders), never from a guess: the personal Lua plugin folder moves with HOME, XDG_CONFIG_HOME and
the platform, and a copy in the wrong folder silently does nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from lbreport import tshark
from lbreport.errors import LbreportError
from lbreport.messages import t

PROFILE_NAME = "LB-Lab"
# The repository's profile: <repo>/plugins/profiles/LB-Lab, beside the plugin.
REPO_PROFILE = tshark.REPO_PLUGIN.parent / "profiles" / PROFILE_NAME

# `local VERSION = "0.1.0"` at the top of lblab.lua; set_plugin_info{version = ...} as a
# fallback for a copy that spells it inline.
_VERSION_RE = re.compile(r'^\s*(?:local\s+)?VERSION\s*=\s*"([^"]+)"', re.MULTILINE)
_INFO_RE = re.compile(r'set_plugin_info\s*\(?\s*\{[^}]*?\bversion\s*=\s*"([^"]+)"', re.DOTALL)
# How a file is recognised as the lblab plugin before anything deletes it.
_PROTO_RE = re.compile(r'Proto\s*\(\s*"lblab"')

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
    """Write dst next to itself, then rename: a Wireshark starting meanwhile never reads a
    half-written plugin or preferences file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", dir=dst.parent)
    try:
        with os.fdopen(fd, "wb") as out, src.open("rb") as inp:
            shutil.copyfileobj(inp, out)
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


def install(system: bool = False, folders: Folders | None = None) -> Outcome:
    """Copy the plugin into the personal (or global) Lua plugin folder and the LB-Lab profile
    into the personal profiles folder; replace older copies and say which version they were."""
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
        for src in files:
            dst = profile_dir / src.name
            if not dst.exists():
                key = "install.profile_installed"
            elif _sha(dst) == _sha(src):
                key = "install.profile_unchanged"
            else:
                key = "install.profile_replaced"
            _copy(src, dst)
            out.done.append(t(key, profile=PROFILE_NAME, name=src.name, path=dst))
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

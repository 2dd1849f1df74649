"""What tshark answered about the plugin, kept between runs.

Learning whether and how tshark loads the plugin takes four tshark starts (its version, its
plugin list, and the fields it registers with and without the repository's copy): most of a
small capture's time. The answer can only change with what goes into it, so it is kept under a
key made of all of that: tshark's binary and libraries, who runs it and the environment that
names its folders, the repository plugin's bytes, every file in Wireshark's Lua plugin folders
(an installed copy, another version of it) and the `init.lua` files that switch Lua on or off.
Any change there is a new key, hence a new probe. Only answers that let the report run are kept.

The file is `$XDG_CACHE_HOME/lbreport/preflight.json` (else `~/.cache/...`); `LBREPORT_CACHE=0`
turns it off. A cache that cannot be read or written is simply not used.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

FORMAT = 1
MAX_ENTRIES = 16  # answers kept per kind (several HOMEs, tshark builds or plugin versions)
MAX_FILES = 5000  # a Lua folder holding more files than this is not walked: no cache
# The environment that moves Wireshark's folders (HOME, XDG_*, WIRESHARK_CONFIG_DIR, …).
_ENV_PREFIXES = ("WIRESHARK_",)
_ENV_NAMES = ("HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME")


def _file() -> Path | None:
    if os.environ.get("LBREPORT_CACHE") == "0":
        return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "lbreport" / "preflight.json"


def _stat(path: str | Path) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def tshark_key(tshark: str) -> str:
    """The binary (and the libwireshark beside its lib folder), the user, the environment."""
    real = os.path.realpath(tshark)
    env = {k: v for k, v in os.environ.items() if k.startswith(_ENV_PREFIXES) or k in _ENV_NAMES}
    return _digest([FORMAT, real, _stat(real), os.geteuid(), env])


def probe_key(tshark: str, folders: dict[str, str], plugin: Path) -> str | None:
    """tshark_key plus the plugin's bytes and the state of every folder it loads Lua from;
    None when that state cannot be read cheaply."""
    try:
        plugin_hash = hashlib.sha256(plugin.read_bytes()).hexdigest()
    except OSError:
        plugin_hash = None
    files: list[object] = []
    for name in ("Personal Lua Plugins", "Global Lua Plugins"):
        walked = _walk(folders.get(name, ""))
        if walked is None:
            return None
        files.append(walked)
    for name in ("Personal configuration", "Global configuration"):
        files.append(_stat(Path(folders.get(name, "/nonexistent")) / "init.lua"))
    # The libraries the global plugin folder sits beside (…/x86_64-linux-gnu/wireshark/plugins).
    global_lua = folders.get("Global Lua Plugins", "")
    if global_lua:
        libdir = Path(global_lua).parent.parent
        with contextlib.suppress(OSError):
            files.append([(p.name, _stat(p)) for p in sorted(libdir.glob("libwireshark.so*"))])
    return _digest([tshark_key(tshark), plugin_hash, files])


def _walk(folder: str) -> list[object] | None:
    """Every file under a plugin folder (Wireshark loads Lua from subfolders too) with its
    size, time and inode."""
    if not folder:
        return []
    found: list[object] = []
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        for name in sorted(names):
            path = os.path.join(root, name)
            found.append((path, _stat(path)))
        if len(found) > MAX_FILES:
            return None
    return found


def _load() -> dict[str, Any]:
    path = _file()
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and data.get("format") == FORMAT else {}


def get(kind: str, key: str | None) -> Any:
    """The answer kept for `key` (None: none)."""
    if key is None:
        return None
    entries = _load().get(kind)
    return entries.get(key) if isinstance(entries, dict) else None


def put(kind: str, key: str | None, value: object) -> None:
    """Keep an answer (written beside the file, then renamed: readers never see half)."""
    path = _file()
    if key is None or path is None:
        return
    data = _load() or {"format": FORMAT}
    entries = data.get(kind) if isinstance(data.get(kind), dict) else {}
    entries.pop(key, None)
    entries[key] = value
    data[kind] = dict(list(entries.items())[-MAX_ENTRIES:])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".preflight.", dir=path.parent)
    except OSError:
        return
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out)
        os.replace(tmp, path)
    except OSError:
        Path(tmp).unlink(missing_ok=True)

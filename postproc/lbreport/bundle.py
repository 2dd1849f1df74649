"""`lbreport bundle`: the zip an instructor hands out to a class.

Layout (one top folder, so unzipping never spills files into the student's Downloads):

    lblab-student-<version>/
        lblab.lua               the plugin, copied into the personal Lua plugins folder
        LB-Lab/                 the profile, copied into <personal configuration>/profiles/
        LB-Lab-profile.zip      the same profile for Edit → Configuration Profiles → Import
        GUIDE.en.md, GUIDE.es.md

Wireshark's importer (ui/qt/utils/wireshark_zip_helper.cpp, 4.0) only extracts entries whose
name contains "/", and takes each top-level folder holding a non-comment config line as one
profile named after the folder: so the inner zip holds `LB-Lab/preferences`, … exactly as
Wireshark's own export writes them (paths relative to the profiles folder, no directory entries).
"""

from __future__ import annotations

import io
import os
import tempfile
import time
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

from lbreport import install, tshark
from lbreport.errors import LbreportError
from lbreport.messages import t

GUIDES = ("GUIDE.en.md", "GUIDE.es.md")


@dataclass(frozen=True, slots=True)
class Bundle:
    path: Path
    version: str
    members: list[str]


def plugin_version() -> str:
    version = install.plugin_version(tshark.REPO_PLUGIN)
    if version is None:
        raise LbreportError(t("bundle.err.no_version", path=tshark.REPO_PLUGIN))
    return version


def default_name() -> str:
    return f"lblab-student-{plugin_version()}.zip"


def profile_zip(files: list[Path]) -> bytes:
    """The profile as Wireshark's Import → From Zip File expects it."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for f in files:
            z.write(f, f"{install.PROFILE_NAME}/{f.name}")
    return buf.getvalue()


def guide(name: str, version: str) -> str:
    text = resources.files("lbreport").joinpath("data", name).read_text(encoding="utf-8")
    # $version only: the guides contain no other `$` (Windows paths use %APPDATA%).
    return Template(text).substitute(version=version)


def build(output: Path) -> Bundle:
    if not tshark.REPO_PLUGIN.is_file():
        raise LbreportError(t("bundle.err.no_plugin", path=tshark.REPO_PLUGIN))
    version = plugin_version()
    files = install.profile_files()
    top = f"lblab-student-{version}"
    entries: list[tuple[str, bytes]] = [(f"{top}/lblab.lua", tshark.REPO_PLUGIN.read_bytes())]
    entries += [(f"{top}/{install.PROFILE_NAME}/{f.name}", f.read_bytes()) for f in files]
    entries.append((f"{top}/{install.PROFILE_NAME}-profile.zip", profile_zip(files)))
    entries += [(f"{top}/{name}", guide(name, version).encode("utf-8")) for name in GUIDES]

    output = output.resolve()
    # Write beside the target and rename: an interrupted run never leaves half a zip under the
    # name an instructor is about to upload.
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", dir=output.parent)
    except OSError as exc:
        raise LbreportError(t("bundle.err.write", path=output,
                              reason=exc.strerror or exc)) from None
    try:
        with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as z:
            for name, data in entries:
                info = zipfile.ZipInfo(name, date_time=_now())
                info.external_attr = 0o644 << 16  # readable files once unzipped, on any unzip
                info.compress_type = zipfile.ZIP_DEFLATED
                z.writestr(info, data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, output)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Bundle(output, version, [name for name, _ in entries])


def _now() -> tuple[int, int, int, int, int, int]:
    t = time.localtime()
    return (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec)

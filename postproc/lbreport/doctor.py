"""`lbreport doctor`: is everything the report needs in place, and what to do if not."""

from __future__ import annotations

import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from lbreport import tshark
from lbreport.errors import LbreportError
from lbreport.messages import t


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str  # what was found, or what to do about it


def run_checks() -> list[Check]:
    checks: list[Check] = []
    try:
        path = tshark.find_tshark()
    except LbreportError as exc:
        return [Check(t("doc.tshark"), False, exc.message)]
    checks.append(Check(t("doc.tshark"), True, path))

    version = subprocess.run([path, "-v"], capture_output=True, text=True, check=False).stdout
    minimum = ".".join(map(str, tshark.MINIMUM_VERSION))
    try:
        info = tshark.parse_version(version, path)
    except LbreportError as exc:
        return [*checks, Check(t("doc.version", minimum=minimum), False, exc.message)]
    old = info.version[:2] < tshark.MINIMUM_VERSION
    checks.append(Check(t("doc.version", minimum=minimum), not old,
                        t("err.tshark_old", version=info.version_text, minimum=minimum)
                        if old else info.version_text))
    checks.append(Check(t("doc.lua"), bool(info.lua),
                        f"Lua {info.lua}" if info.lua else t("err.tshark_no_lua",
                                                              version=info.version_text)))
    if old or not info.lua:
        return checks

    listing = subprocess.run([path, "-G", "plugins"], capture_output=True, text=True,
                             check=False).stdout
    installed = tshark.installed_plugin(listing)
    try:
        plugin = tshark.plugin_args(listing)
    except LbreportError as exc:
        return [*checks, Check(t("doc.plugin"), False, exc.message)]
    where = (t("doc.plugin_installed", path=installed) if installed
             else t("doc.plugin_repo", path=tshark.REPO_PLUGIN))
    checks.append(Check(t("doc.plugin"), True, where))
    # Which version runs, and whether an installed copy lags behind the repository's.
    from lbreport.install import version_check

    checks.append(Check("plugin version", *version_check(listing)))

    # Load the plugin for real: read an empty capture with a display filter naming the
    # plugin's protocol (tshark refuses an unknown name, and prints `Lua:` on load errors).
    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "empty.pcap"
        empty.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        run = subprocess.run([path, *plugin, "-r", str(empty), "-Y", "lblab"],
                             capture_output=True, text=True, check=False)
    problems = [ln for ln in run.stderr.splitlines()
                if ln.strip() and not ln.startswith("Running as user")]
    lua = [ln for ln in problems if "Lua:" in ln]
    if lua:
        detail = t("err.plugin_lua", detail="\n".join(lua))
    elif run.returncode != 0:
        detail = t("doc.plugin_not_registered", detail=" ".join(problems))
    else:
        detail = "lblab"
    checks.append(Check(t("doc.plugin_loads"), run.returncode == 0 and not lua, detail))
    return checks


def format_checks(checks: list[Check]) -> str:
    lines = []
    for c in checks:
        mark = t("doc.ok") if c.ok else t("doc.fail")
        lines.append(f"[{mark:>4}] {c.name}: {c.detail}")
    lines.append(t("doc.all_ok") if all(c.ok for c in checks) else t("doc.some_failed"))
    return "\n".join(lines)

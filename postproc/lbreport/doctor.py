"""`lbreport doctor`: is everything the report needs in place, and what to do if not."""

from __future__ import annotations

import os
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

    minimum = ".".join(map(str, tshark.MINIMUM_VERSION))
    try:
        runner = tshark.preflight(None).runner
    except LbreportError as exc:
        # Which step failed: the version, or loading the plugin (with its real cause).
        try:
            version = subprocess.run([path, "-v"], capture_output=True, text=True,
                                     check=False).stdout
            info = tshark.parse_version(version, path)
            tshark.require(info)
        except LbreportError as version_exc:
            return [*checks, Check(t("doc.version", minimum=minimum), False,
                                   version_exc.message)]
        checks.append(Check(t("doc.version", minimum=minimum), True, _version_detail(info)))
        return [*checks, Check(t("doc.plugin"), False, exc.message)]
    info = runner.info
    checks.append(Check(t("doc.version", minimum=minimum), True, _version_detail(info)))
    checks.append(Check(t("doc.lua"), True,
                        t("doc.lua_version", version=info.lua) if info.lua else "Lua"))
    installed = tshark.installed_plugin(runner.listing)
    where = (t("doc.plugin_installed", path=installed) if installed
             else t("doc.plugin_repo", path=tshark.REPO_PLUGIN))
    if runner.unprivileged is not None:
        where += "\n       " + t("doc.as_user", version=info.version_text,
                                   uid=runner.unprivileged.uid)
    checks.append(Check(t("doc.plugin"), True, where))
    # Which version runs, and whether an installed copy lags behind the repository's.
    from lbreport.install import version_check

    checks.append(Check(t("doc.plugin_version"), *version_check(runner.listing)))

    # Load the plugin for real: read an empty capture with a display filter naming the
    # plugin's protocol (tshark refuses an unknown name, and prints `Lua:` on load errors).
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)
        empty = Path(tmp) / "empty.pcap"
        empty.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        os.chmod(empty, 0o644)
        run = subprocess.run(runner.wrap([path, *runner.plugin, "-r", str(empty), "-Y", "lblab"]),
                             capture_output=True, text=True, check=False, env=runner.env())
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


def _version_detail(info: tshark.TsharkInfo) -> str:
    if tshark.untested(info):
        newest = ".".join(map(str, tshark.NEWEST_TESTED))
        return t("doc.untested", version=info.version_text, newest=newest)
    return info.version_text


def format_checks(checks: list[Check]) -> str:
    lines = []
    for c in checks:
        mark = t("doc.ok") if c.ok else t("doc.fail")
        lines.append(f"[{mark:>4}] {c.name}: {c.detail}")
    lines.append(t("doc.all_ok") if all(c.ok for c in checks) else t("doc.some_failed"))
    return "\n".join(lines)

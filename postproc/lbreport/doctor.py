"""`lbreport doctor`: is everything the report needs in place, and what to do if not."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

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

    # Load the plugin on no capture at all: `-G protocols` initialises every dissector.
    run = subprocess.run([path, *plugin, "-G", "protocols"], capture_output=True, text=True,
                         check=False)
    lua = [ln for ln in run.stderr.splitlines() if "Lua:" in ln]
    loaded = any(ln.split("\t")[-1] == "lblab" for ln in run.stdout.splitlines())
    detail = "\n".join(lua) if lua else ("lblab" if loaded else "lblab protocol not registered")
    checks.append(Check(t("doc.plugin_loads"), loaded and not lua,
                        t("err.plugin_lua", detail=detail) if lua else detail))
    return checks


def format_checks(checks: list[Check]) -> str:
    lines = []
    for c in checks:
        mark = t("doc.ok") if c.ok else t("doc.fail")
        lines.append(f"[{mark:>4}] {c.name}: {c.detail}")
    lines.append(t("doc.all_ok") if all(c.ok for c in checks) else t("doc.some_failed"))
    return "\n".join(lines)

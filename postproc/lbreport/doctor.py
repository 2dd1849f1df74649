"""`lbreport doctor`: is everything the report needs in place, and what to do if not."""

from __future__ import annotations

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

    minimum = ".".join(map(str, tshark.MINIMUM_VERSION))
    try:
        runner = tshark.preflight(None, cached=False).runner  # checked afresh, never kept
    except tshark.PluginError as exc:  # the version is good; loading the plugin is not
        checks.append(Check(t("doc.version", minimum=minimum), True, _version_detail(exc.info)))
        return [*checks, Check(t("doc.plugin"), False, exc.message)]
    except LbreportError as exc:
        return [*checks, Check(t("doc.version", minimum=minimum), False, exc.message)]
    info = runner.info
    checks.append(Check(t("doc.version", minimum=minimum), True, _version_detail(info)))
    checks.append(Check(t("doc.lua"), True,
                        t("doc.lua_version", version=info.lua) if info.lua else "Lua"))
    listing = tshark.plugin_listing(runner)
    copies = tshark.listed_plugins(listing)
    where = (t("doc.plugin_installed", path=copies[0][1]) if copies
             else t("doc.plugin_repo", path=tshark.REPO_PLUGIN))
    if runner.unprivileged is not None:
        where += "\n       " + t("doc.as_user", version=info.version_text,
                                   uid=runner.unprivileged.uid)
    checks.append(Check(t("doc.plugin"), True, where))
    # Which version runs, and whether an installed copy lags behind the repository's.
    from lbreport.install import version_check

    checks.append(Check(t("doc.plugin_version"), *version_check(listing)))
    problem = tshark.load_check(runner)
    checks.append(Check(t("doc.plugin_loads"), problem is None, problem or "lblab"))
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

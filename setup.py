"""The wheel's Wireshark side: plugins/lblab.lua and the LB-Lab profile (plugins/profiles/),
copied when the wheel is built from their one source, the repository's plugins/ folder, into
the package as lbreport/wireshark/ (where tshark.py looks first). An editable install copies
nothing: a checkout reads plugins/ where it is. Everything else is in pyproject.toml."""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PLUGINS = Path(__file__).resolve().parent / "plugins"


def shipped() -> list[Path]:
    """The plugin and every file of the profile (what `lbreport install` copies)."""
    profile = PLUGINS / "profiles" / "LB-Lab"
    return [PLUGINS / "lblab.lua", *sorted(p for p in profile.iterdir() if p.is_file())]


class BuildPy(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "lbreport" / "wireshark"
        for source in shipped():
            dest = target / source.relative_to(PLUGINS)
            self.mkpath(str(dest.parent))
            self.copy_file(str(source), str(dest))


setup(cmdclass={"build_py": BuildPy})

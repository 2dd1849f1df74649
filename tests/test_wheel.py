"""lbreport as a user installs it: a wheel built from this checkout (by way of a source
distribution, as `python -m build` does), installed into a fresh virtualenv in a temporary
folder outside the repository, runs report, roles, doctor, install and bundle exactly as the
editable install does. Offline: built with the setuptools already installed
(--no-build-isolation); the fresh virtualenv borrows only the dependencies (typer, rich, lxml,
pyshark) from this one, through a .pth line."""

from __future__ import annotations

import io
import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ROOT / "plugins"
# What the wheel must carry, byte for byte: its path in the wheel → the repository's file.
SHIPPED = {
    "lbreport/wireshark/lblab.lua": PLUGINS / "lblab.lua",
    **{f"lbreport/wireshark/profiles/LB-Lab/{p.name}": p
       for p in sorted((PLUGINS / "profiles" / "LB-Lab").iterdir())},
    **{f"lbreport/data/{p.name}": p for p in sorted((ROOT / "postproc/lbreport/data").iterdir())},
}


class Installed:
    """A wheel and a fresh virtualenv holding it, in a temporary folder."""

    def __init__(self, base: Path) -> None:
        self.base = base
        src = base / "src"  # a copy: building writes build/ and *.egg-info beside the sources
        src.mkdir()
        for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
            shutil.copy2(ROOT / name, src / name)
        ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
        for name in ("postproc", "plugins"):
            shutil.copytree(ROOT / name, src / name, ignore=ignore)
        sdist = subprocess.run(
            [sys.executable, "-c", "import sys; from setuptools import build_meta; "
             "print(build_meta.build_sdist(sys.argv[1]))", str(base / "sdist")],
            capture_output=True, text=True, cwd=src, env=_without_pythonpath(), check=False)
        assert sdist.returncode == 0, sdist.stdout + sdist.stderr
        shutil.unpack_archive(base / "sdist" / sdist.stdout.split()[-1], base / "unpacked")
        (unpacked,) = (base / "unpacked").iterdir()
        # -v: pip shows the build backend's own output (its warnings) only when asked.
        build = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation",
             "--no-index", "-w", str(base / "dist"), str(unpacked)],
            capture_output=True, text=True, env=_without_pythonpath(), check=False)
        assert build.returncode == 0, build.stdout + build.stderr
        self.build_output = sdist.stderr + build.stdout + build.stderr
        (self.wheel,) = (base / "dist").glob("lbreport-*.whl")
        venv = base / "venv"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        self.python = venv / "bin" / "python"
        install = subprocess.run(
            [sys.executable, "-m", "pip", "--python", str(self.python), "install", "--no-deps",
             "--no-index", str(self.wheel)], capture_output=True, text=True, check=False)
        assert install.returncode == 0, install.stdout + install.stderr
        purelib = subprocess.run([self.python, "-c", "import sysconfig; "
                                  "print(sysconfig.get_paths()['purelib'])"],
                                 capture_output=True, text=True, check=True).stdout.strip()
        # The dependencies, after the venv's own site-packages (so lbreport is the wheel's).
        (Path(purelib) / "lbreport-test-deps.pth").write_text(
            "\n".join(site.getsitepackages()) + "\n")
        self.lbreport = venv / "bin" / "lbreport"


def _without_pythonpath() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    return Installed(tmp_path_factory.mktemp("wheel"))


@pytest.fixture
def work(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A folder outside the repository with a capture in it, and a clean HOME and cache."""
    folder = tmp_path / "work"
    folder.mkdir()
    shutil.copy(ROOT / "captures" / "classic-client.pcapng", folder / "classic-client.pcapng")
    env = {**_without_pythonpath(), "HOME": str(tmp_path / "home"),
           "XDG_CONFIG_HOME": str(tmp_path / "home" / ".config"),
           "XDG_CACHE_HOME": str(tmp_path / "cache")}
    return folder, env


def test_the_wheel_carries_the_repository_files_and_builds_without_warnings(
    wheel: Installed,
) -> None:
    with zipfile.ZipFile(wheel.wheel) as z:
        for member, source in SHIPPED.items():
            assert z.read(member) == source.read_bytes(), member
        metadata = z.read(next(n for n in z.namelist() if n.endswith("/METADATA"))).decode()
    assert "License-Expression: MIT" in metadata
    # Python's warnings (SetuptoolsDeprecationWarning, BuildBackendWarning, …), not distutils'
    # "warning: byte-compiling is disabled" notes.
    problems = [ln for ln in wheel.build_output.splitlines()
                if "Warning" in ln or "deprecat" in ln.lower()]
    assert not problems, "\n".join(problems)
    where = subprocess.run([wheel.python, "-c", "import lbreport; print(lbreport.__file__)"],
                           capture_output=True, text=True, check=True, cwd=wheel.base,
                           env=_without_pythonpath()).stdout
    assert where.startswith(str(wheel.base / "venv")), where


def _both(wheel: Installed, work: tuple[Path, dict[str, str]], *args: str
          ) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    """The same command from the wheel and from this checkout's install, in the same folder
    with the same environment (the checkout's in a HOME of its own)."""
    folder, env = work
    from_wheel = subprocess.run([str(wheel.lbreport), *args], capture_output=True, text=True,
                                cwd=folder, env=env, check=False)
    checkout_env = {**os.environ, "HOME": env["HOME"] + "-checkout",
                    "XDG_CONFIG_HOME": env["HOME"] + "-checkout/.config",
                    "XDG_CACHE_HOME": env["XDG_CACHE_HOME"]}
    from_checkout = subprocess.run([sys.executable, "-m", "lbreport", *args],
                                   capture_output=True, text=True, cwd=folder,
                                   env=checkout_env, check=False)
    return from_wheel, from_checkout


@pytest.mark.parametrize("args", [
    ("report", "classic-client.pcapng"),
    ("report", "classic-client.pcapng", "--format", "json"),
    ("report", "classic-client.pcapng", "--lang", "es", "--format", "markdown"),
    ("roles", "classic-client.pcapng"),
    ("roles", "classic-client.pcapng", "--lang", "es"),
])  # fmt: skip
def test_report_and_roles_as_from_the_checkout(wheel: Installed,
                                               work: tuple[Path, dict[str, str]],
                                               args: tuple[str, ...]) -> None:
    got, want = _both(wheel, work, *args)
    assert got.returncode == want.returncode == 0, got.stderr
    assert got.stdout == want.stdout
    assert "Traceback" not in got.stderr


def test_doctor_install_and_bundle_from_the_wheel(wheel: Installed,
                                                  work: tuple[Path, dict[str, str]]) -> None:
    folder, env = work
    packaged = next((wheel.base / "venv").glob("lib/python*/site-packages/lbreport/wireshark"))
    got, want = _both(wheel, work, "doctor")
    assert got.returncode == want.returncode == 0, got.stdout
    assert f"lblab plugin: {packaged / 'lblab.lua'} (passed with -X)" in got.stdout
    assert got.stdout.replace(str(packaged), str(PLUGINS)) == want.stdout

    got, want = _both(wheel, work, "install")
    assert got.returncode == want.returncode == 0, got.stderr
    home = Path(env["HOME"])
    assert got.stdout.replace(str(home), "HOME") == \
        want.stdout.replace(env["HOME"] + "-checkout", "HOME")
    installed = home / ".local/lib/wireshark/plugins/lblab.lua"
    assert installed.read_bytes() == (PLUGINS / "lblab.lua").read_bytes()
    for profile_file in (PLUGINS / "profiles" / "LB-Lab").iterdir():
        copy = home / ".config/wireshark/profiles/LB-Lab" / profile_file.name
        assert copy.read_bytes() == profile_file.read_bytes()
    doctor = subprocess.run([str(wheel.lbreport), "doctor"], capture_output=True, text=True,
                            cwd=folder, env=env, check=False)
    assert doctor.returncode == 0 and f"installed at {installed}" in doctor.stdout, doctor.stdout

    got, want = _both(wheel, work, "bundle", "-o", "class.zip")
    assert got.returncode == want.returncode == 0, got.stderr
    # The second run (the checkout's) replaced the first's zip: build the wheel's again.
    shutil.move(folder / "class.zip", folder / "checkout.zip")
    subprocess.run([str(wheel.lbreport), "bundle", "-o", "class.zip"], cwd=folder, env=env,
                   check=True, capture_output=True)
    assert _members(folder / "class.zip") == _members(folder / "checkout.zip")


def _members(path: Path | io.BytesIO) -> dict[str, object]:
    """A zip's members by name; a zip inside (the profile's) by its own members, since its
    entries carry the files' times."""
    with zipfile.ZipFile(path) as z:
        return {name: _members(io.BytesIO(z.read(name))) if name.endswith(".zip")
                else z.read(name) for name in z.namelist()}

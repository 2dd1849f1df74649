"""`lbreport bundle`: the student zip, unpacked into a clean HOME and installed by following its
own guide's Linux steps literally; then the real tshark with the profile."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from lbreport import install, tshark

ROOT = Path(__file__).resolve().parents[1]
CLASSIC = ROOT / "captures" / "classic-client.pcapng"
VERSION = install.plugin_version(tshark.REPO_PLUGIN)
TOP = f"lblab-student-{VERSION}"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "lblab-student.zip"
    run = subprocess.run([sys.executable, "-m", "lbreport", "bundle", "-o", str(out)],
                         capture_output=True, text=True, cwd=ROOT, check=False)
    assert run.returncode == 0, run.stderr
    assert f"(lblab {VERSION})" in run.stdout
    return out


def clean_env(home: Path) -> dict[str, str]:
    return {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}


def test_bundle_contents(bundle: Path) -> None:
    with zipfile.ZipFile(bundle) as z:
        assert sorted(z.namelist()) == sorted([
            f"{TOP}/lblab.lua", f"{TOP}/LB-Lab/colorfilters", f"{TOP}/LB-Lab/preferences",
            f"{TOP}/LB-Lab-profile.zip", f"{TOP}/GUIDE.en.md", f"{TOP}/GUIDE.es.md",
        ])  # fmt: skip
        assert z.read(f"{TOP}/lblab.lua") == tshark.REPO_PLUGIN.read_bytes()
        for lang in ("en", "es"):
            guide = z.read(f"{TOP}/GUIDE.{lang}.md").decode()
            assert "$" not in guide  # every placeholder filled
            assert f"lblab {VERSION}" in guide.splitlines()[0]
            for needle in ('lblab.req == 3', 'lblab.backend == "M2"', 'lblab.leg == "back"',
                           'lblab.step == "ARP-who-has"', r'%APPDATA%\Wireshark\plugins',
                           r'%APPDATA%\Wireshark\profiles', "~/.local/lib/wireshark/plugins",
                           "~/.config/wireshark/profiles", "LB-Lab-profile.zip",
                           "LB-Lab → Requests", "LB-Lab → Go to request", "lblab.lang",
                           "-z lblab,requests"):
                assert needle in guide, (lang, needle)
        assert "Guía" not in z.read(f"{TOP}/GUIDE.en.md").decode()
        assert "Necesitas Wireshark 4.0" in z.read(f"{TOP}/GUIDE.es.md").decode()


def test_profile_zip_has_the_layout_wireshark_imports(bundle: Path, tmp_path: Path) -> None:
    """Wireshark 4.0's importer extracts only entries with a '/' and makes one profile per
    top-level folder, named after it; so: LB-Lab/<file>, nothing at the root, nothing else."""
    with zipfile.ZipFile(bundle) as z:
        inner = z.read(f"{TOP}/LB-Lab-profile.zip")
    (tmp_path / "p.zip").write_bytes(inner)
    with zipfile.ZipFile(tmp_path / "p.zip") as p:
        assert sorted(p.namelist()) == ["LB-Lab/colorfilters", "LB-Lab/preferences"]
        for name in ("colorfilters", "preferences"):
            assert p.read(f"LB-Lab/{name}") == (install.REPO_PROFILE / name).read_bytes()
        # Import it the way Wireshark does, into a clean profiles folder, and use it.
        home = tmp_path / "home"
        profiles = home / ".config" / "wireshark" / "profiles"
        p.extractall(profiles)
    env = clean_env(home)
    run = subprocess.run(["tshark", "-G", "currentprefs", "-C", "LB-Lab"], capture_output=True,
                         text=True, env=env, check=False)
    assert '"Src role", "%Cus:lblab.src_role:0:R"' in run.stdout


def _linux_steps(guide: str) -> str:
    section = guide.split("### Linux", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block is not None
    return block.group(1)


def test_guides_give_the_same_linux_steps(bundle: Path) -> None:
    with zipfile.ZipFile(bundle) as z:
        en, es = (z.read(f"{TOP}/GUIDE.{lang}.md").decode() for lang in ("en", "es"))
    assert _linux_steps(en) == _linux_steps(es)


def _requests_commands(guide: str) -> list[str]:
    """The guide's `tshark ... -z lblab,requests` lines, on the classic capture."""
    blocks = re.findall(r"```sh\n(.*?)```", guide, re.DOTALL)
    lines = [ln for b in blocks for ln in b.splitlines() if "-z lblab,requests" in ln]
    return [re.sub(r"\S+\.pcapng", str(CLASSIC), ln) for ln in lines]


def _table_of(command: str, folder: Path, env: dict[str, str]) -> str:
    run = subprocess.run(["bash", "-e", "-c", command], cwd=folder, env=env,
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0 and "Lua" not in run.stderr, (command, run.stderr)
    return run.stdout


@pytest.mark.parametrize("lang", ["en", "es"])
def test_the_guides_requests_table_without_installing(
    bundle: Path, tmp_path: Path, lang: str
) -> None:
    """Tools > LB-Lab > Requests' table in a terminal, as the guide writes it: from the
    unzipped folder with nothing installed (-X lua_script:lblab.lua)."""
    (tmp_path / "home").mkdir()
    with zipfile.ZipFile(bundle) as z:
        z.extractall(tmp_path / "download")
    folder = tmp_path / "download" / TOP
    commands = _requests_commands((folder / f"GUIDE.{lang}.md").read_text(encoding="utf-8"))
    assert len(commands) == 2 and "-X lua_script:lblab.lua" in commands[1], commands
    table = _table_of(commands[1], folder, clean_env(tmp_path / "home"))
    title, order = {"en": ("LB-Lab: requests", "Backends in order: M1 M2 M1"),
                    "es": ("LB-Lab: peticiones", "Servidores finales en orden: M1 M2 M1")}[lang]
    assert table.splitlines()[0] == title and order in table.splitlines(), table


def test_follow_the_guide_on_linux(bundle: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    with zipfile.ZipFile(bundle) as z:
        z.extractall(tmp_path / "download")
    folder = tmp_path / "download" / TOP
    steps = _linux_steps((folder / "GUIDE.en.md").read_text(encoding="utf-8"))
    env = clean_env(home)
    # "In a terminal, inside this folder": run the guide's commands as written.
    done = subprocess.run(["bash", "-e", "-c", steps], cwd=folder, env=env,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr

    plugins = subprocess.run(["tshark", "-G", "plugins"], capture_output=True, text=True,
                             env=env, check=False).stdout
    assert [v for v, _ in tshark.listed_plugins(plugins)] == [VERSION]

    run = subprocess.run(["tshark", "-C", "LB-Lab", "-r", str(CLASSIC)], capture_output=True,
                         text=True, env=env, check=False)
    assert run.returncode == 0 and "Lua:" not in run.stderr, run.stderr
    rows = [" ".join(ln.split()) for ln in run.stdout.splitlines()]
    assert re.match(r"1 \S+ 192\.168\.56\.1 client 192\.168\.56\.103 M3 1 SYN TCP ", rows[0])
    assert re.match(r"7 \S+ 192\.168\.56\.103 M3 192\.168\.56\.1 client 1 response M1 HTTP",
                    rows[6])
    # From the client's side every frame but M3's ARP broadcasts has a client end.
    # One pass: M3's ARP already names the backend it looks for (evidence "arp").
    arp = [r for r in rows if re.search(r" ARP-who-has M[12] ARP ", r)]
    assert len(arp) == 2 and all(" M3 Broadcast broadcast " in r for r in arp)
    assert all(" client " in r for r in rows if r not in arp)

    # The guide's request table with the installed plugin and profile (lblab.lang: en).
    command = _requests_commands((folder / "GUIDE.en.md").read_text(encoding="utf-8"))[0]
    assert "-C LB-Lab" in command and "lua_script" not in command
    table = _table_of(command, folder, env).splitlines()
    assert table[0] == "LB-Lab: requests" and "Backends in order: M1 M2 M1" in table, table

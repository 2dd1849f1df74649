"""`lbreport install`: real tshark, a clean HOME per test, no mocks.

Every test redirects Wireshark's personal folders (HOME, XDG_CONFIG_HOME), so nothing here
touches the machine's own Wireshark configuration; `--system` is only checked through the
folders tshark names, because writing the real global folder would make every other test's
`-X` load the plugin twice.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from lbreport import install, tshark

ROOT = Path(__file__).resolve().parents[1]
CLASSIC = ROOT / "captures" / "classic-client.pcapng"
REPO_VERSION = install.plugin_version(tshark.REPO_PLUGIN)


def clean_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"))
    return env


def lbreport(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lbreport", *args], capture_output=True,
                          text=True, env=env, cwd=ROOT, check=False)


def run_tshark(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["tshark", *args], capture_output=True, text=True, env=env,
                          check=False)


def folders(env: dict[str, str]) -> install.Folders:
    return install.parse_folders(run_tshark(env, "-G", "folders").stdout)


def lua_errors(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if "Lua:" in ln or "lua_script" in ln]


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    return clean_env(tmp_path / "home")


@pytest.fixture
def installed(home: dict[str, str]) -> dict[str, str]:
    run = lbreport(home, "install")
    assert run.returncode == 0, run.stderr
    return home


def test_parse_folders_reads_tshark_not_guesses(home: dict[str, str]) -> None:
    f = folders(home)
    h = Path(home["HOME"])
    # The personal folders follow the redirected HOME: proof they are read, not hard-coded.
    assert f.personal_lua == h / ".local/lib/wireshark/plugins"
    assert f.personal_config == h / ".config/wireshark"
    assert f.lua(system=True) == f.global_lua != f.personal_lua
    with pytest.raises(Exception, match="Personal Lua Plugins"):
        install.parse_folders("Temp:\t/tmp\n")


def test_install_puts_plugin_and_profile_where_wireshark_looks(home: dict[str, str]) -> None:
    run = lbreport(home, "install")
    assert run.returncode == 0, run.stderr
    f = folders(home)
    plugin = f.personal_lua / "lblab.lua"
    assert plugin.read_bytes() == tshark.REPO_PLUGIN.read_bytes()
    for name in ("preferences", "colorfilters"):
        assert (f.profiles / "LB-Lab" / name).read_bytes() == (
            install.REPO_PROFILE / name).read_bytes()
    assert f"installed plugin {REPO_VERSION}: {plugin}" in run.stdout
    # Wireshark itself sees exactly one copy, with the repository's version.
    listed = tshark.listed_plugins(run_tshark(home, "-G", "plugins").stdout)
    assert listed == [(REPO_VERSION, plugin)]


def test_profile_columns_in_tshark(installed: dict[str, str]) -> None:
    run = run_tshark(installed, "-C", "LB-Lab", "-r", str(CLASSIC))
    assert run.returncode == 0 and not lua_errors(run.stderr), run.stderr
    lines = {int(ln.split()[0]): " ".join(ln.split()) for ln in run.stdout.splitlines()}
    # No. Time Source Src-role Destination Dst-role Req# Step Backend Protocol Info
    assert re.match(r"1 \S+ 192\.168\.56\.1 client 192\.168\.56\.103 M3 1 SYN TCP ", lines[1])
    # One pass: M3's ARP for M1 already names the backend it looks for (evidence "arp").
    assert re.match(r"6 \S+ \S+ M3 Broadcast broadcast 1 ARP-who-has M1 ARP Who has", lines[6])
    assert re.match(r"7 \S+ 192\.168\.56\.103 M3 192\.168\.56\.1 client 1 response M1 HTTP ",
                    lines[7])
    assert re.match(r"12 \S+ 192\.168\.56\.1 client 192\.168\.56\.103 M3 2 SYN TCP ", lines[12])
    # The same capture without the profile has none of these columns.
    plain = run_tshark(installed, "-r", str(CLASSIC)).stdout
    assert " client " not in plain and "ARP-who-has" not in plain


def test_profile_preferences_as_wireshark_reads_them(installed: dict[str, str]) -> None:
    """`-G currentprefs` prints what Wireshark parsed from the profile, in the format it writes:
    a misspelt key or column would be missing here."""
    prefs = run_tshark(installed, "-G", "currentprefs", "-C", "LB-Lab").stdout
    columns = re.search(r"^gui\.column\.format:(.*?)(?=^\S)", prefs, re.MULTILINE | re.DOTALL)
    assert columns is not None
    titles = re.findall(r'"([^"]+)", "([^"]+)"', columns.group(1))
    assert titles == [
        ("No.", "%m"), ("Time", "%t"), ("Source", "%s"),
        ("Src role", "%Cus:lblab.src_role:0:R"), ("Destination", "%d"),
        ("Dst role", "%Cus:lblab.dst_role:0:R"), ("Req#", "%Cus:lblab.req:0:R"),
        ("Step", "%Cus:lblab.step:0:R"), ("Backend", "%Cus:lblab.backend:0:R"),
        ("Protocol", "%p"), ("Info", "%i"),
    ]  # fmt: skip
    assert "\nlblab.balancer: 192.168.56.103\n" in prefs
    assert "\nlblab.backends: M1=192.168.56.101,M2=192.168.56.102\n" in prefs
    assert "\nlblab.markers: M1=Soy la máquina 1;M2=Soy la máquina 2\n" in prefs


def _colours(env: dict[str, str], capture: Path) -> dict[int, str]:
    """Frame → background Wireshark's colouring rules give it (`--color` adds them to PSML)."""
    run = run_tshark(env, "--color", "-C", "LB-Lab", "-T", "psml", "-r", str(capture))
    assert run.returncode == 0 and not lua_errors(run.stderr), run.stderr
    found = re.findall(r"<packet foreground='#\w+' background='(#\w+)'>\s*<section>(\d+)<",
                       run.stdout)
    return {int(n): bg for bg, n in found}


def _labels(env: dict[str, str], capture: Path) -> dict[int, list[str]]:
    run = run_tshark(env, "-C", "LB-Lab", "-r", str(capture), "-T", "fields", "-e",
                     "frame.number", "-e", "lblab.backend", "-e", "lblab.leg", "-e",
                     "lblab.step", "-e", "lblab.status")
    return {int(r[0]): r[1:] for r in (ln.split("\t") for ln in run.stdout.splitlines())}


@pytest.mark.parametrize("capture", ["backend-down", "classic-m3"])
def test_colouring_rules(installed: dict[str, str], capture: str) -> None:
    path = ROOT / "captures" / f"{capture}.pcapng"
    colours, labels = _colours(installed, path), _labels(installed, path)
    assert colours.keys() == labels.keys()
    expected = {("M1", "front"): "#d7f5d0", ("M2", "front"): "#d0e4ff",
                ("M1", "back"): "#a6e3a0", ("M2", "back"): "#9cc3f5"}
    seen = set()
    for frame, (backend, leg, step, status) in labels.items():
        if "RST" in step:
            want = "#a40000"
        elif status and int(status) >= 500:
            want = "#ff9e9e"
        elif (backend, leg) in expected:
            want = expected[(backend, leg)]
        else:
            continue
        seen.add(want)
        assert colours[frame] == want, (frame, backend, leg, step, status)
    assert {"#d7f5d0", "#d0e4ff", "#a6e3a0", "#9cc3f5"} <= seen  # every backend rule ran
    if capture == "backend-down":
        assert {"#a40000", "#ff9e9e"} <= seen


def test_reinstall_replaces_older_copy_and_says_which(installed: dict[str, str]) -> None:
    plugin = folders(installed).personal_lua / "lblab.lua"
    plugin.write_text(plugin.read_text(encoding="utf-8").replace(
        f'local VERSION = "{REPO_VERSION}"', 'local VERSION = "0.0.1-old"'), encoding="utf-8")
    assert install.plugin_version(plugin) == "0.0.1-old"
    run = lbreport(installed, "install")
    assert run.returncode == 0, run.stderr
    assert f"replaced plugin 0.0.1-old with {REPO_VERSION}: {plugin}" in run.stdout
    assert plugin.read_bytes() == tshark.REPO_PLUGIN.read_bytes()
    again = lbreport(installed, "install")
    assert f"plugin {REPO_VERSION} already installed (identical)" in again.stdout


def test_doctor_shows_version_and_flags_a_different_installed_one(
    installed: dict[str, str],
) -> None:
    ok = lbreport(installed, "doctor")
    assert ok.returncode == 0, ok.stdout
    assert f"[  ok] plugin version: {REPO_VERSION} installed at" in ok.stdout
    plugin = folders(installed).personal_lua / "lblab.lua"
    plugin.write_text(plugin.read_text(encoding="utf-8").replace(
        f'local VERSION = "{REPO_VERSION}"', 'local VERSION = "9.9.9"'), encoding="utf-8")
    bad = lbreport(installed, "doctor")
    assert bad.returncode == 1
    assert f"[FAIL] plugin version: installed 9.9.9 at {plugin} differs from the " \
           f"repository's {REPO_VERSION}" in bad.stdout


def _shim(tmp: Path) -> tuple[dict[str, str], Path]:
    """A `tshark` first on PATH that logs its arguments and runs the real one: the only way
    to see the command lines lbreport really runs."""
    real = subprocess.run(["which", "tshark"], capture_output=True, text=True,
                          check=True).stdout.strip()
    bindir, log = tmp / "bin", tmp / "argv.log"
    bindir.mkdir()
    shim = bindir / "tshark"
    shim.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{log}"\nexec "{real}" "$@"\n')
    shim.chmod(0o755)
    return {"PATH": f"{bindir}:{os.environ['PATH']}"}, log


def test_report_uses_installed_plugin_without_X(home: dict[str, str], tmp_path: Path) -> None:
    path_env, log = _shim(tmp_path)
    env = {**home, **path_env}

    before = lbreport(env, "report", str(CLASSIC), "--format", "json")
    assert before.returncode == 0, before.stderr
    assert any("-X lua_script:" in ln for ln in log.read_text().splitlines())

    assert lbreport(env, "install").returncode == 0
    log.unlink()
    after = lbreport(env, "report", str(CLASSIC), "--format", "json")
    assert after.returncode == 0, after.stderr
    runs = log.read_text().splitlines()
    # The report's real run went through the shim.
    assert any(" -z lblab,labels" in ln for ln in runs)
    # The dissecting run loads the installed copy alone (the probe may try -X beside it).
    assert not any("-X" in ln.split() for ln in runs if " -z lblab,labels" in ln), runs
    report = json.loads(after.stdout)
    assert [r["backend"] for r in report["requests"]] == ["M1", "M2", "M1"]


def test_uninstall_removes_exactly_what_install_put(installed: dict[str, str]) -> None:
    f = folders(installed)
    profile = f.profiles / "LB-Lab"
    # What Wireshark (or the student) adds later is not install's to delete.
    (profile / "recent").write_text("# written by Wireshark\n")
    (f.personal_lua / "other.lua").write_text("-- another plugin\n")
    run = lbreport(installed, "install", "--uninstall")
    assert run.returncode == 0, run.stderr
    assert f"removed plugin {REPO_VERSION}: {f.personal_lua / 'lblab.lua'}" in run.stdout
    assert not (f.personal_lua / "lblab.lua").exists()
    assert sorted(p.name for p in profile.iterdir()) == ["recent"]
    assert (f.personal_lua / "other.lua").exists()
    assert f"kept {profile}: it also holds recent" in run.stdout
    assert tshark.listed_plugins(run_tshark(installed, "-G", "plugins").stdout) == []

    (profile / "recent").unlink()
    assert lbreport(installed, "install").returncode == 0
    assert lbreport(installed, "install", "--uninstall").returncode == 0
    assert not profile.exists()  # nothing else in it: the folder goes too


def test_uninstall_refuses_a_foreign_lblab_lua(home: dict[str, str]) -> None:
    f = folders(home)
    f.personal_lua.mkdir(parents=True)
    foreign = f.personal_lua / "lblab.lua"
    foreign.write_text("-- somebody else's script\n")
    run = lbreport(home, "install", "--uninstall")
    assert run.returncode == 1
    assert "is not the lblab plugin" in run.stderr
    assert foreign.exists()


# --------------------------------------------------------------------------- install --lab: names

CLASSIC_LAB = ROOT / "postproc" / "lbreport" / "data" / "classic.toml"
CLASSIC_M3 = ROOT / "captures" / "classic-m3.pcapng"


def test_host_names_from_a_lab() -> None:
    from lbreport.config import Lab

    classic = install.host_names(load_classic())
    assert classic == [("192.168.56.103", "M3"), ("192.168.56.101", "M1"),
                       ("192.168.56.102", "M2"), ("192.168.56.1", "client")]
    lab = Lab(balancer=("10.0.0.3", "fd00::3"), backends={"M10": ("10.0.0.10",),
                                                          "M2": ("10.0.0.2", "fd00::2")},
              clients=("10.0.0.200", "fd00::1", "10.0.0.30", "10.0.0.3"))
    # Backends in role order (M2 before M10), clients in address order (IPv4 first), numbered;
    # an address already named (the balancer's, listed as a client too) keeps its first name.
    assert install.host_names(lab) == [
        ("10.0.0.3", "M3"), ("fd00::3", "M3"), ("10.0.0.2", "M2"), ("fd00::2", "M2"),
        ("10.0.0.10", "M10"), ("10.0.0.30", "client1"), ("10.0.0.200", "client2"),
        ("fd00::1", "client3")]
    assert install.host_names(Lab()) == []


def load_classic():  # noqa: ANN201 - config.Lab
    from lbreport.config import load_lab

    return load_lab(CLASSIC_LAB)


def test_install_lab_names_the_hosts_in_conversations(home: dict[str, str]) -> None:
    run = lbreport(home, "install", "--lab", str(CLASSIC_LAB))
    assert run.returncode == 0, run.stderr
    profile = folders(home).profiles / "LB-Lab"
    assert (profile / "hosts").read_text(encoding="utf-8") == (
        f"{install.HOSTS_MARKER}\n# {CLASSIC_LAB}\n"
        "192.168.56.103\tM3\n192.168.56.101\tM1\n192.168.56.102\tM2\n192.168.56.1\tclient\n")
    assert f"installed profile LB-Lab file hosts: {profile / 'hosts'}" in run.stdout
    prefs = (profile / "preferences").read_bytes()
    assert prefs == (install.REPO_PROFILE / "preferences").read_bytes() + \
        install.NAMERES.encode()
    current = run_tshark(home, "-G", "currentprefs", "-C", "LB-Lab").stdout
    assert "\nnameres.network_name: TRUE\n" in current
    assert "\nnameres.use_external_name_resolver: FALSE\n" in current
    # Wireshark reads the profile's hosts file: the conversations are between names.
    for args in (["-N", "n"], []):
        conv = run_tshark(home, "-C", "LB-Lab", *args, "-r", str(CLASSIC_M3), "-q", "-z",
                          "conv,ip")
        assert conv.returncode == 0 and not lua_errors(conv.stderr), conv.stderr
        pairs = re.findall(r"^(\S+)\s+<->\s+(\S+)\s", conv.stdout, re.MULTILINE)
        assert pairs == [("client", "M3"), ("M3", "M1"), ("M3", "M2")], conv.stdout
    # Without the profile, addresses as before.
    plain = run_tshark(home, "-r", str(CLASSIC_M3), "-q", "-z", "conv,ip").stdout
    assert "192.168.56.1 " in plain and "client" not in plain


def test_install_without_lab_writes_no_names(home: dict[str, str]) -> None:
    assert lbreport(home, "install", "--lab", str(CLASSIC_LAB)).returncode == 0
    profile = folders(home).profiles / "LB-Lab"
    run = lbreport(home, "install")  # the profile becomes what this install says
    assert run.returncode == 0, run.stderr
    assert not (profile / "hosts").exists()
    assert "removed the profile's hosts file" in run.stdout
    assert (profile / "preferences").read_bytes() == \
        (install.REPO_PROFILE / "preferences").read_bytes()
    conv = run_tshark(home, "-C", "LB-Lab", "-r", str(CLASSIC_M3), "-q", "-z", "conv,ip")
    assert "192.168.56.1 " in conv.stdout and "client" not in conv.stdout
    again = lbreport(home, "install")
    assert "hosts" not in again.stdout


def test_uninstall_removes_only_its_own_hosts_file(home: dict[str, str]) -> None:
    assert lbreport(home, "install", "--lab", str(CLASSIC_LAB)).returncode == 0
    profile = folders(home).profiles / "LB-Lab"
    run = lbreport(home, "install", "--uninstall")
    assert run.returncode == 0, run.stderr
    assert f"removed profile LB-Lab file hosts: {profile / 'hosts'}" in run.stdout
    assert not profile.exists()
    # A hosts file someone else wrote: install --lab leaves it (and adds no name resolution),
    # uninstall too.
    profile.mkdir(parents=True)
    (profile / "hosts").write_text("192.168.56.103\tbalancer\n")
    run = lbreport(home, "install", "--lab", str(CLASSIC_LAB))
    assert run.returncode == 0, run.stderr
    assert f"warning: kept {profile / 'hosts'}: it was not written by lbreport install" \
        in run.stdout
    assert (profile / "hosts").read_text() == "192.168.56.103\tbalancer\n"
    assert b"nameres" not in (profile / "preferences").read_bytes()
    run = lbreport(home, "install", "--uninstall")
    assert (profile / "hosts").exists() and "it also holds hosts" in run.stdout


def test_install_lab_in_spanish_and_bad_lab(home: dict[str, str], tmp_path: Path) -> None:
    run = lbreport(home, "install", "--lab", str(CLASSIC_LAB), "--lang", "es")
    assert run.returncode == 0, run.stderr
    assert "hosts" in run.stdout and "installed" not in run.stdout
    empty = tmp_path / "empty.toml"
    empty.write_text("[farm]\nports = [8080]\n")
    run = lbreport(home, "install", "--lab", str(empty))
    assert run.returncode == 0, run.stderr
    assert f"warning: {empty} names no address: no hosts file written" in run.stdout
    assert not (folders(home).profiles / "LB-Lab" / "hosts").exists()
    bad = lbreport(home, "install", "--lab", str(tmp_path / "missing.toml"))
    assert bad.returncode == 1 and "Traceback" not in bad.stderr

"""The plugin and lbreport on newer Wireshark releases, compared with this machine's tshark.

Wireshark 4.4 (Debian 13 "trixie") and 4.6 (Debian testing "forky") run in the chroots that
scripts/wireshark-chroot.sh builds, as root and as the unprivileged user lblabuser. For each
(release, user) one shell script runs once inside the chroot and leaves every output in the
chroot's /tmp/lblab-versions/WHO; the tests compare those outputs with the same commands run
here (Debian 12's tshark 4.0):
  (a) the plugin's labels on every reference capture (tshark -2 -X lua_script:plugins/lblab.lua),
  (b) `lbreport doctor` passes,
  (c) `lbreport report --format json` on every reference capture (the JSON holds no tshark
      version or path that could legitimately differ, so it is compared as is),
  (d) `lbreport install`, then `tshark -C LB-Lab` shows the role columns,
and no tshark run prints `Lua:` on stderr or has a frame matching `_ws.lua.error`.
Both sides run one snapshot of the checkout, taken once per session (the working tree may be
edited meanwhile); lbreport is installed from it into the chroot's venv, /opt/lblab/venv.

A chroot that isn't built is a skip; with LBLAB_REQUIRE_VERSIONS=1 (scripts/test.sh sets it
after building them) it is a failure. LBLAB_SKIP_VERSIONS=1 skips them all.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from lblab_fields import FIELDS, load_truth, prefs_from_truth

pytestmark = pytest.mark.versions

REPO = Path(__file__).resolve().parent.parent
CHROOT_SH = REPO / "scripts" / "wireshark-chroot.sh"
RELEASES = {"trixie": "4.4", "forky": "4.6"}
WHO = ("root", "user")
CAPTURES = sorted(p for p in (REPO / "captures").rglob("*.pcapng") if "lab" not in p.parts)
CAPTURE_IDS = [c.stem for c in CAPTURES]
PROFILE_CAPTURE = "captures/classic-client.pcapng"
# The labels compared: the plugin's fields (not frame.time_epoch, which is tshark's own).
LABEL_FIELDS = [f for f in FIELDS if f != "frame.time_epoch"]
RUN_TIMEOUT = 1200


def _prefs(capture: Path) -> tuple[str, ...]:
    """The classic truth's lab as preferences; captures/http/ and captures/anywhere/ are read
    as a user would, roles inferred."""
    truth = capture.with_name(capture.stem + ".truth.json")
    if capture.parent != REPO / "captures" or not truth.exists():
        return ()
    return prefs_from_truth(load_truth(truth))


def label_argv(capture: Path, script: bool = True) -> list[str]:
    """The labelling command, with paths relative to the checkout (the cwd both here and in
    the chroot, where the checkout is /lblab/src). script=False: the plugin is installed."""
    cmd = [*_read(capture, script), "-2", "-Y", "frame"]
    cmd += ["-T", "fields", "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=|"]
    for field in LABEL_FIELDS:
        cmd += ["-e", field]
    return cmd


def _read(capture: Path, script: bool) -> list[str]:
    """tshark reading the capture with the plugin, its key log and its truth's preferences."""
    cmd = ["tshark", "-n", "-r", _rel(capture)]
    if script:
        cmd += ["-X", "lua_script:plugins/lblab.lua"]
    keys = capture.with_suffix(".keys")  # an HTTPS capture's TLS key log, read as the tests do
    if keys.is_file():
        cmd += ["-o", f"tls.keylog_file:{_rel(keys)}"]
    for pref in _prefs(capture):
        cmd += ["-o", pref]
    return cmd


def _rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def table_argv(capture: Path, script: bool = True) -> list[str]:
    """The plugin's own request table (Tools > LB-Lab > Requests, tshark -z lblab,requests)."""
    return [*_read(capture, script), "-q", "-z", "lblab,requests,tsv"]


def report_argv(capture: Path) -> list[str]:
    keys = capture.with_suffix(".keys")
    keylog = ["--keylog", _rel(keys)] if keys.is_file() else []
    return ["lbreport", "report", "--format", "json", *keylog, _rel(capture)]


PROFILE_ARGV = ["tshark", "-C", "LB-Lab", "-r", PROFILE_CAPTURE]
PROFILE_ERRORS_ARGV = PROFILE_ARGV + ["-Y", "_ws.lua.error"]


def batch_script(who: str) -> str:
    """What runs inside the chroot, once per (release, user): every command's stdout, stderr
    and exit code land in $1/NAME.{out,err,rc}.

    As root, Wireshark 4.2+ runs no user Lua script (-X lua_script:, the personal plugin
    folder) unless a global init.lua allows it, and no option or environment variable does;
    a plugin in the global Lua plugin folder does load. So root's labels come from the plugin
    installed there by `lbreport install --system` (removed again right after), the user's
    from -X lua_script: as here."""
    lines = [
        "#!/bin/bash",
        "set -u",
        'out=$1',
        "cd /lblab/src",
        'run() { local name=$1; shift; "$@" >"$out/$name.out" 2>"$out/$name.err";'
        ' echo $? >"$out/$name.rc"; }',
        # independent commands, as many at once as there are cores
        'jobs_max=$(nproc)',
        'par() { while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do wait -n; done; run "$@" & }',
        "run id id -u",
        "run version tshark --version",
        # (a) no personal plugins or preferences: an empty HOME
        'export HOME="$out/home-empty"; mkdir -p "$HOME"',
    ]
    as_root = who == "root"
    if as_root:
        lines.append("run labels-install lbreport install --system")
    lines += [f"par labels-{c.stem} {shlex.join(label_argv(c, script=not as_root))}"
              for c in CAPTURES]
    lines += [f"par table-{c.stem} {shlex.join(table_argv(c, script=not as_root))}"
              for c in CAPTURES]
    lines.append("wait")
    if as_root:
        lines.append("run labels-uninstall lbreport install --system --uninstall")
    # (b), (c), (d): a fresh HOME; reports before install (the packaged plugin), then install.
    lines += ['export HOME="$out/home"; mkdir -p "$HOME"', "run doctor lbreport doctor"]
    lines += [f"par report-{c.stem} {shlex.join(report_argv(c))}" for c in CAPTURES]
    lines += [
        "wait",
        "run install lbreport install",
        f"run profile {shlex.join(PROFILE_ARGV)}",
        f"run profile-errors {shlex.join(PROFILE_ERRORS_ARGV)}",
    ]
    if as_root:  # the plugin in the global folder: what root's Wireshark 4.2+ does load
        lines += [
            "run system-install lbreport install --system",
            f"run system-profile {shlex.join(PROFILE_ARGV)}",
            f"run system-profile-errors {shlex.join(PROFILE_ERRORS_ARGV)}",
            "run system-uninstall lbreport install --system --uninstall",
        ]
    return "\n".join(lines) + "\n"


# lbreport from (a copy of) this checkout into the chroot's venv, editable as scripts/setup.sh
# does (lbreport finds the plugin and profile beside its package, in the checkout); its
# dependencies are already there. A --system plugin left by an interrupted run is removed.
PREPARE = r"""
set -eu
rm -f "$(tshark -G folders | awk -F'\t' '/^Global Lua Plugins/ {print $2}')/lblab.lua"
rm -rf /opt/lblab/src-copy
mkdir -p /opt/lblab/src-copy
tar -C /lblab/src --exclude=./.venv --exclude=./.git --exclude=./build \
    --exclude='*.egg-info' --exclude=__pycache__ -cf - . | tar -C /opt/lblab/src-copy -xf -
/opt/lblab/venv/bin/python -m pip uninstall -q -y lbreport >/dev/null 2>&1 || true
/opt/lblab/venv/bin/python -m pip install -q --no-build-isolation -e /opt/lblab/src-copy
chmod -R a+rX /opt/lblab
"""


# ---- running things -----------------------------------------------------------------------


@functools.cache
def snapshot() -> Path:
    """A copy of the checkout for this session: the chroots (as /lblab/src) and the host
    reference both run it, so edits made meanwhile in a shared working tree can't make the two
    sides differ."""
    dest = Path(tempfile.mkdtemp(prefix="lblab-versions-src-"))
    atexit.register(shutil.rmtree, dest, True)
    excludes = ["./.venv", "./.git", "./build", "*.egg-info", "__pycache__", "./bench/out"]
    tar = ["tar", "-C", str(REPO), *[f"--exclude={e}" for e in excludes], "-cf", "-", "."]
    packed = subprocess.run(tar, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-C", str(dest), "-xf", "-"], input=packed, check=True)
    return dest


@functools.cache
def chroot_dir(suite: str) -> Path:
    out = subprocess.run(["bash", str(CHROOT_SH), "path", suite], capture_output=True,
                         text=True, check=True)
    return Path(out.stdout.strip())


def _unavailable(suite: str) -> str | None:
    what = f"Wireshark {RELEASES[suite]} (Debian {suite}) chroot"
    if os.geteuid() != 0:
        return f"{what}: entering a chroot needs root"
    if not (chroot_dir(suite) / ".lblab-ready").exists():
        return (f"{what} not built at {chroot_dir(suite)}: "
                f"`bash scripts/wireshark-chroot.sh build {suite}` (as root)")
    return None


def require(suite: str) -> None:
    if os.environ.get("LBLAB_SKIP_VERSIONS") == "1":
        pytest.skip("LBLAB_SKIP_VERSIONS=1")
    reason = _unavailable(suite)
    if reason:
        if os.environ.get("LBLAB_REQUIRE_VERSIONS") == "1":
            pytest.fail(reason + " (LBLAB_REQUIRE_VERSIONS=1)")
        pytest.skip(reason)


def in_chroot(suite: str, who: str, script: str) -> subprocess.CompletedProcess:
    cmd = ["bash", str(CHROOT_SH), "run", *(["--user"] if who == "user" else []),
           "--repo", str(snapshot()), suite, "--", "bash", "-c", script, "batch"]
    # Its own process group, so a timeout ends everything it started inside the chroot.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        err += f"\n(killed after {RUN_TIMEOUT} s)"
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _user_ids(root: Path) -> tuple[int, int]:
    for line in (root / "etc" / "passwd").read_text().splitlines():
        parts = line.split(":")
        if parts[0] == "lblabuser":
            return int(parts[2]), int(parts[3])
    raise AssertionError(f"no lblabuser in {root}/etc/passwd")


class Outputs:
    """A batch's outputs, by command name."""

    def __init__(self, folder: Path):
        self.folder = folder

    def rc(self, name: str) -> int | None:
        path = self.folder / f"{name}.rc"
        return int(path.read_text()) if path.exists() else None

    def out(self, name: str) -> str:
        path = self.folder / f"{name}.out"
        return path.read_text(errors="replace") if path.exists() else ""

    def err(self, name: str) -> str:
        path = self.folder / f"{name}.err"
        return path.read_text(errors="replace") if path.exists() else ""

    def failure(self, name: str) -> str:
        """Why command NAME failed, for an assertion message."""
        return (f"{name}: exit {self.rc(name)}\n--- stderr:\n{self.err(name)[-3000:]}"
                f"\n--- stdout:\n{self.out(name)[-1500:]}")


@functools.cache
def _prepared(suite: str) -> str | None:
    """Installs lbreport into the chroot's venv once per session; the error, if any."""
    proc = in_chroot(suite, "root", PREPARE)
    if proc.returncode != 0:
        return f"installing lbreport in the {suite} chroot failed:\n{proc.stderr[-3000:]}"
    return None


@functools.cache
def _batch(suite: str, who: str) -> Outputs | str:
    problem = _prepared(suite)
    if problem:
        return problem
    root = chroot_dir(suite)
    folder = root / "tmp" / "lblab-versions" / who
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.chmod(folder.parent, 0o755)
    if who == "user":
        uid, gid = _user_ids(root)
        os.chown(folder, uid, gid)
    inside = f"/tmp/lblab-versions/{who}"
    script = batch_script(who)
    (folder / "batch.sh").write_text(script)
    proc = in_chroot(suite, who, f"bash {inside}/batch.sh {inside}")
    if proc.returncode != 0:
        return (f"the batch in the {suite} chroot as {who} failed (exit {proc.returncode}):\n"
                f"{proc.stderr[-3000:]}")
    return Outputs(folder)


def batch(suite: str, who: str) -> Outputs:
    require(suite)
    result = _batch(suite, who)
    if isinstance(result, str):
        pytest.fail(result)
    return result


# ---- the reference: this machine's tshark (4.0) -------------------------------------------


def _host_run(argv: list[str], home: str) -> subprocess.CompletedProcess:
    src = snapshot()
    if argv[0] == "lbreport":
        argv = [sys.executable, "-m", "lbreport", *argv[1:]]
    env = dict(os.environ, HOME=home, PYTHONPATH=str(src / "postproc"))
    return subprocess.run(argv, cwd=src, capture_output=True, text=True, env=env,
                          timeout=600, check=False)


def _host_once(argv: list[str]) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as home:
        return _host_run(argv, home)


@functools.cache
def host_reference() -> dict[str, subprocess.CompletedProcess]:
    """Every capture's labels and JSON report here, as many at once as there are cores."""
    jobs = {f"labels-{c.stem}": label_argv(c) for c in CAPTURES}
    jobs.update({f"table-{c.stem}": table_argv(c) for c in CAPTURES})
    jobs.update({f"report-{c.stem}": report_argv(c) for c in CAPTURES})
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        done = dict(zip(jobs, pool.map(_host_once, jobs.values()), strict=True))
    return done


def host_labels(capture: Path) -> str:
    proc = host_reference()[f"labels-{capture.stem}"]
    assert proc.returncode == 0, f"host tshark: {proc.stderr}"
    return proc.stdout


def host_report(capture: Path) -> subprocess.CompletedProcess:
    return host_reference()[f"report-{capture.stem}"]


@functools.cache
def host_profile() -> str:
    with tempfile.TemporaryDirectory() as home:
        installed = _host_run(["lbreport", "install"], home)
        assert installed.returncode == 0, installed.stderr
        proc = _host_run(PROFILE_ARGV, home)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


# ---- comparisons --------------------------------------------------------------------------


def label_rows(text: str) -> dict[int, dict[str, str]]:
    rows = {}
    for line in text.splitlines():
        cols = line.split("\t")
        cols += [""] * (len(LABEL_FIELDS) - len(cols))
        rows[int(cols[0])] = dict(zip(LABEL_FIELDS, cols, strict=True))
    return rows


# tshark's own TCP analysis changed after 4.0: 4.2+ flags duplicate ACKs that 4.0 does not (on
# captures/http/lossy-browser-*, where segments were lost). The plugin only relays tshark's
# findings in lblab.flags, so that one finding is left out of the comparison; every label the
# plugin decides itself must still be equal.
TSHARK_DRIFT = "dup-ack"


def _without_drift(flags: str) -> str:
    return ",".join(f for f in flags.split(",") if f and f != TSHARK_DRIFT)


def _json_without_drift(report: dict) -> dict:
    for req in report.get("requests", []):
        for step in req.get("steps", []):
            step["flags"] = [f for f in step.get("flags", []) if f != TSHARK_DRIFT]
    return report


def label_differences(want: str, got: str, limit: int = 8) -> list[str]:
    want_rows, got_rows = label_rows(want), label_rows(got)
    for rows in (want_rows, got_rows):
        for row in rows.values():
            row["lblab.flags"] = _without_drift(row.get("lblab.flags", ""))
    diffs = []
    if len(want_rows) != len(got_rows):
        diffs.append(f"{len(got_rows)} frames, host has {len(want_rows)}")
    for frame, row in want_rows.items():
        other = got_rows.get(frame)
        if other is None:
            diffs.append(f"frame {frame}: missing")
        elif other != row:
            fields = [f"{k}: {other[k]!r} (host {v!r})" for k, v in row.items() if other[k] != v]
            diffs.append(f"frame {frame}: " + ", ".join(fields))
        if len(diffs) >= limit:
            break
    return diffs


def json_differences(want, got, path: str = "$", limit: int = 8) -> list[str]:
    diffs: list[str] = []

    def walk(a, b, where):
        if len(diffs) >= limit:
            return
        if isinstance(a, dict) and isinstance(b, dict):
            for key in list(a) + [k for k in b if k not in a]:
                if key not in b or key not in a:
                    diffs.append(f"{where}.{key}: only in {'host' if key in a else 'chroot'}")
                else:
                    walk(a[key], b[key], f"{where}.{key}")
        elif isinstance(a, list) and isinstance(b, list):
            if len(a) != len(b):
                diffs.append(f"{where}: {len(b)} items, host has {len(a)}")
            for i, (x, y) in enumerate(zip(a, b, strict=False)):
                walk(x, y, f"{where}[{i}]")
        elif a != b:
            diffs.append(f"{where}: {b!r} (host {a!r})")

    walk(want, got, path)
    return diffs


def meaningful(stderr: str) -> list[str]:
    """stderr less tshark's warning about running as root."""
    return [line for line in stderr.splitlines() if "This could be dangerous" not in line]


def no_lua_trouble(outputs: Outputs, name: str) -> None:
    lua = [line for line in outputs.err(name).splitlines() if "Lua:" in line]
    assert not lua, f"{name}: Lua messages on stderr:\n" + "\n".join(lua[:10])


# ---- the tests ----------------------------------------------------------------------------

RELEASE_PARAMS = [pytest.param(s, id=f"{RELEASES[s]}-{s}") for s in RELEASES]


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("suite", RELEASE_PARAMS)
def test_chroot_runs_the_release_as_the_user(suite, who):
    outputs = batch(suite, who)
    assert outputs.rc("version") == 0, outputs.failure("version")
    first = outputs.out("version").splitlines()[0]
    assert f" {RELEASES[suite]}." in first, f"expected Wireshark {RELEASES[suite]}: {first}"
    uid = int(outputs.out("id").strip())
    assert (uid == 0) == (who == "root"), f"ran as uid {uid}"


@pytest.mark.parametrize("capture", CAPTURES, ids=CAPTURE_IDS)
@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("suite", RELEASE_PARAMS)
def test_labels_match_wireshark_4_0(suite, who, capture):
    outputs = batch(suite, who)
    if who == "root":
        assert outputs.rc("labels-install") == 0, outputs.failure("labels-install")
    name = f"labels-{capture.stem}"
    assert outputs.rc(name) == 0, outputs.failure(name)
    no_lua_trouble(outputs, name)
    got = outputs.out(name)
    errors = [r for r in label_rows(got).values() if r["_ws.lua.error"]]
    assert not errors, f"_ws.lua.error on frames {[r['frame.number'] for r in errors][:10]}"
    assert any(r["lblab.src_role"] for r in label_rows(got).values()), (
        f"no frame has lblab.src_role: was the plugin loaded?\n{outputs.failure(name)}")
    diffs = label_differences(host_labels(capture), got)
    assert not diffs, f"labels differ from tshark 4.0 on {capture.name}:\n" + "\n".join(diffs)


@pytest.mark.parametrize("capture", CAPTURES, ids=CAPTURE_IDS)
@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("suite", RELEASE_PARAMS)
def test_request_table_matches_wireshark_4_0(suite, who, capture):
    """tshark -z lblab,requests (the GUI's Requests window) says on 4.4/4.6 what it says on 4.0."""
    outputs = batch(suite, who)
    name = f"table-{capture.stem}"
    assert outputs.rc(name) == 0, outputs.failure(name)
    no_lua_trouble(outputs, name)
    want = host_reference()[name]
    assert want.returncode == 0, want.stderr
    assert outputs.out(name) == want.stdout


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("suite", RELEASE_PARAMS)
def test_doctor_passes(suite, who):
    outputs = batch(suite, who)
    assert outputs.rc("doctor") == 0, outputs.failure("doctor")


@pytest.mark.parametrize("capture", CAPTURES, ids=CAPTURE_IDS)
@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("suite", RELEASE_PARAMS)
def test_json_report_matches_wireshark_4_0(suite, who, capture):
    outputs = batch(suite, who)
    name = f"report-{capture.stem}"
    host = host_report(capture)
    if host.returncode != 0:
        # A capture lbreport refuses here must be refused there, with the same message.
        assert outputs.rc(name) == host.returncode, outputs.failure(name)
        assert meaningful(outputs.err(name)) == meaningful(host.stderr), (
            f"{name}: another error than tshark 4.0's:\n{outputs.err(name)}\nhost:\n{host.stderr}")
        return
    assert outputs.rc(name) == 0, outputs.failure(name)
    no_lua_trouble(outputs, name)
    try:
        got = json.loads(outputs.out(name))
    except ValueError as exc:
        pytest.fail(f"{name}: not JSON ({exc}):\n{outputs.out(name)[:500]}")
    diffs = json_differences(_json_without_drift(json.loads(host.stdout)),
                             _json_without_drift(got))
    assert not diffs, f"report differs from tshark 4.0 on {capture.name}:\n" + "\n".join(diffs)


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("suite", RELEASE_PARAMS)
def test_installed_profile_shows_role_columns(suite, who):
    """`lbreport install`, then `tshark -C LB-Lab` shows the role columns.

    As root, Wireshark 4.2+ loads no plugin from the personal folder (nothing on the command
    line or in the environment changes that; only a global init.lua does), so there a plain
    install must either work or warn that root's Wireshark will not load the copy, and
    `lbreport install --system` must give the columns."""
    outputs = batch(suite, who)
    assert outputs.rc("install") == 0, outputs.failure("install")
    problems = profile_problems(outputs, "")
    if who == "root" and problems:
        said = (outputs.out("install") + outputs.err("install")).lower()
        assert "warning" in said and "root" in said, (
            "as root the personal plugin isn't loaded and `lbreport install` doesn't say so:\n"
            + outputs.failure("install") + "\n" + "\n".join(problems[:4]))
        assert outputs.rc("system-install") == 0, outputs.failure("system-install")
        problems = profile_problems(outputs, "system-")
        assert outputs.rc("system-uninstall") == 0, outputs.failure("system-uninstall")
    assert not problems, "\n".join(problems[:8])


def profile_problems(outputs: Outputs, prefix: str) -> list[str]:
    """What is wrong with a `tshark -C LB-Lab` run's output, compared with the host's."""
    name, errors = f"{prefix}profile", f"{prefix}profile-errors"
    if outputs.rc(name) != 0:
        return [outputs.failure(name)]
    lua = [line for line in outputs.err(name).splitlines() if "Lua:" in line]
    if lua:
        return [f"{name}: Lua messages on stderr:"] + lua[:10]
    if outputs.rc(errors) != 0:
        return [outputs.failure(errors)]
    if outputs.out(errors).strip():
        return [f"{name}: frames match _ws.lua.error:", outputs.out(errors)[:2000]]
    # Columns: No., Time, Source, Src role, Destination, Dst role, Req#, Step, Backend, ...
    # Addresses may be named differently (the OUI database changes between releases), so
    # each line must hold the frame's labels as words, in the host's order.
    want = host_profile().splitlines()
    got = outputs.out(name).splitlines()
    if len(got) != len(want):
        return [f"{name}: {len(got)} lines, host has {len(want)}:"] + got[:5]
    labels = label_rows(host_labels(CAPTURES[CAPTURE_IDS.index("classic-client")]))
    fields = ("lblab.src_role", "lblab.dst_role", "lblab.req", "lblab.step", "lblab.backend")
    problems = []
    for want_line, got_line in zip(want, got, strict=True):
        tokens, want_tokens = got_line.split(), want_line.split()
        row = labels[int(want_tokens[0])]
        shown = [row[f] for f in fields if row[f] and row[f] in want_tokens]
        if tokens[0] != want_tokens[0] or not _words_in_order(shown, tokens):
            problems.append(f"got  {got_line}\nhost {want_line}")
    if problems:
        problems.insert(0, f"{name}: role columns differ from tshark 4.0's:")
    return problems


def _words_in_order(words: list[str], tokens: list[str]) -> bool:
    at = 0
    for word in words:
        try:
            at = tokens.index(word, at) + 1
        except ValueError:
            return False
    return True

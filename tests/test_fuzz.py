"""Fuzz suite (issue 12): nothing a capture contains may hang lbreport, break it, or forge
its report.

A seeded corpus (tests/fuzz/gen.py: mutated reference captures, non-captures, hostile HTTP
crafted byte by byte) runs through the real CLI (`python -m lbreport report`, real tshark,
real plugin), two cases at a time. Every case must:

- end within TIMEOUT seconds (else "hang"; the whole process group is killed);
- exit 0, 1 or 3, with a reason on stderr when not 0, and never print a Traceback;
- write valid UTF-8 only, stderr included;
- with --format json and exit 0/3: parse as strict JSON (no NaN), account for every frame
  (frames_in_requests + frames_other == frames_total) and count exactly the frames tshark
  itself reads from that file; `truncated` iff exit 3;
- on every 2nd hostile case and every 10th other case, in text, markdown, csv (and html on
  every 3rd of those): the same exit code and no raw control character (C0 but tab/newline,
  DEL, C1; carriage return allowed in csv and html);
- when only the storage changed (pcap/nsecpcap/gzip copy, 802.1Q tags): the base capture's
  own report (requests, backends, evidence, anomalies, frame counts);
- roles only for IP addresses (never garbage), and in a client's or M3's view only for
  addresses in some packet's IP/ARP/ND header or in the classic lab;
- on crafted captures (well-formed, only the bytes are hostile): exit 0, every request
  reported, and roles only for addresses that appear in IP headers (a header the client wrote
  must never create a role).

LBREPORT_FUZZ_SEED picks another corpus; LBREPORT_FUZZ_JOBS the parallelism (default 2);
LBREPORT_FUZZ_KEEP a folder where failing inputs are copied (default: pytest's tmp folder).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fuzz.gen import DEFAULT_SEED, Builder, Case, plan

pytestmark = [
    pytest.mark.fuzz,
    pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed"),
]

SEED = int(os.environ.get("LBREPORT_FUZZ_SEED", DEFAULT_SEED))
JOBS = max(1, int(os.environ.get("LBREPORT_FUZZ_JOBS", "2")))
TIMEOUT = 60  # seconds per lbreport run; more is a hang
CASES = plan(SEED)
EXTRA_FORMATS = ("text", "markdown", "csv")
PDML_UNREADABLE = b"Could not read tshark's output"  # messages.py err.pdml

# Raw control characters a terminal, a spreadsheet or a Markdown viewer could act on.
_C0 = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x80-\x9f"
CONTROL = {
    "text": re.compile(f"[{_C0}\r]"),
    "markdown": re.compile(f"[{_C0}\r]"),
    "csv": re.compile(f"[{_C0}]"),
    "html": re.compile(f"[{_C0}]"),
    "stderr": re.compile(f"[{_C0}\r]"),
}


@dataclass
class Run:
    fmt: str
    rc: int | None  # None: killed after TIMEOUT
    stdout: bytes
    stderr: bytes
    seconds: float

    def stderr_text(self) -> str:
        return self.stderr.decode("utf-8", "replace").strip()


@dataclass
class Result:
    case: Case
    path: Path | None = None
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    runs: list[Run] = field(default_factory=list)


def run_lbreport(path: Path, fmt: str) -> Run:
    argv = [sys.executable, "-m", "lbreport", "report", str(path), "--format", fmt]
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
        rc: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # lbreport and its tshark children
        out, err = proc.communicate()
        rc = None
    return Run(fmt, rc, out, err, time.monotonic() - t0)


ADDRESS_FIELDS = ("ip.addr", "ipv6.addr", "arp.src.proto_ipv4", "arp.dst.proto_ipv4",
                  "icmpv6.nd.ns.target_address", "icmpv6.nd.na.target_address")
# The embedded classic lab's addresses (postproc/lbreport/data/classic.toml): roles may name
# them without any packet from them.
CLASSIC_LAB = {"192.168.56.1", "192.168.56.101", "192.168.56.102", "192.168.56.103"}


def tshark_facts(path: Path) -> tuple[int, set[str]]:
    """How many frames tshark itself reads from the file (up to a cut, if any), and every
    address in the packets' IP, IPv6, ARP and neighbour-discovery headers."""
    argv = ["tshark", "-n", "-r", str(path), "-T", "fields", "-E", "occurrence=a",
            "-E", "aggregator=,", "-e", "frame.number"]
    for name in ADDRESS_FIELDS:
        argv += ["-e", name]
    proc = subprocess.run(argv, capture_output=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    frames, addresses = 0, set()
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        number, _, rest = line.partition("\t")
        if number.strip():
            frames += 1
        addresses.update(a for a in re.split(r"[,\t]", rest) if a)
    return frames, {_norm(a) for a in addresses}


def _norm(addr: str) -> str:
    try:
        return str(ipaddress.ip_address(addr))
    except ValueError:
        return addr


def _strict_json(text: str) -> dict:
    def refuse(name: str) -> None:
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def _check_common(run: Run, problems: list[str]) -> None:
    tag = f"[{run.fmt}]"
    if run.rc is None:
        problems.append(f"{tag} hang: still running after {TIMEOUT} s (killed); stderr: "
                        f"{run.stderr_text()[-500:]!r}")
        return
    if b"Traceback" in run.stderr or b"Traceback" in run.stdout:
        last = [ln for ln in run.stderr_text().splitlines() if ln.strip()][-3:]
        problems.append(f"{tag} Traceback (rc {run.rc}), ending: " + " | ".join(last))
    if run.rc not in (0, 1, 3):
        problems.append(f"{tag} exit code {run.rc}; stderr: {run.stderr_text()[-500:]!r}")
    if run.rc != 0 and not run.stderr.strip():
        problems.append(f"{tag} exit code {run.rc} without a reason on stderr")
    if PDML_UNREADABLE in run.stderr:
        # tshark accepted the file (else its own message comes first) but wrote PDML that
        # lbreport cannot parse: the report is lost for a reason in lbreport or the plugin.
        problems.append(f"{tag} tshark's PDML unreadable (rc {run.rc}): "
                        f"{run.stderr_text()[-500:]!r}")
    for name, data in (("stdout", run.stdout), ("stderr", run.stderr)):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad = data[max(0, exc.start - 40): exc.end + 40]
            problems.append(f"{tag} {name} is not valid UTF-8 ({exc.reason} at byte "
                            f"{exc.start}): {bad!r}")
            continue
        pattern = CONTROL["stderr"] if name == "stderr" else CONTROL.get(run.fmt)
        if pattern is not None and (m := pattern.search(text)):
            around = text[max(0, m.start() - 40): m.end() + 40]
            problems.append(f"{tag} raw control character {m.group()!r} in {name}: {around!r}")


def _check_json(run: Run, case: Case, path: Path, problems: list[str]) -> None:
    if run.rc not in (0, 3):
        if case.expect_requests is not None:
            problems.append(f"[json] a well-formed crafted capture was not reported "
                            f"(rc {run.rc}): {run.stderr_text()[-500:]!r}")
        return
    try:
        rep = _strict_json(run.stdout.decode("utf-8"))
    except ValueError as exc:  # UnicodeDecodeError, JSONDecodeError, NaN/Infinity
        problems.append(f"[json] output does not parse as strict JSON: {exc}")
        return
    s = rep.get("summary", {})
    total, inreq, other = (s.get(k) for k in ("frames_total", "frames_in_requests",
                                              "frames_other"))
    if not all(isinstance(v, int) for v in (total, inreq, other)):
        problems.append(f"[json] summary frame counts missing: {s!r:.300}")
        return
    if inreq + other != total:
        problems.append(f"[json] conservation broken: frames_in_requests {inreq} + "
                        f"frames_other {other} != frames_total {total}")
    steps = sum(len(r["steps"]) for r in rep.get("requests", []))
    if steps != inreq:
        problems.append(f"[json] the requests' steps ({steps}) are not frames_in_requests "
                        f"({inreq})")
    if len(rep.get("requests", [])) != s.get("requests"):
        problems.append(f"[json] {len(rep['requests'])} requests listed, summary says "
                        f"{s.get('requests')}")
    counted, seen = tshark_facts(path)
    if total != counted:
        problems.append(f"[json] frames_total {total} but tshark reads {counted} frames")
    roles = _role_addresses(rep.get("roles", {}))
    invalid = sorted(a for a in roles if _norm(a) == a and not _is_ip(a))
    if invalid:
        problems.append(f"[json] roles for things that are no IP address: {invalid}; "
                        f"roles {rep.get('roles')}")
    if rep.get("capture_point") in ("client", "M3"):  # not a backend's view (XFF is all it has)
        forged = sorted(a for a in roles if _is_ip(a) and _norm(a) not in seen | CLASSIC_LAB)
        if forged:
            problems.append(f"[json] roles for addresses in no packet header (from HTTP "
                            f"headers?): {forged}; roles {rep.get('roles')}")
    if rep.get("truncated") is not (run.rc == 3):
        problems.append(f"[json] truncated={rep.get('truncated')} with exit code {run.rc}")
    if case.expect_requests is not None:
        if run.rc != 0:
            problems.append(f"[json] crafted capture (not cut) exited {run.rc}")
        if s.get("requests") != case.expect_requests:
            problems.append(f"[json] {s.get('requests')} requests reported, "
                            f"{case.expect_requests} sent")


def _is_ip(addr: str) -> bool:
    try:
        ipaddress.ip_address(addr)
        return True
    except ValueError:
        return False


def _role_addresses(roles: dict) -> set[str]:
    out: set[str] = set()
    for value in roles.values():
        out.update(value if isinstance(value, list) else [value])
    return out


class BaseReports:
    """The reference captures' own JSON reports, each computed once (thread-safe)."""

    def __init__(self, builder: Builder) -> None:
        self._builder = builder
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._reports: dict[str, dict | None] = {}
        self.runs = 0

    def get(self, name: str) -> dict | None:
        with self._lock:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            if name not in self._reports:
                self.runs += 1
                run = run_lbreport(self._builder.base_path(name), "json")
                self._reports[name] = _strict_json(run.stdout.decode()) if run.rc == 0 else None
            return self._reports[name]


def _essence(rep: dict) -> dict:
    """What must not change when only the storage changes."""
    keys = ("client", "method", "uri", "status", "backend", "backend_evidence",
            "upstream_statuses", "anomalies")
    return {
        "capture_point": rep["capture_point"], "roles": rep["roles"],
        "requests": [{k: r[k] for k in keys} | {"frames": [s["frame"] for s in r["steps"]]}
                     for r in rep["requests"]],
        "summary": {k: rep["summary"][k] for k in ("requests", "frames_total",
                                                   "frames_in_requests", "frames_other")},
    }  # fmt: skip


def _check_same(run: Run, case: Case, bases: BaseReports, problems: list[str]) -> None:
    want = bases.get(case.same_as) if case.same_as else None
    if want is None or run.rc != 0:
        if want is not None:
            problems.append(f"[json] exit {run.rc}, but {case.same_as} itself reports fine")
        return
    got = _essence(_strict_json(run.stdout.decode()))
    want = _essence(want)
    if got != want:
        diffs = [k for k in want if got.get(k) != want[k]]
        detail = ""
        if "requests" in diffs:
            pairs = list(zip(got["requests"], want["requests"], strict=False))
            first = next(((i, g, w) for i, (g, w) in enumerate(pairs) if g != w), None)
            detail = (f"; request {first[0] + 1}: got {first[1]}, {case.same_as} has {first[2]}"
                      if first else f"; {len(got['requests'])} requests vs "
                      f"{len(want['requests'])}")
        problems.append(f"[json] report differs from {case.same_as}'s own in {diffs}{detail}"[
            :1500])


def run_case(case: Case, builder: Builder, bases: BaseReports) -> Result:
    result = Result(case)
    t0 = time.monotonic()
    try:
        result.path = builder.build(case)
    except Exception as exc:  # the generator's own failure: say so, don't hide it
        result.problems.append(f"could not build the case: {exc}")
        return result
    first = run_lbreport(result.path, "json")
    result.runs.append(first)
    _check_common(first, result.problems)
    if first.rc is not None:
        _check_json(first, case, result.path, result.problems)
        if case.same_as and not result.problems:
            _check_same(first, case, bases, result.problems)
        formats = (*EXTRA_FORMATS, *(("html",) if case.html else ())) if case.all_formats else ()
        for fmt in formats:
            run = run_lbreport(result.path, fmt)
            result.runs.append(run)
            _check_common(run, result.problems)
            if run.rc is not None and run.rc != first.rc:
                result.problems.append(f"[{fmt}] exit code {run.rc}, json's was {first.rc}: "
                                       f"{run.stderr_text()[-300:]!r}")
    result.seconds = time.monotonic() - t0
    return result


@pytest.fixture(scope="session")
def fuzz_results(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                 ) -> dict[str, Result]:
    """Run every selected case once, JOBS at a time; the tests only read the results."""
    selected = {item.callspec.params["case"].id for item in request.session.items
                if item.get_closest_marker("fuzz") is not None and hasattr(item, "callspec")
                and "case" in item.callspec.params}
    cases = [c for c in CASES if c.id in selected]
    builder = Builder(tmp_path_factory.mktemp("fuzz-corpus"))
    bases = BaseReports(builder)
    keep = Path(os.environ.get("LBREPORT_FUZZ_KEEP") or tmp_path_factory.mktemp("fuzz-failed"))
    t0 = time.monotonic()
    with ThreadPoolExecutor(JOBS) as pool:
        results = {r.case.id: r for r in pool.map(lambda c: run_case(c, builder, bases), cases)}
    wall = time.monotonic() - t0
    for r in results.values():
        if r.problems and r.path is not None and r.path.exists():
            keep.mkdir(parents=True, exist_ok=True)
            shutil.copy2(r.path, keep / r.path.name)
            r.path = keep / r.path.name
    runs = sum(len(r.runs) for r in results.values()) + bases.runs
    failed = sum(1 for r in results.values() if r.problems)
    log = keep / "fuzz-log.json"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(json.dumps([{
        "id": r.case.id, "params": r.case.params, "seconds": round(r.seconds, 2),
        "runs": [{"format": x.fmt, "rc": x.rc, "seconds": round(x.seconds, 2),
                  "stderr": x.stderr_text()[-300:]} for x in r.runs],
        "problems": r.problems,
    } for r in results.values()], indent=1, default=str))
    print(f"\nfuzz: seed {SEED}, {len(cases)} cases, {runs} lbreport runs, {JOBS} at a time: "
          f"{wall:.0f} s wall; {failed} case(s) with problems; log: {log}")
    return results


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_fuzz_case(case: Case, fuzz_results: dict[str, Result]) -> None:
    result = fuzz_results[case.id]
    if result.problems:
        lines = [f"fuzz case {case.id} (seed {SEED}, recipe {case.recipe}, params "
                 f"{case.params}); input kept at {result.path}",
                 f"reproduce: lbreport report {result.path} --format json",
                 *result.problems]
        pytest.fail("\n".join(lines), pytrace=False)


def test_the_plan_is_seeded() -> None:
    """Same seed, same corpus plan; another seed, another plan."""
    assert [(c.id, c.params) for c in plan(SEED)] == [(c.id, c.params) for c in CASES]
    assert [c.params for c in plan(SEED + 1)] != [c.params for c in CASES]

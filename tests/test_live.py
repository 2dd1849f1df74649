"""`lbreport live`: a real farm (nginx balancer, Apache backends) in network namespaces, the
live command running inside M3's namespace on M3's interface, real curl and ab traffic.

Every request in the balancer's log must be printed with its backend and status, within a
moment of its teardown, and `lbreport report` on the --write file must agree with the live
output. Fast tests cover the failures a student meets first (no such interface, no
permission) and the live bookkeeping on a reference capture read in one pass.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAB = ROOT / "captures" / "lab"
sys.path.insert(0, str(LAB))

from farm import Farm, FarmSpec  # noqa: E402
from lbreport import live_capture  # noqa: E402
from lbreport.errors import LbreportError  # noqa: E402
from lbreport.live import LiveTracker  # noqa: E402
from lbreport.pdml import Record  # noqa: E402

LBREPORT = [sys.executable, "-m", "lbreport"]
NEEDED = ("ip", "nginx", "apache2", "dumpcap", "tshark", "curl", "ab")


def _lab_skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "the lab needs root (network namespaces, capturing)"
    missing = [b for b in NEEDED if not shutil.which(b) and not Path("/usr/sbin", b).exists()]
    return f"missing {', '.join(missing)} (run scripts/setup.sh)" if missing else None


needs_dumpcap = pytest.mark.skipif(not shutil.which("dumpcap") or not shutil.which("tshark"),
                                   reason="dumpcap/tshark missing (run scripts/setup.sh)")


class _Lines:
    """A process's output lines with the time each arrived (read in a thread)."""

    def __init__(self, stream) -> None:  # noqa: ANN001 - a text pipe
        self.items: list[tuple[float, str]] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:  # noqa: ANN001
        for line in stream:
            self.items.append((time.monotonic(), line))

    def wait_for(self, predicate, timeout: float) -> bool:  # noqa: ANN001
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.items):
                return True
            time.sleep(0.05)
        return False

    def join(self) -> None:
        self._thread.join(5)


def _requests(lines: _Lines) -> list[tuple[float, dict]]:
    out = []
    for when, line in lines.items:
        obj = json.loads(line)
        if "index" in obj:
            out.append((when, obj))
    return out


@pytest.mark.lab
@pytest.mark.skipif(_lab_skip_reason() is not None, reason=_lab_skip_reason() or "")
def test_live_on_m3_agrees_with_the_balancer_log_and_the_written_file(tmp_path: Path) -> None:
    written = tmp_path / "live.pcapng"
    with Farm(FarmSpec(), tmp_path / "work") as farm:
        farm.warm_neighbours()
        m3 = farm.m3
        env = {**os.environ, "PYTHONPATH": str(ROOT / "postproc")}
        proc = subprocess.Popen(
            farm.ns_exec(m3, [*LBREPORT, "live", "-i", m3.ifname, "--write", str(written),
                              "--format", "jsonl"]),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
            text=True, env=env,
        )  # fmt: skip
        try:
            out, err = _Lines(proc.stdout), _Lines(proc.stderr)
            assert err.wait_for(lambda items: any("capturing now" in ln for _, ln in items), 30), (
                "".join(ln for _, ln in err.items))
            # Single requests, one at a time: each must be printed soon after its teardown
            # (curl returns once the response is in; the teardown follows within ~1 ms).
            latencies = []
            for i in range(3):
                farm.curl(farm.url())
                done = time.monotonic()
                assert out.wait_for(lambda items, n=i + 1: len(items) >= n, 10), "not printed"
                latencies.append(out.items[i][0] - done)
            farm.curl(farm.url(), farm.url())  # two requests on one keep-alive connection
            farm.flush_neighbours()  # M3 must ARP for the backends again
            farm.ab(50, 5)
            log = farm.balancer_log()
            assert len(log) == 55
            out.wait_for(lambda items: len(items) >= len(log), 20)
            proc.send_signal(signal.SIGINT)
            assert proc.wait(30) == 0, "".join(ln for _, ln in err.items)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        out.join()
        err.join()

    stderr_text = "".join(ln for _, ln in err.items)
    assert "Traceback" not in stderr_text and "Lua" not in stderr_text, stderr_text
    # Printed as each completes: with ab -c 5 that is not always the order of arrival.
    printed = sorted((obj for _, obj in _requests(out)), key=lambda r: r["index"])
    summary = json.loads(out.items[-1][1])["summary"]
    print(f"live: teardown → print latencies (s): {[round(x, 3) for x in latencies]}")
    assert max(latencies) < 1.5, latencies

    # Every request in the balancer's log, with the same client, status and backend. The log
    # orders by millisecond, so ab's concurrent requests are matched by client ip:port (and
    # order on a keep-alive connection), not by position.
    def by_client(reqs: list[dict]) -> dict[str, list[tuple[int, str | None]]]:
        out: dict[str, list[tuple[int, str | None]]] = {}
        for r in reqs:
            out.setdefault(r["client"], []).append((r["status"], r["backend"]))
        return out

    assert [r["index"] for r in printed] == list(range(1, len(log) + 1))
    assert by_client(printed) == by_client(log)
    assert all(r["backend_evidence"] == "back-leg" for r in printed)
    assert summary["requests"] == len(log)

    # The written file, re-read by the two-pass report, gives the same requests.
    report = subprocess.run([*LBREPORT, "report", str(written), "--format", "json"],
                            capture_output=True, text=True, env=env, timeout=120)
    assert report.returncode == 0, report.stderr
    file_requests = json.loads(report.stdout)["requests"]
    for key in ("index", "client", "status", "backend"):
        assert [r[key] for r in file_requests] == [r[key] for r in printed], key
    file_summary = json.loads(report.stdout)["summary"]
    assert file_summary["requests"] == summary["requests"]
    assert file_summary["backend_distribution"] == summary["backend_distribution"]
    assert file_summary["status_counts"] == summary["status_counts"]
    assert file_summary["frames_total"] == summary["frames_total"]


# --------------------------------------------------------------------------- failures up front


@needs_dumpcap
def test_no_such_interface_is_said_at_once() -> None:
    started = time.monotonic()
    proc = subprocess.run([*LBREPORT, "live", "-i", "nosuch0"], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT / "postproc")})
    assert proc.returncode == 1
    assert "No such interface: nosuch0" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert time.monotonic() - started < 30


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv") or not shutil.which("dumpcap"),
                    reason="needs root to drop to the user nobody (setpriv), and dumpcap")
def test_no_permission_to_capture_is_said(monkeypatch: pytest.MonkeyPatch) -> None:
    """Root can always capture, so the check's dumpcap runs as nobody: a real refusal, read by
    the real check (the rest of lbreport is not run as nobody: it may live under /root)."""
    real_run = subprocess.run

    def as_nobody(cmd, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        drop = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
        return real_run([*drop, *cmd], *args, **kwargs)

    monkeypatch.setattr(live_capture.subprocess, "run", as_nobody)
    with pytest.raises(LbreportError, match="No permission to capture on lo"):
        live_capture.check_interface("lo")


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("dumpcap"), reason="needs root")
def test_capture_filter_compiles() -> None:
    lab = live_capture.classic_lab()
    bpf = live_capture.capture_filter(lab)
    proc = subprocess.run(["dumpcap", "-i", "lo", "-d", "-f", bpf], capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert "tcp port 80" in bpf and "arp" in bpf and "ip6[40] == 135" in bpf


# --------------------------------------------------------------------------- the bookkeeping


def _rec(frame: int, req: int, step: str, leg: str = "front", **kw: object) -> Record:
    return Record(frame, 1000.0 + frame / 1000, req=req, step=step, leg=leg,
                  src_role=str(kw.pop("src", "client")), dst_role=str(kw.pop("dst", "M3")),
                  **kw)  # type: ignore[arg-type]


def test_a_request_is_due_at_its_teardown_and_gets_its_latest_backend() -> None:
    tr = LiveTracker()
    frames = [
        _rec(1, 1, "SYN"), _rec(2, 1, "SYN/ACK", src="M3", dst="client"), _rec(3, 1, "ACK"),
        _rec(4, 1, "request", method="GET", uri="/", client="c:1", conn=0, evidence="none"),
        # single pass: an ARP guess first, then the back leg names the real backend
        _rec(5, 1, "ARP-who-has", leg="arp", src="M3", dst="broadcast", backend="M1",
             evidence="arp"),
        _rec(6, 1, "up-request", leg="back", src="M3", dst="M2", method="GET", uri="/",
             backend="M2", evidence="back-leg"),
        _rec(7, 1, "up-response", leg="back", src="M2", dst="M3", status=200, backend="M2",
             evidence="back-leg"),
        _rec(8, 1, "up-FIN-M3", leg="back", src="M3", dst="M2", backend="M2",
             evidence="back-leg"),
        _rec(9, 1, "up-last-ACK", leg="back", src="M3", dst="M2", backend="M2",
             evidence="back-leg"),
        _rec(10, 1, "response", src="M3", dst="client", status=200, conn=0, backend="M2",
             evidence="back-leg"),
        _rec(11, 1, "FIN-client", backend="M2", evidence="back-leg"),
        _rec(12, 1, "FIN-M3", src="M3", dst="client", backend="M2", evidence="back-leg"),
    ]
    for r in frames:
        tr.add(r, now=0.0)
    assert tr.due(now=0.1) == []  # not torn down yet
    tr.add(_rec(13, 1, "last-ACK", backend="M2", evidence="back-leg"), now=0.2)
    (req,) = tr.due(now=0.2)  # front and back leg closed: at once
    assert (req.index, req.backend, req.evidence, req.status) == (1, "M2", "back-leg", 200)
    assert [s.frame for s in req.steps] == list(range(1, 14))
    assert req.steps[0].time == 0.0  # from the capture's first frame


def test_keep_alive_and_idle_requests_are_due_without_a_teardown() -> None:
    tr = LiveTracker()
    tr.add(_rec(1, 1, "request", method="GET", uri="/a", conn=0, evidence="none"), 0.0)
    tr.add(_rec(2, 1, "response", src="M3", dst="client", status=200, conn=0,
                evidence="marker", backend="M1"), 0.0)
    tr.add(_rec(3, 2, "request", method="GET", uri="/b", conn=0, evidence="none"), 0.1)
    tr.add(_rec(4, 2, "response", src="M3", dst="client", status=200, conn=0,
                evidence="marker", backend="M2"), 0.1)
    assert [r.index for r in tr.due(0.1)] == [1]  # superseded on its connection
    assert tr.due(1.0) == []
    assert [r.index for r in tr.due(10.0)] == [2]  # idle after its response
    # a handshake the plugin numbered ahead, with no request after it: not a request
    tr.add(_rec(5, 3, "SYN"), 11.0)
    assert tr.due(100.0, everything=True) == []


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("dumpcap"), reason="needs root")
def test_duration_ends_cleanly_and_says_nothing_was_captured(tmp_path: Path) -> None:
    """A real capture on lo (no HTTP there: the farm filter matches nothing) for --duration."""
    written = tmp_path / "empty.pcapng"
    started = time.monotonic()
    proc = subprocess.run([*LBREPORT, "live", "-i", "lo", "--duration", "1", "--filter",
                           "tcp port 9", "--write", str(written)], capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "postproc")})
    assert proc.returncode == 0, proc.stderr
    assert "no packet was captured on lo (filter: tcp port 9)" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert written.exists()
    assert time.monotonic() - started < 30


# Record attribute → the lblab field it holds (docs/fields.md), for the oracle below: written
# out here, not taken from pdml.py, so that a field the decoder misreads cannot agree with it.
_ORACLE_FIELDS = {
    "req": "lblab.req", "src_role": "lblab.src_role", "dst_role": "lblab.dst_role",
    "step": "lblab.step", "leg": "lblab.leg", "flags": "lblab.flags",
    "backend": "lblab.backend", "evidence": "lblab.backend_evidence",
    "client": "lblab.client", "method": "lblab.method", "uri": "lblab.uri",
    "status": "lblab.status", "marker": "lblab.marker", "arp_target": "lblab.arp_target",
    "conn": "lblab.conn", "role_defs": "lblab.role_def", "client_xff": "lblab.client_xff",
    "other_balancers": "lblab.other_balancer", "kind": "lblab.kind", "direct": "lblab.direct",
    "scheme": "lblab.scheme", "http_version": "lblab.http_version",
    "encrypted": "lblab.encrypted", "interim": "lblab.interim",
}  # fmt: skip


def _oracle(capture: Path, plugin: list[str]) -> list[Record]:
    """What tshark itself prints for every lblab field of every frame (`-T fields`, one pass
    as live reads), typed by hand: no PDML and no pdml.py involved."""
    fields = ["frame.number", "frame.time_epoch", *_ORACLE_FIELDS.values()]
    argv = ["tshark", "-r", str(capture), *plugin, "-T", "fields", "-E", "occurrence=a",
            "-E", "aggregator=|"]
    for name in fields:
        argv += ["-e", name]
    proc = subprocess.run(argv, capture_output=True, text=True, check=True,
                          env=dict(os.environ, HOME="/nonexistent-lblab-home"))
    records = []
    for line in proc.stdout.splitlines():
        frame, epoch, *cols = line.split("\t")
        values: dict[str, object] = {}
        for attr, text in zip(_ORACLE_FIELDS, cols, strict=True):
            if not text:
                continue  # absent: Record's default
            if attr in ("role_defs", "other_balancers"):  # repeated fields
                values[attr] = tuple(text.split("|"))
            elif attr == "encrypted":
                values[attr] = text in ("1", "True")
            elif attr in ("req", "status", "conn", "direct", "interim"):
                values[attr] = int(text)
            else:
                values[attr] = text
        records.append(Record(frame=int(frame), time=float(epoch), **values))  # type: ignore[arg-type]
    return records


def _timeless(records: list[Record]) -> list[Record]:
    """Times compared apart: pyshark's epoch text and tshark's may round the last digit."""
    return [dataclasses.replace(r, time=0.0) for r in records]


@pytest.mark.parametrize("name", ["classic-m3", "browser-client"])
def test_live_and_report_decode_packets_as_tshark_prints_them(
        name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Live's records (pyshark's packets through pdml.py) and the report's (PdmlReader on
    tshark's PDML, with the plugin's separate fields and with its compact lblab.pkt) are
    each what tshark prints for the lblab fields of the same single pass (`_oracle`)."""
    import io

    import pyshark
    from lbreport.pdml import PdmlReader

    monkeypatch.setenv("HOME", "/nonexistent-lblab-home")  # only the repository's copy
    capture = ROOT / "captures" / f"{name}.pcapng"
    plugin = ["-X", f"lua_script:{ROOT / 'plugins' / 'lblab.lua'}"]
    want = _oracle(capture, plugin)
    assert any(r.req for r in want) and any(r.step for r in want)  # labelled, not empty
    assert any(r.method for r in want) and any(r.status for r in want)

    cap = pyshark.FileCapture(str(capture), custom_parameters=[*plugin, "-J", "lblab"],
                              keep_packets=False)
    try:
        got = [live_capture.packet_record(p) for p in cap]
    finally:
        cap.close()
    assert [e for _r, e in got] == [""] * len(want)  # no Lua error
    live = [r for r, _e in got]
    assert [(r.frame, round(r.time, 6)) for r in live] == [
        (r.frame, round(r.time, 6)) for r in want]
    assert _timeless(live) == _timeless(want)

    for prefs in ([], ["-o", "lblab.compact:TRUE"]):
        proc = subprocess.run(["tshark", "-r", str(capture), *plugin, *prefs, "-T", "pdml",
                               "-J", "lblab"], capture_output=True, check=True,
                              env=dict(os.environ, HOME="/nonexistent-lblab-home"))
        report = list(PdmlReader(io.BytesIO(proc.stdout)))
        assert report == want, prefs

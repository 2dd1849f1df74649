"""`lbreport live`: explain each request while the lab runs.

Records arrive one by one from a single-pass tshark (live_capture.py). `LiveTracker` groups
them by the plugin's request index and says when a request's lifecycle is complete; the
request is then built with the same model (`LifecycleBuilder`) and printed with the same
per-request renderers as `lbreport report`. Python still derives no role, index or backend:
it only waits until the plugin's labels for a request stop changing.

When is a request complete (first that applies):
- its front connection was torn down (`last-ACK` or `RST`) and its back leg too, or
  `CLOSE_GRACE` seconds passed since (a keep-alive upstream connection stays open);
- a later request arrived on the same front connection after its response (keep-alive);
- no frame for `IDLE_AFTER_RESPONSE` seconds after its response (`IDLE_NO_RESPONSE` without).

Single pass: a frame's labels use only earlier frames, and the plugin may improve a request's
backend as frames arrive (an ARP guess, then the back-leg link). The request is printed with
the plugin's latest backend and evidence for it, which is what `tshark -2` gives every frame
of that request in the file report.
"""

from __future__ import annotations

import dataclasses
import json
import queue
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from lbreport.config import Lab
from lbreport.environment import Environment
from lbreport.errors import LbreportError
from lbreport.lifecycle import LifecycleBuilder
from lbreport.messages import t
from lbreport.model import Report, Request
from lbreport.pdml import Record
from lbreport.render import json as render_json
from lbreport.render import text as render_text
from lbreport.vocabulary import BACK, FRONT, STEPS, UNKNOWN

CLOSE_GRACE = 0.5  # s after the front teardown, for back-leg frames still on their way
IDLE_AFTER_RESPONSE = 3.0  # s without frames after the response (keep-alive left open)
IDLE_NO_RESPONSE = 15.0  # s without frames and without a response
NO_PACKET_HINT_AFTER = 10.0  # s without any packet: say what the filter was, once
TICK = 0.05  # s between two looks at the clocks when no packet arrives

_FRONT_STEPS, _BACK_STEPS = STEPS[FRONT], STEPS[BACK]
_FRONT_CLOSE = (_FRONT_STEPS.last_ack, _FRONT_STEPS.rst)
_BACK_CLOSE = (_BACK_STEPS.last_ack, _BACK_STEPS.rst)
_RESPONSES = (_FRONT_STEPS.response, _BACK_STEPS.response)


@dataclass(slots=True)
class _Pending:
    """One request whose lifecycle is still open."""

    index: int
    records: list[Record] = field(default_factory=list)
    last_seen: float = 0.0  # monotonic clock of the last frame
    responded: bool = False
    front_closed_at: float | None = None
    back_frames: bool = False
    back_closed: bool = False
    superseded: bool = False  # a later request came on the same front connection


class LiveTracker:
    """Pure bookkeeping: `add(record, now)` and `due(now)` → the requests complete by `now`.

    Keeps every record (a lab session is small) so that `final_report` can rebuild the whole
    capture in frame order, exactly like the file report's single model.
    """

    def __init__(self) -> None:
        self.records: list[Record] = []
        self._pending: dict[int, _Pending] = {}
        self._done: set[int] = set()
        self._conn_latest: dict[int, int] = {}  # front connection → latest request index
        self.first_time: float | None = None
        # Whole-capture facts (legs, roles, frame counts) without its requests: a builder that
        # sees every frame with the request index removed stays O(1) per frame.
        self._frames = LifecycleBuilder()
        self.late_frames = 0  # frames labelled with a request already printed

    def add(self, r: Record, now: float) -> None:
        self.records.append(r)
        if self.first_time is None:
            self.first_time = r.time
        self._frames.add(dataclasses.replace(r, req=0) if r.req else r)
        if not r.req:
            return
        if r.req in self._done:
            self.late_frames += 1
            return
        p = self._pending.get(r.req)
        if p is None:
            p = self._pending[r.req] = _Pending(r.req)
        p.records.append(r)
        p.last_seen = now
        if r.step in _RESPONSES and r.status:
            p.responded = True
        if r.leg == BACK:
            p.back_frames = True
            if r.step in _BACK_CLOSE:
                p.back_closed = True
        if r.step in _FRONT_CLOSE and p.front_closed_at is None:
            p.front_closed_at = now
        if r.step == _FRONT_STEPS.request and r.leg == FRONT and r.conn >= 0:
            earlier = self._conn_latest.get(r.conn)
            if earlier is not None and earlier != r.req and earlier in self._pending:
                self._pending[earlier].superseded = True
            self._conn_latest[r.conn] = r.req

    def _complete(self, p: _Pending, now: float) -> bool:
        back_settled = p.back_closed or not p.back_frames
        if p.front_closed_at is not None:
            return back_settled or now - p.front_closed_at >= CLOSE_GRACE
        if p.superseded and p.responded:
            return back_settled or now - p.last_seen >= CLOSE_GRACE
        idle = now - p.last_seen
        return idle >= (IDLE_AFTER_RESPONSE if p.responded else IDLE_NO_RESPONSE)

    def due(self, now: float, everything: bool = False) -> list[Request]:
        """The requests complete by `now` (all that are left with `everything`), built with
        the report's model, in index order."""
        ready = [p for p in self._pending.values() if everything or self._complete(p, now)]
        out = []
        for p in sorted(ready, key=lambda p: p.index):
            del self._pending[p.index]
            self._done.add(p.index)
            if not any(r.method for r in p.records):
                # Only a predicted handshake, no HTTP request followed: not a request (the
                # file report counts these frames as "other" too).
                continue
            out.append(self._build(p.records))
        return out

    @property
    def pending(self) -> int:
        return len(self._pending)

    def capture_point(self) -> str:
        return self._frames.finish().capture_point

    def _build(self, records: list[Record]) -> Request:
        builder = LifecycleBuilder()
        for r in _final_labels(records):
            builder.add(r)
        # Times count from the capture's first frame, and anomalies are judged for the whole
        # capture's point of view (an M3 capture expects a back leg on every request).
        report = builder.finish(first_time=self.first_time or 0.0,
                                capture_point=self.capture_point())
        return next(report.requests())

    def final_report(self, lab: Lab, capture: str, roles_source: str) -> Report:
        """Every frame, in frame order, each request with its final labels: the state that
        `lbreport report` on the written file should agree with."""
        by_req: dict[int, list[Record]] = {}
        for r in self.records:
            if r.req:
                by_req.setdefault(r.req, []).append(r)
        final = {i: _final_labels(rs) for i, rs in by_req.items()}
        position = {i: 0 for i in final}
        builder = LifecycleBuilder()
        for r in self.records:
            if r.req and any(x.method for x in by_req[r.req]):
                r = final[r.req][position[r.req]]
                position[r.req] += 1
            elif r.req:
                r = dataclasses.replace(r, req=0)  # a predicted handshake with no request
            builder.add(r)
        return builder.finish(policy=lab.policy, weights=lab.weights,
                              configured_backends=list(lab.backends), capture=capture,
                              roles_source=roles_source, lab_source=lab.source)


def _final_labels(records: list[Record]) -> list[Record]:
    """The request's frames, each with the plugin's latest backend and evidence for it."""
    latest = next((r for r in reversed(records) if r.evidence), None)
    if latest is None:
        return records
    return [
        r if (r.backend, r.evidence) == (latest.backend, latest.evidence)
        else dataclasses.replace(r, backend=latest.backend, evidence=latest.evidence)
        for r in records
    ]


# --------------------------------------------------------------------------- output


class _Output:
    """text: the report's per-request block + a running summary line; jsonl: one object per
    request (render/json.py's keys), then {"summary": …}."""

    def __init__(self, fmt: str, env: Environment) -> None:
        self.fmt = fmt
        self.out = env.stdout
        self.err = env.stderr
        self.console, self._sink = env.report_console()
        self.requests = 0
        self.per_backend: Counter[str] = Counter()
        self.errors = 0

    def started(self, iface: str, bpf: str, lab_text: str, write: Path | None) -> None:
        lines = [t("live.started", iface=iface, bpf=bpf), t("live.roles", roles=lab_text)]
        if write:
            lines.append(t("live.writing", path=write))
        lines.append(t("live.each_request"))
        lines.append(t("live.starting"))
        if self.fmt == "text":
            for line in lines:
                self.console.print(line)
            self.console.print()
            self._sink.flush()
        else:
            print("\n".join(lines), file=self.err, flush=True)

    def capturing(self, iface: str) -> None:
        """Said once, when tshark really reads the interface: requests sent before this line
        are not seen."""
        print(t("live.capturing", iface=iface), file=self.err, flush=True)

    def request(self, req: Request) -> None:
        self.requests += 1
        self.per_backend[req.backend or UNKNOWN] += 1
        if req.is_error:  # the model's definition, as in the report
            self.errors += 1
        if self.fmt == "jsonl":
            self.out.write(json.dumps(render_json.request_json(req), ensure_ascii=False) + "\n")
            self.out.flush()
            return
        render_text.request_block(self.console, req)
        self.console.print(self.running())
        self.console.print()
        self._sink.flush()

    def running(self) -> str:
        backends = ", ".join(f"{b} {n}" for b, n in sorted(self.per_backend.items()))
        return t("live.running", requests=self.requests,
                 backends=backends or t("live.no_backend_yet"), errors=self.errors)

    def final(self, report: Report) -> None:
        if self.fmt == "jsonl":
            summary = render_json.summary_json(report)
            self.out.write(json.dumps({"summary": summary}, ensure_ascii=False) + "\n")
            self.out.flush()
            return
        render_text.summary(self.console, report)
        self._sink.flush()


# --------------------------------------------------------------------------- the command


@dataclass(frozen=True, slots=True)
class LiveOptions:
    iface: str
    lab_path: Path | None = None
    count: int | None = None
    duration: float | None = None
    write: Path | None = None
    fmt: str = "text"
    bpf: str | None = None  # None: the farm's traffic only (capture_filter)
    keylog: Path | None = None  # TLS key log (--keylog; default: the lab file's [tls] keylog)


def run(opts: LiveOptions, env: Environment | None = None,
        clock: Callable[[], float] = time.monotonic) -> int:
    """Capture until Ctrl-C / SIGTERM, --count or --duration; returns the exit code."""
    from lbreport import live_capture as lc

    env = env or Environment()
    session = _prepare(opts)
    output = _Output(opts.fmt, env)
    source = lc.LiveSource(opts.iface, session.bpf, session.runner, session.prefs, opts.write)
    loop = _Loop(opts, session.bpf, source, output, env.stderr, clock)
    with _signals_stop(loop.stop_reason):
        output.started(opts.iface, session.bpf, session.roles_text(), opts.write)
        loop.run()
    return _conclude(opts, session, loop)


@dataclass(frozen=True, slots=True)
class _Session:
    """What a live capture runs with, all checked before anything starts."""

    lab: Lab
    roles_source: str
    runner: object  # tshark.Runner
    prefs: list[str]
    bpf: str

    def roles_text(self) -> str:
        if self.roles_source == "configured":
            return t("live.roles_configured", source=self.lab.source)
        return t("live.roles_inferred")


def _prepare(opts: LiveOptions) -> _Session:
    """The lab, key log, plugin, interface, filter and --write file: every mistake a student
    can make is said here, before the capture starts."""
    from lbreport import live_capture as lc

    lab, roles_source = lc.choose_live_lab(opts.lab_path, opts.iface)
    keylog = opts.keylog or lab.keylog
    if keylog is not None:
        from lbreport.tshark import check_keylog

        check_keylog(keylog)
    runner, prefs = lc.plugin_and_prefs(lab, keylog)
    lc.check_interface(opts.iface)
    bpf = lc.capture_filter(lab) if opts.bpf is None else opts.bpf
    if opts.write is not None:
        try:
            opts.write.parent.mkdir(parents=True, exist_ok=True)
            opts.write.touch()
        except OSError as exc:
            raise LbreportError(t("live.err.write", path=opts.write,
                                  reason=exc.strerror)) from None
    return _Session(lab, roles_source, runner, prefs, bpf)


@contextmanager
def _signals_stop(stop_reason: list[str]) -> Iterator[None]:
    """SIGINT and SIGTERM only note why to stop (the loop stops the capture cleanly)."""

    def on_signal(signum: int, _frame: object) -> None:
        stop_reason.append(signal.Signals(signum).name)

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


class _Loop:
    """Reads the capture's records into a `LiveTracker` and prints each request when it is
    due, until the capture ends (stopped by a signal, --count or --duration, or failed)."""

    def __init__(self, opts: LiveOptions, bpf: str, source: Any, output: _Output, err: TextIO,
                 clock: Callable[[], float]) -> None:
        self.opts = opts
        self.bpf = bpf
        self.source = source  # live_capture.LiveSource
        self.tracker = LiveTracker()
        self.output = output
        self.err = err
        self.clock = clock
        self.stop_reason: list[str] = []
        self.failure = ""  # why the capture ended, if it failed
        self.lua_error = ""
        self._started = 0.0
        self._hinted = False
        self._announced = False

    def run(self) -> None:
        self._started = self.clock()
        try:
            self.source.start()
            while not self._turn():
                pass
        finally:
            self.source.stop()

    def _turn(self) -> bool:
        """One look at the clocks and the queue; True once the capture has ended."""
        from lbreport.live_capture import CaptureEnd

        self._maybe_stop(self.clock())
        item = self._read()
        if not self._announced and (item is not None or self.source.capturing()):
            self._announced = True
            self.output.capturing(self.opts.iface)
        if isinstance(item, tuple):
            self.lua_error = self.lua_error or item[1]
        for req in self.tracker.due(self.clock()):
            self.output.request(req)
        if isinstance(item, CaptureEnd):
            self.failure = item.error
            return True
        if (not self._hinted and not self.tracker.records and not self.stop_reason
                and self.clock() - self._started >= NO_PACKET_HINT_AFTER):
            self._hinted = True
            print(t("live.no_packet_yet", iface=self.opts.iface, bpf=self.bpf,
                    seconds=f"{NO_PACKET_HINT_AFTER:g}"), file=self.err, flush=True)
        return False

    def _maybe_stop(self, now: float) -> None:
        """--duration, --count or a signal: stop capturing, and keep reading until tshark
        has labelled the last packet."""
        stop = self.stop_reason
        if not stop:
            if self.opts.duration is not None and now - self._started >= self.opts.duration:
                stop.append("duration")
            elif self.opts.count is not None and self.output.requests >= self.opts.count:
                stop.append("count")
            if stop:
                _stop_in_background(self.source)
        elif len(stop) == 1 and stop[0] in ("SIGINT", "SIGTERM"):
            stop.append("stopping")
            _stop_in_background(self.source)

    def _read(self) -> object:
        """The queue's next item (None: only time passed); a burst of records is drained
        into the tracker at once, before anything is printed."""
        q = self.source.queue
        try:
            item = q.get(timeout=TICK)
        except queue.Empty:
            return None
        if not isinstance(item, Record):
            return item
        self.tracker.add(item, self.clock())
        while True:
            try:
                nxt = q.get_nowait()
            except queue.Empty:
                return item
            if not isinstance(nxt, Record):
                return nxt
            self.tracker.add(nxt, self.clock())


def _conclude(opts: LiveOptions, session: _Session, loop: _Loop) -> int:
    """The requests still open, what went wrong, and the whole capture's summary."""
    tracker, output, err = loop.tracker, loop.output, loop.err
    for req in tracker.due(loop.clock(), everything=True):
        output.request(req)
    if loop.lua_error:
        print(t("live.lua_error", detail=loop.lua_error), file=err)
    if loop.failure and not loop.stop_reason:
        raise LbreportError(t("live.err.ended", iface=opts.iface, reason=loop.failure))
    if not tracker.records:
        print(t("live.no_packet", iface=opts.iface, bpf=session.bpf), file=err)
        return 0
    capture = str(opts.write) if opts.write else f"live:{opts.iface}"
    output.final(tracker.final_report(session.lab, capture, session.roles_source))
    if tracker.late_frames:
        print(t("live.late_frames", count=tracker.late_frames), file=err)
    return 0


def _stop_in_background(source: object) -> None:
    """Ask dumpcap to stop without blocking the loop that drains tshark's last packets."""
    import threading

    threading.Thread(target=lambda: source.stop(timeout=10.0), daemon=True).start()  # type: ignore[attr-defined]

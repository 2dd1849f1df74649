"""Capture → Report: the one place that wires tshark, PDML, the lab and the lifecycle together.

The CLI calls `build_report`; a batch or live mode can call the same pieces.

tshark is started before the parser and the lifecycle are imported: on a small capture most of
tshark's time is its own start (dissectors, the plugin), which then overlaps with Python's. The
CLI can start it earlier still (`prestart`, as soon as the command line names the capture);
`build_report` then takes that run if it was started for the same capture, lab and key log.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from lbreport import tshark
from lbreport.config import Lab, classic_lab, inferred_lab, lab_addresses, load_lab, preferences
from lbreport.errors import LbreportError
from lbreport.labels import LabelsReader
from lbreport.messages import t
from lbreport.pdml import FIELDS_READ, PdmlReader  # lxml comes with the first read

if TYPE_CHECKING:
    from lxml import etree

    from lbreport.lifecycle import LifecycleBuilder
    from lbreport.model import Report

# A hook the CLI passes to show progress: called with the running tshark.
ProgressFactory = Callable[[tshark.TsharkRun], object]


def choose_lab(lab_path: Path | None, capture_addresses: set[str]) -> tuple[Lab, str]:
    """The lab file if given; else the classic lab when its balancer is in the capture; else
    no addresses at all (the plugin infers roles). Returns (lab, roles_source).

    The same rule runs in the plugin (lblab.lab_when_seen) on the whole capture: the report
    passes the classic lab that way and reads which happened afterwards (`lab_seen`); this
    one, on the capture's first frames, serves live and a plugin older than that."""
    if lab_path is not None:
        lab = load_lab(lab_path)
        return lab, "configured" if lab.has_addresses else "inferred"
    classic = classic_lab()
    seen = {_normalise(a) for a in capture_addresses}
    if lab_addresses(classic) & seen and _looks_classic(classic, seen):
        return classic, "configured"
    return inferred_lab(classic), "inferred"


def _looks_classic(classic: Lab, seen: set[str]) -> bool:
    """The classic balancer's address alone is not enough: a balancer with a second NIC on
    another network (10.0.0.3 → backends 10.0.0.1/.2) would get the classic backends, which
    are not there, and its back leg would be lost. Classic: a classic backend is seen too, or
    every address seen is on the classic network."""
    backends = {_normalise(a) for addrs in classic.backends.values() for a in addrs}
    if backends & seen:
        return True
    network = ipaddress.ip_network(f"{next(iter(lab_addresses(classic)))}/24", strict=False)
    return all(_on(a, network) for a in seen)


def lab_seen(applied: bool) -> tuple[Lab, str]:
    """No lab file, the classic lab passed with lblab.lab_when_seen: what choose_lab returns,
    as the plugin decided it (frame 1's lblab.lab_applied)."""
    classic = classic_lab()
    return (classic, "configured") if applied else (inferred_lab(classic), "inferred")


def _on(addr: str, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    try:
        return ipaddress.ip_address(addr) in network
    except ValueError:
        return True


def _normalise(addr: str) -> str:
    try:
        return str(ipaddress.ip_address(addr))
    except ValueError:
        return addr


def build_report(
    capture: Path,
    lab_path: Path | None = None,
    keep_pdml: Path | None = None,
    progress: ProgressFactory | None = None,
    warn: Callable[[str], None] = lambda _msg: None,
    keylog: Path | None = None,
) -> Report:
    """`keylog` (--keylog) wins over the lab file's `[tls] keylog`. `keep_pdml`: the report
    reads tshark's two-pass PDML (and saves it) instead of the plugin's own labels."""
    plan, run = _take_prestarted(capture, lab_path, keylog)
    if run is not None and keep_pdml is not None and plan.labels:
        run.close()  # started for the plugin's labels: --keep-pdml wants the PDML run
        run = None
    if run is None:
        plan = _plan(capture, lab_path, keylog, pdml=keep_pdml is not None)
        run = plan.start()
    from lbreport.lifecycle import LifecycleBuilder  # while tshark starts (module docstring)

    lab, roles_source, keylog = plan.lab, plan.roles_source, plan.keylog
    builder = LifecycleBuilder()
    if plan.labels:
        reader, outcome = _feed_labels(run, builder, progress)
    else:
        reader, outcome = _feed(run, builder, keep_pdml, progress)
    if plan.seen_by_plugin:
        first = reader.first  # frame 1: what the plugin says of the whole capture
        lab, roles_source = lab_seen(first is not None and first.lab_applied)
    _check_read(builder, reader, outcome, capture, plan.looks_like_capture, warn)
    report = builder.finish(
        policy=lab.policy, weights=lab.weights, configured_backends=list(lab.backends),
        capture=str(capture), roles_source=roles_source, lab_source=lab.source,
        truncated=outcome.truncated, keylog=str(keylog) if keylog is not None else "",
        lab_addresses_seen=_classic_addresses_seen(lab_path, roles_source, builder),
    )
    if report.summary.requests == 0 and not report.direct_requests:
        # Direct fetches only (a client to a backend) are a report: they are listed.
        raise _no_request(builder, lab, capture, keylog, outcome.truncated)
    return report


@dataclass(frozen=True, slots=True)
class _Plan:
    """Everything decided before tshark runs: the checks passed, which lab, the command."""

    inputs: tuple[Path, Path | None, Path | None]  # capture, lab file, --keylog as given
    looks_like_capture: bool
    runner: tshark.Runner
    lab: Lab
    roles_source: str  # "" while the plugin decides (seen_by_plugin)
    seen_by_plugin: bool
    keylog: Path | None
    reads: Path
    argv: list[str]
    labels: bool  # the plugin writes the labels (labels.py); else tshark's PDML (pdml.py)

    def start(self) -> tshark.TsharkRun:
        return tshark.TsharkRun(self.argv, self.inputs[0], self.runner.env(), reads=self.reads)


def _plan(capture: Path, lab_path: Path | None, keylog: Path | None, *, pdml: bool = False
          ) -> _Plan:
    """`pdml`: tshark's two-pass PDML even where the plugin could write its labels itself."""
    given = (capture, lab_path, keylog)
    looks_like_capture = tshark.check_capture(capture)
    if keylog is not None:  # before tshark: a wrong path is the user's first mistake
        tshark.check_keylog(keylog)
    runner = tshark.preflight(None).runner
    # No lab file: the classic lab, applied by the plugin only if the capture shows it (no
    # tshark run beforehand to look at the capture's addresses), unless the plugin is older.
    seen_by_plugin = lab_path is None and runner.lab_when_seen
    if seen_by_plugin:
        lab, roles_source = classic_lab(), ""
    else:
        lab, roles_source = choose_lab(
            lab_path, tshark.capture_addresses(capture) if lab_path is None else set())
    keylog = keylog or lab.keylog
    if keylog is not None:
        tshark.check_keylog(keylog)
    reads = runner.capture_path(capture)
    labels = runner.writes_labels and not pdml
    if labels:
        argv = tshark.labels_command(runner, reads, preferences(lab), keylog,
                                     lab_when_seen=seen_by_plugin)
    else:
        argv = tshark.pdml_command(runner, reads, preferences(lab), keylog,
                                   lab_when_seen=seen_by_plugin, fields=FIELDS_READ)
    return _Plan(given, looks_like_capture, runner, lab, roles_source, seen_by_plugin, keylog,
                 reads, argv, labels)


# The run `prestart` began, not yet taken by build_report.
_prestarted: tuple[_Plan, tshark.TsharkRun] | None = None
# The inputs prestart last tried, whether tshark started or not: asked again for the same ones
# (launch.py's guess, then the CLI's parser), it neither restarts tshark nor repeats a failure.
_prestart_tried: tuple[Path, Path | None, Path | None] | None = None


def prestart(capture: Path, lab_path: Path | None, keylog: Path | None) -> None:
    """Start the report's tshark now (the CLI calls this as soon as the command line names the
    capture, before converting its options). Says nothing: whatever stops it here, build_report
    finds again and reports. The CLI calls `drop_prestarted` when the command ends. Called
    again with the inputs it last tried (launch.py's guess, confirmed by the CLI's parser), it
    keeps that run, or that failure."""
    global _prestarted, _prestart_tried
    inputs = (capture, lab_path, keylog)
    if _prestart_tried == inputs:
        return
    drop_prestarted()
    _prestart_tried = inputs
    try:
        plan = _plan(capture, lab_path, keylog)
        _prestarted = (plan, plan.start())
    except Exception:  # noqa: BLE001 - build_report runs the same steps and says why
        _prestarted = None


def drop_prestarted() -> None:
    """Stop a prestarted tshark nobody took (the command failed before build_report)."""
    global _prestarted, _prestart_tried
    _prestart_tried = None
    if _prestarted is not None:
        _prestarted[1].close()
        _prestarted = None


def _take_prestarted(capture: Path, lab_path: Path | None, keylog: Path | None
                     ) -> tuple[_Plan, tshark.TsharkRun] | tuple[None, None]:
    """The prestarted plan and run if they were made for these inputs."""
    global _prestarted, _prestart_tried
    taken, _prestarted, _prestart_tried = _prestarted, None, None
    if taken is not None and taken[0].inputs == (capture, lab_path, keylog):
        return taken
    if taken is not None:
        taken[1].close()
    return None, None


def _feed(run: tshark.TsharkRun, builder: LifecycleBuilder, keep_pdml: Path | None,
          progress: ProgressFactory | None
          ) -> tuple[PdmlReader, tshark.Outcome]:
    """tshark's PDML into `builder`, record by record; then tshark's outcome (its warnings,
    whether the capture was cut short)."""
    from lxml import etree

    try:
        keep = _open_keep(keep_pdml)
        with keep as sink, (progress(run) if progress else nullcontext()):  # type: ignore[attr-defined]
            stream: IO[bytes] = _Tee(run.stdout, sink) if sink else run.stdout
            reader = PdmlReader(stream)
            try:
                for record in reader:
                    builder.add(record)
            except etree.XMLSyntaxError as exc:
                _unless_cut_short(run, exc)
        outcome = run.finish()
    finally:
        run.close()
    return reader, outcome


def _feed_labels(run: tshark.TsharkRun, builder: LifecycleBuilder,
                 progress: ProgressFactory | None
                 ) -> tuple[LabelsReader, tshark.Outcome]:
    """The plugin's labels into `builder`, as _feed does with the PDML; then whether the
    plugin wrote them all."""
    try:
        with progress(run) if progress else nullcontext():  # type: ignore[attr-defined]
            reader = LabelsReader(run.stdout)
            for record in reader:
                builder.add(record)
        outcome = run.finish()
    finally:
        run.close()
    if reader.write_error:
        raise LbreportError(t("err.plugin_lua", detail=reader.write_error))
    if reader.started and not reader.complete:
        raise LbreportError(t("err.labels_cut", frames=reader.frames))
    return reader, outcome


def _unless_cut_short(run: tshark.TsharkRun, exc: etree.XMLSyntaxError) -> None:
    """Unreadable PDML: fine after a capture cut short in the middle of a packet (what was
    read is reported); else tshark usually refused the file, and its stderr says why. Stops
    tshark first: waiting for a writer whose pipe nobody reads never ends."""
    run.kill()
    if not tshark.judge_stderr(run.capture, run.stderr_text(), 0).truncated:
        raise LbreportError(
            t("err.pdml", detail=exc, stderr=run.stderr_text().strip() or "nothing")
        ) from None


def _check_read(builder: LifecycleBuilder, reader: PdmlReader | LabelsReader,
                outcome: tshark.Outcome,
                capture: Path, looks_like_capture: bool, warn: Callable[[str], None]) -> None:
    """tshark's warnings, and what was read: frames the plugin failed on, none at all, or
    not a capture."""
    for line in outcome.warnings:
        warn(t("warn.stderr", line=line))
    if reader.lua_errors:
        raise LbreportError(
            t("err.plugin_frames", count=reader.lua_errors, frame=reader.first_lua_error_frame,
              detail=reader.first_lua_error)
        )
    if not looks_like_capture and builder.frames_in_requests == 0:
        raise LbreportError(t("err.not_pcap", path=capture))
    if builder.frames_total == 0 and not outcome.truncated:
        raise LbreportError(t("err.empty", path=capture))
    if outcome.truncated:
        warn(t("warn.truncated", path=capture, frames=builder.frames_total))
    for address, requests in builder.other_balancers:
        warn(t("warn.other_balancer", path=capture, address=address, requests=requests))


def _classic_addresses_seen(lab_path: Path | None, roles_source: str,
                            builder: LifecycleBuilder) -> int:
    """No lab file and roles inferred: how many of the classic lab's addresses the capture has
    anyway (the header then says so instead of "none matched")."""
    if lab_path is not None or roles_source != "inferred":
        return 0
    classic = classic_lab()
    lab = {_normalise(a) for a in (*classic.balancer, *classic.clients,
                                   *(a for addrs in classic.backends.values() for a in addrs))}
    return len(lab & {_normalise(a) for addrs in builder.roles.values() for a in addrs})


def _no_request(builder: LifecycleBuilder, lab: Lab, capture: Path, keylog: Path | None,
                truncated: bool) -> LbreportError:
    """Why a capture holds no request, as precisely as its frames tell."""
    frames = builder.frames_total
    if truncated:
        return LbreportError(t("err.no_http_cut", path=capture, frames=frames))
    if builder.tls_frames_seen:
        # TLS to the balancer and no request in it: name TLS, its port(s) and the key log
        # (not the balancer's address, which was right).
        ports = ", ".join(map(str, lab.https_ports or (443,)))
        if keylog is None:
            return LbreportError(t("err.no_http_tls", path=capture, frames=frames,
                                   tls=builder.tls_frames_seen, ports=ports))
        return LbreportError(t("err.no_http_tls_keylog", path=capture, keylog=keylog,
                               tls=builder.tls_frames_seen, ports=ports))
    if builder.http_requests_seen == 0 and builder.orphan_responses:
        # Responses and no request: tshark could not decode the requests' headers (HTTP/2).
        return LbreportError(t("err.no_http_responses_only", path=capture, frames=frames,
                               count=builder.orphan_responses))
    if builder.http_requests_seen == 0:
        return LbreportError(t("err.no_http_at_all", path=capture, frames=frames,
                               ports=", ".join(map(str, lab.ports or (80,)))))
    return LbreportError(t("err.no_http", path=capture, frames=frames))


def _open_keep(path: Path | None):  # noqa: ANN202 - a context manager yielding a file or None
    if path is None:
        return nullcontext(None)
    try:
        return path.open("wb")
    except OSError as exc:
        raise LbreportError(t("err.output", path=path, reason=exc.strerror)) from None


class _Tee:
    """A file-like reader that copies what lxml reads into `sink` (--keep-pdml)."""

    def __init__(self, source: IO[bytes], sink: IO[bytes]) -> None:
        self._source = source
        self._sink = sink

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        self._sink.write(data)
        return data

"""`lbreport batch DIR`: one row per capture of a class, built in parallel.

Each capture runs the same pipeline as `lbreport report` in a worker process (tshark is the
slow part, and one tshark uses one core). A capture that fails becomes a row with its error:
an instructor's folder always holds some broken or wrong files, and one of them must never
stop the other thirty rows.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from lbreport import pipeline
from lbreport.environment import Environment
from lbreport.errors import LbreportError
from lbreport.messages import set_language, t
from lbreport.model import Report
from lbreport.render.safe import csv_cell, markdown_cell, printable

# What a capture file is called in practice (Wireshark's "Save as" and dumpcap's defaults,
# and what students zip up). Anything else in the folder (write-ups, truth files) is skipped.
PATTERNS = ("*.pcapng", "*.pcap", "*.cap", "*.pcapng.gz", "*.pcap.gz")


@dataclass(frozen=True, slots=True)
class Row:
    file: str  # relative to the directory given
    requests: int | None = None
    complete: int | None = None
    backends: dict[str, dict[str, int]] = field(default_factory=dict)  # role → evidence → n
    anomalies: int | None = None
    anomaly_kinds: dict[str, int] = field(default_factory=dict)  # code → n
    capture_point: str = ""
    truncated: bool = False
    error: str = ""


def find_captures(directory: Path) -> list[Path]:
    """Every capture under `directory` (subfolders too: a class's submissions are often one
    folder per student), sorted so the table's order does not depend on the file system."""
    if not directory.exists():
        raise LbreportError(t("batch.err.missing", path=directory))
    if not directory.is_dir():
        raise LbreportError(t("batch.err.not_dir", path=directory))
    try:
        found = {p for pattern in PATTERNS for p in directory.rglob(pattern) if p.is_file()}
    except OSError as exc:
        raise LbreportError(t("batch.err.unreadable", path=directory,
                              reason=exc.strerror or exc)) from None
    if not found:
        raise LbreportError(t("batch.err.no_captures", path=directory,
                              patterns=", ".join(PATTERNS)))
    return sorted(found)


def summarise(name: str, report: Report) -> Row:
    backends: dict[str, Counter[str]] = {}
    kinds: Counter[str] = Counter()
    complete = 0
    for req in report.requests():
        if req.backend:
            backends.setdefault(req.backend, Counter())[req.evidence] += 1
        kinds.update(a.code for a in req.anomalies)
        complete += req.is_complete
    return Row(
        file=name,
        requests=report.summary.requests,
        complete=complete,
        backends={b: dict(backends[b]) for b in sorted(backends)},
        anomalies=sum(kinds.values()),
        anomaly_kinds=dict(sorted(kinds.items())),
        capture_point=report.capture_point,
        truncated=report.truncated,
    )


def one(path: Path, name: str, lab: Path | None, keylog: Path | None = None) -> Row:
    """Runs in a worker: never raises, so a bad capture is a row, not the end of the run."""
    try:
        return summarise(name, pipeline.build_report(path, lab, keylog=keylog))
    except LbreportError as exc:
        return Row(file=name, error=exc.message)
    except Exception as exc:  # noqa: BLE001 - a bug on one capture must not lose the others
        return Row(file=name, error=t("batch.err.internal", detail=f"{type(exc).__name__}: {exc}"))


def run(directory: Path, captures: list[Path], jobs: int, lab: Path | None = None,
        lang: str = "en", on_done: Callable[[Row], None] = lambda _row: None,
        keylog: Path | None = None) -> list[Row]:
    """Rows in the order of `captures` (from `find_captures`), whatever order they finish in.
    `keylog`: one TLS key log for every capture (a class's logs concatenated work too: each
    line names the TLS session it belongs to)."""
    names = {p: p.relative_to(directory).as_posix() for p in captures}
    rows: dict[Path, Row] = {}
    if jobs == 1:  # no pool: simpler to debug, and what a single capture needs anyway
        for p in captures:
            rows[p] = one(p, names[p], lab, keylog)
            on_done(rows[p])
    else:
        # The language is per process (messages._catalogue), so each worker sets its own.
        with ProcessPoolExecutor(max_workers=jobs, initializer=set_language,
                                 initargs=(lang,)) as pool:
            futures = {pool.submit(one, p, names[p], lab, keylog): p for p in captures}
            for future in as_completed(futures):
                rows[futures[future]] = future.result()
                on_done(rows[futures[future]])
    return [rows[p] for p in captures]


def default_jobs() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may use (containers, taskset)
    except AttributeError:
        return os.cpu_count() or 1


# -- output --------------------------------------------------------------------------------

COLUMNS = ("file", "requests", "complete", "backends", "anomalies", "anomaly_kinds",
           "capture_point", "truncated", "error")


def _backends(row: Row) -> str:
    return "; ".join(f"{b}: {sum(ev.values())} ({', '.join(f'{e} {n}' for e, n in ev.items())})"
                     for b, ev in row.backends.items())


def _kinds(row: Row) -> str:
    return "; ".join(f"{k} ×{n}" for k, n in row.anomaly_kinds.items())


def _cells(row: Row) -> list[str]:
    def num(v: int | None) -> str:
        return "" if v is None else str(v)

    failed = bool(row.error)
    return [
        row.file,
        num(row.requests),
        num(row.complete),
        _backends(row),
        num(row.anomalies),
        _kinds(row),
        row.capture_point,
        "" if failed else t("batch.yes") if row.truncated else t("batch.no"),
        row.error.replace("\n", " "),
    ]


def write_csv(rows: Iterable[Row], out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([t(f"batch.col.{c}") for c in COLUMNS])
    for row in rows:
        # File names and error messages can carry anything a student typed: defuse them.
        writer.writerow([csv_cell(c) for c in _cells(row)])


def write_markdown(rows: list[Row], directory: Path, out: TextIO) -> None:
    out.write(f"# {markdown_cell(t('batch.title', path=directory))}\n\n")
    out.write("| " + " | ".join(markdown_cell(t(f"batch.col.{c}")) for c in COLUMNS) + " |\n")
    out.write("|" + "---|" * len(COLUMNS) + "\n")
    for row in rows:
        out.write("| " + " | ".join(markdown_cell(c) for c in _cells(row)) + " |\n")
    failed = sum(1 for r in rows if r.error)
    out.write("\n" + printable(t("batch.done", total=len(rows), ok=len(rows) - failed,
                                 failed=failed)) + "\n")


class Progress:
    """A bar on stderr advancing per finished capture; nothing when stderr is not a terminal
    (a cron job's log, a pipe, CliRunner)."""

    def __init__(self, total: int, env: Environment | None = None) -> None:
        self._total = total
        self._console = (env or Environment()).progress_console()
        self._bar = None
        self._task = None

    def __enter__(self) -> Progress:
        if self._console is not None:
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as Bar

            self._bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=self._console, transient=True)
            self._bar.__enter__()
            self._task = self._bar.add_task(t("batch.progress"), total=self._total)
        return self

    def advance(self, row: Row) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, advance=1, description=printable(row.file)[:40])

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)

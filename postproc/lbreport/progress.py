"""A progress bar on stderr while tshark reads a long capture (none when stderr is not a
terminal). tshark's read position comes from /proc, so the PDML loop pays nothing for it."""

from __future__ import annotations

import threading
from types import TracebackType

from lbreport import tshark
from lbreport.environment import Environment
from lbreport.messages import t

MIN_BYTES = 4 << 20  # below this a capture is read before a bar would be noticed


class TsharkProgress:
    def __init__(self, run: tshark.TsharkRun, env: Environment | None = None) -> None:
        self._run = run
        self._env = env or Environment()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        try:
            self._size = run.reads.stat().st_size
        except OSError:
            self._size = 0

    def __enter__(self) -> TsharkProgress:
        if self._size >= MIN_BYTES and self._env.stderr_isatty:
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _poll(self) -> None:
        # rich only when a bar is drawn: a report's fixed cost pays no import for it.
        from rich.progress import (
            BarColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                   TimeElapsedColumn())
        with Progress(*columns, console=self._env.progress_console(), transient=True) as bar:
            # One dissection (the plugin writes its labels at the end) or two passes.
            one_pass = tshark.LABELS_STAT in self._run.argv
            first, then = (("progress.one_pass", "progress.labels") if one_pass
                           else ("progress.pass1", "progress.pass2"))
            task = bar.add_task(t(first), total=self._size)
            seen_two, second_pass = False, False
            while not self._stop.wait(0.2):
                positions = tshark.read_positions(self._run.proc.pid, self._run.reads)
                if not positions:
                    continue
                seen_two = seen_two or len(positions) > 1
                if not second_pass and (positions[0] >= self._size
                                        or (seen_two and len(positions) == 1)):
                    second_pass = True
                    bar.update(task, description=t(then))
                bar.update(task, completed=positions[-1] if second_pass else positions[0])

"""The plugin's labels as `tshark -q -z lblab,labels` writes them once the capture is read →
packet records, streamed line by line.

The report's run: one dissection (the plugin records in tshark's only pass), then one line a
frame, `FRAME<TAB>SECS.NSECS<TAB>name=value…`, where each name is one of the plugin's fields
(`lblab.` left out: docs/fields.md) and each value escapes `\\`, tab, newline and CR. A header
line opens the labels and a footer with the number of frames closes them; a Lua error on a
frame comes as its `lua_error` field, one while writing as an error line. Records are those
PdmlReader reads from the two-pass PDML (tests/test_labels_output.py compares them).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO

from lbreport.pdml import _DEFAULTS, _REPEATED, Record, RecordReader, _Interner, decode_field

HEADER = b"lblab-labels\t1"
FOOTER = b"lblab-labels-end"
WRITE_ERROR = b"lblab-labels-error"
LUA_ERROR_FIELD = "lua_error"

_UNESCAPE = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}
_ESCAPED = re.compile(r"\\(.)")


def _unescape(value: str) -> str:
    return _ESCAPED.sub(lambda m: _UNESCAPE.get(m.group(1), m.group(0)), value)


class LabelsReader(RecordReader):
    """Iterate `Record`s from the plugin's labels (bytes); keeps counters the caller checks
    afterwards, like PdmlReader, and whether the labels were complete."""

    def __init__(self, stream: IO[bytes]) -> None:
        super().__init__(stream)
        self.started = False  # the header was read: the plugin wrote its labels
        self.complete = False  # the footer was read: every frame's labels were written
        self.write_error = ""  # the plugin failed while writing them

    def __iter__(self) -> Iterator[Record]:
        intern = _Interner()
        names: dict[str, str] = {}  # "req" → "lblab.req", built as names appear
        for raw in self._stream:
            line = raw.rstrip(b"\n")
            if not self.started or self.complete:
                # Anything before the header or after the footer is someone else's (another
                # plugin's own statistics, say).
                self.started = self.started or line == HEADER
                continue
            if line.startswith(FOOTER):
                self.complete = True
                continue
            if line.startswith(WRITE_ERROR):
                self.write_error = _unescape(line.partition(b"\t")[2].decode("utf-8", "replace"))
                continue
            record = self._record(line.decode("utf-8", "replace"), intern, names)
            if record is None:
                continue
            if not self.frames:
                self.first = record
            self.frames += 1
            yield record

    def _record(self, line: str, intern: _Interner, names: dict[str, str]) -> Record | None:
        """A frame's line, or None for a line that is not one (never the plugin's)."""
        parts = line.split("\t")
        if not (parts[0].isascii() and parts[0].isdigit()):
            return None
        values = _DEFAULTS.copy()
        values[0] = int(parts[0])
        values[1] = self._time(parts[1] if len(parts) > 1 else "")
        repeated: dict[int, list[str]] | None = None
        for item in parts[2:]:
            name, _, value = item.partition("=")
            if "\\" in value:
                value = _unescape(value)
            full = names.get(name)
            if full is None:
                full = names[name] = f"lblab.{name}"
            if decode_field(values, full, value, intern):
                continue
            slot = _REPEATED.get(full)
            if slot is not None:
                repeated = repeated or {}
                repeated.setdefault(slot, []).append(value)
            elif name == LUA_ERROR_FIELD:
                self._lua_error(values[0], value)
        if repeated:
            for slot, shown in repeated.items():
                values[slot] = tuple(shown)
        return Record(*values)

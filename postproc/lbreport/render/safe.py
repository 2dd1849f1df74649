"""Make text taken from packets (URIs, methods, clients) safe for each output.

Packets are attacker-controlled: a URI can carry terminal escape sequences, spreadsheet
formulas or Markdown table syntax.
"""

from __future__ import annotations

import re

# C0 controls, DEL, C1 controls, and Unicode bidi/invisible-format characters that can
# disguise text in a terminal or an editor.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def _escape_char(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(s: str) -> str:
    """No control or invisible-format character survives; each becomes a visible \\xNN."""
    return _UNSAFE.sub(_escape_char, s)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(s: str) -> str:
    """A spreadsheet must not run a cell as a formula (CSV injection): prefix a quote."""
    s = printable(s)
    # printable() already turned \t and \r into "\x09"/"\x0d"; check the raw text too.
    return "'" + s if s.startswith(_FORMULA_START) else s


def markdown_cell(s: str) -> str:
    """One table cell: no pipe, newline or HTML-ish tag breaks the table."""
    s = printable(s)
    for ch in "\\|`*_<>[]":
        s = s.replace(ch, "\\" + ch)
    return s

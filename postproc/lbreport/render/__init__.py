"""One module per output format; each exposes `render(report, out)`."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import TextIO

from lbreport.model import Report

FORMATS = ("text", "markdown", "json", "csv", "html")


def renderer(fmt: str) -> Callable[[Report, TextIO], None]:
    if fmt not in FORMATS:
        raise ValueError(fmt)
    return import_module(f"lbreport.render.{fmt}").render

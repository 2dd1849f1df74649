"""One module per output format; each exposes `render(report, env)`: it writes `report` to
`env.stdout` (environment.py)."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module

from lbreport.environment import Environment
from lbreport.model import Report

FORMATS = ("text", "markdown", "json", "csv", "html")


def renderer(fmt: str) -> Callable[[Report, Environment], None]:
    if fmt not in FORMATS:
        raise ValueError(fmt)
    return import_module(f"lbreport.render.{fmt}").render

"""Shared pytest setup."""

from __future__ import annotations

import pytest
from lbreport import messages


@pytest.fixture(autouse=True)
def _english_by_default() -> None:
    """The catalogue's language is process state (the CLI sets it per run): a test that
    renders directly must not inherit the language a previous test's `--lang es` left."""
    messages.set_language("en")

"""Shared pytest setup."""

from __future__ import annotations

import os

import pytest
from lbreport import messages

# lbreport's default language follows LC_ALL / LC_MESSAGES / LANG: the tests expect English
# unless they ask for Spanish, whatever the machine's locale.
if messages.environment_language() != "en":
    os.environ["LC_ALL"] = "C.UTF-8"


@pytest.fixture(autouse=True)
def _english_by_default() -> None:
    """The catalogue's language is process state (the CLI sets it per run): a test that
    renders directly must not inherit the language a previous test's `--lang es` left."""
    messages.set_language("en")

"""Shared test helpers: the sample events in tests/events and where ../shared/data lives."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.data import require

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "tests" / "events"


def load_event(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


@pytest.fixture
def event() -> Any:
    return load_event


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test marked ``needs(path)`` (``tests/data.py``) skips without the file, or fails in CI."""
    for mark in item.iter_markers("shared_data"):
        require(*mark.args)

"""Where ../shared/data lives (beside the project, not part of a user's clone), and what a test
that needs it does without it: skips on a developer's machine, fails in CI (``CI=true``), where a
missing file would otherwise turn the real-data tests into silent skips."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
RETAIL = SHARED / "online_retail" / "online_retail_II_2009-2010.csv.gz"
CDNOW = SHARED / "cdnow"


def require(path: Path) -> None:
    """Return when ``path`` exists; otherwise skip the test, or fail it when ``CI`` is ``true``."""
    if path.exists():
        return
    reason = f"needs {path} (../shared/data, not part of a user's clone)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI=true: shared data must be present", pytrace=False)
    pytest.skip(reason)


def needs(path: Path) -> pytest.MarkDecorator:
    """Mark a test (or a module, as ``pytestmark``) that reads ``path``: ``tests/conftest.py``
    calls ``require(path)`` before it runs."""
    return pytest.mark.shared_data(path)

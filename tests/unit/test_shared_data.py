"""The shared-data helper (tests/data.py): a test that needs ../shared/data skips without it on a
developer's machine and fails in CI."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import pytest_runtest_setup
from tests.data import needs, require

ABSENT = Path("/nonexistent/shared/data/online_retail.csv.gz")


def test_an_absent_file_skips_the_test_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="needs /nonexistent"):
        require(ABSENT)
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception):
        require(ABSENT)


def test_an_absent_file_fails_the_test_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        require(ABSENT)


def test_a_present_file_runs_the_test_in_ci_or_not(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    present = tmp_path / "data.csv"
    present.write_text("x\n")
    for ci in ("true", "false"):
        monkeypatch.setenv("CI", ci)
        assert require(present) is None


class Marked:
    """What the hook reads of a test item: its marks."""

    def __init__(self, *marks: pytest.MarkDecorator) -> None:
        self.marks = [m.mark for m in marks]

    def iter_markers(self, name: str) -> list[pytest.Mark]:
        return [m for m in self.marks if m.name == name]


def test_the_conftest_hook_requires_the_marked_file_before_the_test(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        pytest_runtest_setup(Marked(needs(ABSENT)))  # type: ignore[arg-type]
    pytest_runtest_setup(Marked(pytest.mark.slow))  # type: ignore[arg-type]  # unmarked: nothing required

"""The churn trees never learn from the holdout they are judged on.

A planted history: before the calibration end, customers stop at random; in the holdout, every
big spender stops and nobody else does. Trees trained on the history before the calibration end
cannot know that (spend never mattered before), so their holdout AUC stays modest; trees that
saw the holdout's labels find it at once. The second test trains on the holdout on purpose and
shows that the first test's bar catches it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

import numpy as np
import pytest

from audience.value import churn
from audience.value.orders import OrderLog
from audience.value.spec import OrderHistory
from audience.value.training import fit_value

START = 739_000
DAYS = 300  # of history before the calibration end
CUT = START + DAYS  # the calibration end
AS_OF = datetime.fromordinal(CUT + 90).replace(tzinfo=UTC)
HONEST_AUC = 0.8  # the planted signal is out of reach before the holdout: nowhere near it
LEAKED_AUC = 0.95  # trees that saw the holdout's labels


def planted_log(customers: int = 800, seed: int = 3) -> OrderLog:
    rng = np.random.default_rng(seed)
    histories = []
    for _ in range(customers):
        big = rng.random() < 0.5
        stop = rng.uniform(60, DAYS) if rng.random() < 0.3 else DAYS + 90.0
        if big:
            stop = min(stop, DAYS)  # the holdout's secret: big spenders stop at the calibration end
        day, days = rng.uniform(0, 60), []
        while day < stop:
            days.append(START + int(day))
            day += rng.exponential(15)
        days = sorted(set(days))
        level = 100.0 if big else 10.0
        histories.append(OrderHistory(days, [level * rng.gamma(20, 1 / 20) for _ in days]))
    return OrderLog.of(histories)


def trees_on_the_holdout() -> tuple[float, list[int]]:
    """The trees' holdout AUC and the last label day of every training set the trees were fitted on."""
    label_ends: list[int] = []
    fit_calibrated: Callable[..., churn.Calibrated] = churn.fit_calibrated

    def recording(rows: churn.Snapshots, horizon: int, *args: object) -> churn.Calibrated:
        label_ends.append(int(rows.cutoffs.max()) + horizon)
        return fit_calibrated(rows, horizon, *args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(churn, "fit_calibrated", recording)
        fit = fit_value(planted_log(), AS_OF, "v1", calibration_end=date.fromordinal(CUT), penalizer=0.01)
    return fit.metrics["churn"]["trees"]["auc"], label_ends


def test_the_trees_judged_on_the_holdout_never_saw_its_labels() -> None:
    auc, label_ends = trees_on_the_holdout()

    assert auc < HONEST_AUC
    # the first fit is the one judged on the holdout; the second, refitted to asOf, is the one served
    assert label_ends[0] <= CUT and label_ends[-1] <= AS_OF.date().toordinal()


def test_trees_trained_on_the_holdout_are_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """The leak the first test exists for: training rows labelled up to asOf instead of the calibration end."""
    honest = churn.snapshots

    def leaking(log: OrderLog, end: int, horizon: int, step: int = churn.SNAPSHOT_DAYS) -> churn.Snapshots:
        return honest(log, AS_OF.date().toordinal(), horizon, step)

    monkeypatch.setattr(churn, "snapshots", leaking)

    auc, label_ends = trees_on_the_holdout()

    assert auc > LEAKED_AUC > HONEST_AUC and label_ends[0] > CUT  # both of the first test's checks would fail

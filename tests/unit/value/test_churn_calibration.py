"""The calibrated churn trees: trained at many cut-offs with the season, scored by the stream in
plain Python exactly as scikit-learn and the calibration score them."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pytest

from audience.value import churn
from audience.value.spec import CHURN_FEATURES, SEASON_FEATURES, ChurnModel, OrderHistory, season
from tests.unit.value.test_value_product import simulated_log

HORIZON = 90


def test_the_season_is_the_day_of_the_year_on_a_circle() -> None:
    new_year, midsummer = date(2026, 1, 1).toordinal(), date(2026, 7, 2).toordinal()
    assert math.dist(season(new_year), season(new_year - 1)) < 0.03  # 31 December: a day or so from 1 January
    assert math.dist(season(new_year), season(midsummer)) > 1.99
    assert all(math.isclose(math.hypot(*season(d)), 1) for d in range(new_year, new_year + 366, 17))


def test_training_rows_are_buyers_at_cut_offs_every_two_weeks_labelled_before_the_end() -> None:
    log = simulated_log(600)
    end = 739_500

    rows = churn.snapshots(log, end, HORIZON)

    cutoffs = sorted(set(rows.cutoffs.tolist()))
    assert cutoffs[-1] == end - HORIZON and set(np.diff(cutoffs).tolist()) == {churn.SNAPSHOT_DAYS}
    assert rows.x.shape[1] == len(CHURN_FEATURES) + len(SEASON_FEATURES)
    last = rows.where(rows.cutoffs == cutoffs[-1])
    stats = log.as_of(cutoffs[-1])
    assert len(last.y) == int(stats.buyer.sum())
    assert last.y.tolist() == (log.orders_between(cutoffs[-1], end)[stats.buyer] == 0).astype(int).tolist()
    assert np.allclose(last.x[:, -2:], season(cutoffs[-1]))


def test_the_stream_scores_the_calibrated_trees_as_scikit_learn_does() -> None:
    log = simulated_log(800)
    end = 739_600
    rows = churn.snapshots(log, end, HORIZON)

    fitted = churn.fit_calibrated(rows, HORIZON)

    assert fitted.calibration["kind"] == "temperature" and fitted.scale == fitted.calibration["factor"] > 0
    baseline, trees = churn.export(fitted.model)
    model = ChurnModel(kind="trees", typical=[None] * len(CHURN_FEATURES), baseline=baseline, trees=trees,
                       scale=fitted.scale, season=True)  # fmt: skip
    x = churn.at(log, end)
    served = []
    stats = log.as_of(end)
    for customer in np.flatnonzero(stats.buyer)[:300]:
        mine = log.owner == customer
        history = OrderHistory(log.day[mine].tolist(), log.spend[mine].tolist())
        served.append(_risk(model, model.row(history, end)))
    assert served == pytest.approx(fitted.risk(x[:300]).tolist(), rel=1e-9)


def _risk(model: ChurnModel, row: list[float | None]) -> float:
    from audience.value.spec import PurchaseModel, SpendModel, ValueSpec

    spec = ValueSpec(version="v", as_of="2026-01-01T00:00:00Z", purchases=PurchaseModel(kind="bgnbd", r=1, alpha=1,
                     a=1, b=1), spend=SpendModel(p=1, q=2, v=1, mean=1), churn=model)  # fmt: skip
    return spec.risk(row)


def test_training_rows_are_capped_in_history_and_in_number(monkeypatch: pytest.MonkeyPatch) -> None:
    log = simulated_log(600)
    end = 739_600
    monkeypatch.setattr(churn, "MAX_ROWS", 1_000)
    monkeypatch.setattr(churn, "HISTORY_DAYS", 200)

    rows = churn.snapshots(log, end, HORIZON)

    cutoffs = sorted(set(rows.cutoffs.tolist()))
    assert cutoffs[0] > end - HORIZON - 200 and len(rows.y) <= 1_000
    assert max(np.bincount(rows.cutoffs - cutoffs[0])) <= 1_000 // len(cutoffs)

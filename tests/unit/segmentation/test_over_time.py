"""Segments over time, from the buyers' order days: the month-to-month membership churn of the
customers who barely moved, and the retention of each segment after a cut-off."""

from __future__ import annotations

import math
from datetime import date

import numpy as np

from audience.api.model_views import SegmentModelView
from audience.segmentation.over_time import MONTH_DAYS, Ledger, over_time, retention_by_segment
from audience.segmentation.training import RFM_COLUMNS, TrainingConfig, train
from audience.value.spec import OrderHistory

FAST = TrainingConfig(k_range=(2, 4), n_init=2, selection_sample=1_000, silhouette_sample=500, bootstrap_rounds=2)
START = 738_000
TODAY = START + 400


def histories(seed: int = 5, regulars_after_cut: bool = True) -> list[OrderHistory | None]:
    """Regulars order about every ten days; the lapsed bought once to three times early on; some never bought."""
    rng = np.random.default_rng(seed)
    found: list[OrderHistory | None] = []
    for _ in range(200):
        end = TODAY if regulars_after_cut else TODAY - 90
        days = sorted({START + int(d) for d in np.cumsum(rng.integers(5, 15, 60)) if START + d <= end})
        found.append(OrderHistory(days, [float(rng.gamma(5, 10)) for _ in days]))
    for _ in range(200):
        days = sorted({START + int(d) for d in rng.integers(0, 100, rng.integers(1, 4))})
        found.append(OrderHistory(days, [float(rng.gamma(5, 10)) for _ in days]))
    return [*found, None, None]


def test_the_ledger_rebuilds_recency_order_days_and_spend_as_of_any_day() -> None:
    ledger = Ledger.of([OrderHistory([10, 20, 35], [5.0, 7.0, 1.0]), None, OrderHistory([30], [2.0])])

    rows = ledger.rows(25)

    recency, frequency, monetary = RFM_COLUMNS
    assert rows[0, [recency, frequency, monetary]].tolist() == [5.0, 2.0, 12.0]  # day 35 is not read
    assert np.isnan(rows[1]).all() and np.isnan(rows[2]).all()  # no order yet by day 25
    assert ledger.ordered_between(25, 35).tolist() == [True, False, True]


def test_the_segments_retention_gap_is_measured_on_a_model_fitted_before_the_cut_off() -> None:
    orders = histories()
    trained = train(Ledger.of(orders).rows(TODAY), "v1", FAST)

    found = over_time(trained, orders, TODAY, FAST)

    retention = found["retention"]
    assert retention["cutoff"] == date.fromordinal(TODAY - 90).isoformat() and retention["k"] == trained.metrics["k"]
    assert sum(s["customers"] for s in retention["segments"]) == 400
    assert retention["gap"] > 0.9  # regulars all came back, the lapsed none
    # the fit reads nothing after the cut-off: other orders after it change who is retained, not the segments
    quieter = retention_by_segment(Ledger.of(histories(regulars_after_cut=False)), TODAY, retention["k"], FAST)
    assert quieter is not None
    assert [s["customers"] for s in quieter["segments"]] == [s["customers"] for s in retention["segments"]]
    assert quieter["gap"] < 0.1


def test_membership_churn_counts_the_buyers_whose_ranks_barely_moved_month_by_month() -> None:
    orders = histories()
    trained = train(Ledger.of(orders).rows(TODAY), "v1", FAST)

    membership = over_time(trained, orders, TODAY, FAST)["membership"]

    months = membership["months"]
    assert 0 < len(months) <= 12 and all(m["steady_changed"] <= m["steady"] <= m["buyers"] for m in months)
    assert months[-1]["end"] == date.fromordinal(TODAY).isoformat() and all(
        np.datetime64(m["end"]) - np.datetime64(m["start"]) == np.timedelta64(MONTH_DAYS, "D") for m in months
    )
    steady = sum(m["steady"] for m in months)
    assert math.isclose(membership["churn"], sum(m["steady_changed"] for m in months) / steady)
    assert membership["churn"] <= membership["all_churn"] or steady < 50


def test_the_model_view_serves_the_figures_in_camel_case() -> None:
    orders = histories()
    trained = train(Ledger.of(orders).rows(TODAY), "v1", FAST)
    metrics = {**trained.metrics, "over_time": over_time(trained, orders, TODAY, FAST)}

    body = SegmentModelView.of("v1", True, trained.spec, metrics).model_dump(mode="json")

    over = body["overTime"]
    assert over["membership"]["rankStep"] == 0.1 and "steadyChanged" in over["membership"]["months"][0]
    assert over["retention"]["horizonDays"] == 90 and over["retention"]["gap"] > 0.9
    older = {k: v for k, v in metrics.items() if k != "over_time"}  # a model stored before issue 26
    assert "overTime" not in SegmentModelView.of("v0", False, trained.spec, older).model_dump(mode="json")

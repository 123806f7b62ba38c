"""The challenger to BG/NBD for expected orders (issue 26): gradient-boosted trees on the BTYD
statistics, regularity and season, chosen on the calibration split only and used only when
5 % better than BG/NBD in both per-customer MAE and correlation on the holdout. On the Online
Retail II backtest it is not, so BG/NBD stays (docs/models.md records both)."""

from __future__ import annotations

from datetime import date

import pytest

from audience.value.challenger import MARGIN, compare
from tests.unit.value.test_value_intervals import needs_retail, retail_log
from tests.unit.value.test_value_product import simulated_log


def test_the_challenger_is_used_only_when_better_by_the_margin_in_both() -> None:
    found = compare(simulated_log(3000), 739_510, 739_600)

    bgnbd, trees = found["BG/NBD"], found["trees"]
    assert found["trainingWindows"] >= 2 and found["customers"] > 2000 and len(trees["validation"]) == 3
    wins = trees["mae"] <= (1 - MARGIN) * bgnbd["mae"] and trees["correlation"] >= (1 + MARGIN) * bgnbd["correlation"]
    assert found["chosen"] == ("trees" if wins else "BG/NBD") and found["why"].endswith("better in both)")
    assert trees["settings"] == min(trees["validation"], key=lambda v: v["mae"])["settings"]


def test_too_little_history_before_the_calibration_end_keeps_bg_nbd() -> None:
    found = compare(simulated_log(3000), 739_600 - 300, 739_600)

    assert found["chosen"] == "BG/NBD" and "training windows" in found["why"] and "trees" not in found


@needs_retail
def test_on_the_online_retail_ii_backtest_the_trees_do_not_beat_bg_nbd_by_the_margin() -> None:
    found = compare(retail_log(), date(2010, 9, 9).toordinal(), date(2010, 12, 10).toordinal())

    bgnbd, trees = found["BG/NBD"], found["trees"]
    assert found["customers"] == 3_373 and found["trainingWindows"] == 3
    assert bgnbd == pytest.approx({"mae": 0.977, "correlation": 0.751}, abs=0.001)
    # measured: MAE 0.968 (1 % better), correlation 0.737 (2 % worse); on the calibration split's
    # own validation window the trees lost too (MAE 0.887 against BG/NBD's 0.866)
    assert 0.94 <= trees["mae"] <= 1.0 and 0.70 <= trees["correlation"] <= 0.77, trees
    assert found["chosen"] == "BG/NBD", found["why"]
    assert found["validationBG/NBD"]["mae"] < min(v["mae"] for v in trees["validation"])

"""BG/NBD and Gamma-Gamma against the published CDNOW figures (../shared/REFERENCE.md)."""

from __future__ import annotations

import csv
from collections import defaultdict
from datetime import date

import numpy as np
import pytest

from audience.value import scoring
from audience.value.btyd import Grouped, bgnbd_log_likelihood, fit_bgnbd, fit_gamma_gamma
from audience.value.history import summarise
from tests.conftest import ROOT

CDNOW = ROOT.parent / "shared" / "data" / "cdnow"
needs_cdnow = pytest.mark.skipif(not CDNOW.exists(), reason="needs ../shared/data/cdnow (not part of a user's clone)")


def columns(name: str, *fields: str) -> list[np.ndarray]:
    rows = list(csv.DictReader((CDNOW / name).open()))
    return [np.array([float(r[f]) for r in rows]) for f in fields]


@needs_cdnow
def test_bgnbd_on_the_cdnow_sample_matches_the_published_refit() -> None:
    x, t_x, big_t = columns("cdnow_customers_summary.csv", "frequency", "recency", "T")

    model = fit_bgnbd(x, t_x, big_t)

    for fitted, published in zip((model.r, model.alpha, model.a, model.b),
                                 (0.2425945, 4.4136019, 0.7929199, 2.4258881), strict=True):  # fmt: skip
        assert fitted == pytest.approx(published, rel=1e-3)
    assert model.log_likelihood == pytest.approx(-9582.43, abs=0.01)
    expected = model.conditional_expected(39, np.array([2.0]), np.array([30.43]), np.array([38.86]))
    assert expected[0] == pytest.approx(1.226, abs=1e-3)
    unconditional = model.expected(np.array([0.1429, 1, 3, 31.8571, 32, 78]))
    assert unconditional == pytest.approx([0.0078, 0.0532, 0.1506, 1.0405, 1.0437, 1.8576], abs=5e-4)


@needs_cdnow
def test_gamma_gamma_on_the_cdnow_repeat_buyers_matches_fader_and_hardie() -> None:
    x, zbar = columns("cdnow_customers_summary_with_transactions.csv", "x", "zbar")

    model = fit_gamma_gamma(x, zbar)

    assert (model.p, model.q, model.v) == pytest.approx((6.25, 3.74, 15.44), rel=5e-3)
    assert model.log_likelihood == pytest.approx(-4055.92, abs=0.01)
    published = [24.65, 18.91, 35.17, 35.17, 35.17, 71.46, 18.91, 35.17, 27.28, 35.17]
    assert model.expected_spend(x[:10], zbar[:10]) == pytest.approx(published, abs=0.1)


def test_the_gradient_is_the_likelihoods_own_and_grouping_changes_nothing() -> None:
    rng = np.random.default_rng(7)
    x = rng.integers(0, 6, 400).astype(float)
    big_t = rng.uniform(20, 40, 400).round(1)
    t_x = np.where(x > 0, big_t * rng.uniform(0.1, 1, 400), 0).round(1)
    params = np.array([0.3, 4.0, 0.8, 2.0])
    grouped, one_each = Grouped.of(x, t_x, big_t), Grouped(np.column_stack([x, t_x, big_t]), np.ones(400))

    ll, gradient = bgnbd_log_likelihood(params, grouped, gradient=True)
    numeric = [(bgnbd_log_likelihood(params + e, grouped)[0] - bgnbd_log_likelihood(params - e, grouped)[0]) / 2e-6
               for e in np.eye(4) * 1e-6]  # fmt: skip

    assert gradient == pytest.approx(numeric, rel=1e-5)
    assert ll == pytest.approx(bgnbd_log_likelihood(params, one_each)[0], rel=1e-12)
    assert len(grouped.rows) < 400


@needs_cdnow
def test_the_plain_python_scoring_equals_numpy_and_scipy_on_every_customer() -> None:
    x, t_x, big_t, zbar = columns("cdnow_customers_summary_with_transactions.csv", "x", "t_x", "T", "zbar")
    model, spend = fit_bgnbd(x, t_x, big_t), fit_gamma_gamma(x, zbar)
    r, alpha, a, b = model.r, model.alpha, model.a, model.b

    alive = [scoring.p_alive(r, alpha, a, b, *row) for row in zip(x, t_x, big_t, strict=True)]
    orders = [scoring.expected_orders(r, alpha, a, b, 39.0, *row) for row in zip(x, t_x, big_t, strict=True)]
    spends = [scoring.expected_spend(spend.p, spend.q, spend.v, *row) for row in zip(x, zbar, strict=True)]

    assert alive == pytest.approx(list(model.p_alive(x, t_x, big_t)), rel=1e-9, abs=1e-12)
    assert orders == pytest.approx(list(model.conditional_expected(39.0, x, t_x, big_t)), rel=1e-9, abs=1e-12)
    assert spends == pytest.approx(list(spend.expected_spend(x, zbar)), rel=1e-9)
    with pytest.raises(ValueError, match="0 <= z < 1"):
        scoring.hyp2f1(1, 1, 2, 1.0)


@needs_cdnow
def test_the_cdnow_log_gives_the_published_calibration_and_holdout_figures() -> None:
    purchases: dict[str, set[date]] = defaultdict(set)
    for line in (CDNOW / "CDNOW_sample.txt").read_text().splitlines():
        _, customer, day, *_ = line.split()
        purchases[customer].add(date(int(day[:4]), int(day[4:6]), int(day[6:])))
    histories = summarise(purchases, calibration_end=date(1997, 9, 30), end=date(1998, 6, 30))

    model = fit_bgnbd(histories.x, histories.t_x, histories.big_t)

    assert len(histories.customers) == 2357 and histories.x.sum() == 2457 and histories.holdout.sum() == 1882
    assert model.log_likelihood == pytest.approx(-9582.43, abs=0.01)
    weeks = 39.0  # the holdout, weeks 40-78: the aggregate forecast for the cohort
    forecast = (model.expected(histories.big_t + weeks) - model.expected(histories.big_t)).sum()
    assert forecast == pytest.approx(1666.7, abs=0.1)  # published; 1,882 happened

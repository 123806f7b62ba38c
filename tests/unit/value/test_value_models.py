"""BG/NBD and Gamma-Gamma against the published CDNOW figures (../shared/REFERENCE.md)."""

from __future__ import annotations

import csv
import itertools
from collections import defaultdict
from datetime import UTC, date, datetime

import numpy as np
import pytest

from audience.value import scoring
from audience.value.btyd import (
    LOG_BOUND,
    BetaGeo,
    FitFailed,
    Grouped,
    _maximise,
    bgnbd_log_likelihood,
    fit_bgnbd,
    fit_gamma_gamma,
    gamma_gamma_log_likelihood,
)
from audience.value.history import summarise
from audience.value.orders import OrderLog
from audience.value.spec import OrderHistory
from audience.value.training import fit_value
from embedded.demo import order_history
from tests.data import CDNOW, needs

needs_cdnow = needs(CDNOW)


def columns(name: str, *fields: str) -> list[np.ndarray]:
    with (CDNOW / name).open() as summary:
        rows = list(csv.DictReader(summary))
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


# Histories at the edges of what the data holds: no orders yet (T = 0), one-time buyers, the last
# order today (t_x = T), a long-silent frequent buyer, tens of thousands of orders.
EDGES = np.array([
    (0, 0, 0), (0, 0, 3), (0, 0, 900), (1, 1, 1), (1, 0.5, 900), (5, 900, 900), (40, 10, 900),
    (400, 3650, 3650), (5000, 1, 40_000), (100_000, 5, 1e6),
], dtype=float)  # fmt: skip


@pytest.fixture
def floating_point_errors_raise() -> object:
    """Overflow, division by zero and invalid operations raise (underflow to 0 is exact enough)."""
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        yield


@pytest.mark.usefixtures("floating_point_errors_raise")
@pytest.mark.parametrize("modified", [False, True])
def test_the_likelihoods_stay_in_their_domain_for_any_history_and_any_parameter_tried(modified: bool) -> None:
    """Every corner and mid-point of the box the optimiser searches (log-parameters within
    +-LOG_BOUND), on the edge histories: the likelihood, its gradient and P(alive) are finite."""
    x, t_x, big_t = EDGES.T
    purchases = Grouped.of(x, t_x, big_t)
    spends = Grouped.of(np.array([1, 1, 3, 5000, 100_000.0]), np.array([0.01, 1e6, 20, 0.01, 3e5]), decimals=2)
    grid = (-LOG_BOUND, -12.0, 0.0, 12.0, LOG_BOUND)

    for theta in itertools.product(grid, repeat=4):
        params = np.exp(theta)
        ll, gradient = bgnbd_log_likelihood(params, purchases, gradient=True, modified=modified)
        assert np.isfinite(ll) and np.all(np.isfinite(gradient)), theta
        alive = BetaGeo(*params, modified=modified).p_alive(x, t_x, big_t)
        assert np.all((alive >= 0) & (alive <= 1)), theta
    for theta in itertools.product(grid, repeat=3):
        ll, gradient = gamma_gamma_log_likelihood(np.exp(theta), spends, gradient=True)
        assert np.isfinite(ll) and np.all(np.isfinite(gradient)), theta


@pytest.mark.usefixtures("floating_point_errors_raise")
@pytest.mark.parametrize("modified", [False, True])
def test_predictions_for_many_orders_neither_overflow_nor_differ_from_the_plain_python(modified: bool) -> None:
    """(alpha + T) / (alpha + t_x) to the power of thousands of orders overflows a float; 0 times
    an overflowing 2F1 is not a number: both are computed in forms that stay finite."""
    model = BetaGeo(0.5, 10.0, 0.3, 3.0, modified=modified)
    x, t_x, big_t = EDGES.T

    alive, orders = model.p_alive(x, t_x, big_t), model.conditional_expected(90.0, x, t_x, big_t)
    none = model.p_no_order(90.0, x, t_x, big_t)

    assert np.all(np.isfinite(orders)) and np.all(np.isfinite(none))
    assert alive[-2] < 1e-300 and alive[-1] < 1e-300  # silent since the first days: long gone
    plain = [scoring.p_alive(0.5, 10.0, 0.3, 3.0, *row, modified) for row in EDGES]
    assert plain == pytest.approx(list(alive), rel=1e-9, abs=1e-300)
    plain_orders = [scoring.expected_orders(0.5, 10.0, 0.3, 3.0, 90.0, *row, modified) for row in EDGES]
    assert plain_orders == pytest.approx(list(orders), rel=1e-9, abs=1e-12)


def test_a_likelihood_without_a_finite_optimum_is_a_failed_fit_not_a_parameter_at_the_bound() -> None:
    """A likelihood that grows for ever (log p): the search stops at the bound, which is no optimum."""

    def growing(params: np.ndarray) -> tuple[float, np.ndarray]:
        return float(np.log(params[0])), 1 / params

    with pytest.raises(FitFailed, match="ran off to its bound"):
        _maximise(growing, np.ones(1), 0.0, "log p")
    params, _ = _maximise(growing, np.ones(1), 0.01, "log p")  # a penalizer gives it an optimum: p = 1 / sqrt(0.02)
    assert params[0] == pytest.approx(1 / np.sqrt(0.02), rel=1e-6)


def test_a_mean_spend_that_rounds_to_no_cent_is_left_out_of_the_spend_model() -> None:
    """Grouped to the cent, a mean spend of half a cent would be log(0)."""
    rng = np.random.default_rng(1)
    x = rng.integers(1, 6, 200).astype(float)
    zbar = rng.gamma(4, 10, 200).round(2)

    with np.errstate(divide="raise", invalid="raise"):
        with_crumbs = fit_gamma_gamma(np.append(x, [2.0, 2.0]), np.append(zbar, [0.005, 0.004]))
    assert (with_crumbs.p, with_crumbs.q, with_crumbs.v) == pytest.approx(
        (fit_gamma_gamma(x, zbar).p, fit_gamma_gamma(x, zbar).q, fit_gamma_gamma(x, zbar).v), rel=1e-6
    )


def test_the_demos_order_history_fits_without_a_warning() -> None:
    """What ``make demo`` imports (seed 15 of its generator, fitted as of 2026-03-01, printed 288
    numpy RuntimeWarnings from btyd.py: the optimiser tried e^(5e6)); pytest's filterwarnings
    turns any warning from audience.* into an error."""
    now = datetime(2026, 3, 1, tzinfo=UTC)
    days: dict[str, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    for line in order_history(seed=15, now=now).splitlines()[1:]:
        _, customer, when, total, *_ = line.split(",")
        days[customer][datetime.strptime(when, "%Y-%m-%d %H:%M").date().toordinal()] += float(total)
    log = OrderLog.of([OrderHistory(sorted(d), [round(d[k], 2) for k in sorted(d)]) for d in days.values()])

    fit = fit_value(log, now, "demo")

    assert fit.metrics["purchaseModel"]["name"] == "BG/NBD"
    assert fit.metrics["spendModel"]["penalizer"] == 0.001  # the unpenalised spend model runs off: refused
    assert np.all(np.isfinite(fit.clv[~np.isnan(fit.clv)]))

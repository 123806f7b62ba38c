"""The prediction intervals of orders and value (issue 26): the count distribution is the model's
own (it sums to one and its mean is E[Y(t)]), the spend's approximation holds its level by the
exact beta distribution, and the intervals cover what happened within 3 points of their level on
data simulated from known parameters and on CDNOW's weeks 40-78; on the Online Retail II backtest
the 95 % intervals do and the 80 % ones miss (docs/models.md records the figures)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from functools import cache

import numpy as np
import pytest
from scipy.special import betainc

from audience.adapters.profile_items import from_item, to_item
from audience.domain.predictions import Predictions
from audience.domain.profile import Profile
from audience.value import intervals
from audience.value.btyd import BetaGeo, GammaGamma, fit_bgnbd
from audience.value.coverage import holdout_coverage
from audience.value.orders import OrderLog
from audience.value.spec import OrderHistory, PurchaseModel, SpendModel
from audience.value.training import _coverage
from tests.billing import item_size
from tests.data import RETAIL, needs
from tests.unit.value.test_value_models import CDNOW, needs_cdnow
from tests.unit.value.test_value_product import NOW, ledgered, spec_for

HISTORIES = [(0, 0, 0), (0, 0, 200), (1, 1, 1), (1, 10, 300), (3, 100, 120), (12, 300, 310), (40, 10, 900),
             (400, 3650, 3650), (2000, 1000, 1000), (5000, 1, 40_000)]  # fmt: skip
KINDS = ("orders", "value")
NOMINAL = {"p80": (0.77, 0.83), "p95": (0.92, 0.98)}  # the bar: within 3 points of the level


def figures(found: dict[str, dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    return {kind: {level: round(found[kind][level]["coverage"], 4) for level in NOMINAL} for kind in KINDS}


@pytest.mark.parametrize("modified", [False, True])
def test_the_order_count_distribution_is_the_models_own(modified: bool) -> None:
    model = BetaGeo(0.8, 60.0, 0.3, 4.0, modified=modified)
    for x, t_x, big_t in HISTORIES:
        for days in (90.0, 365.25):
            pmf = intervals.order_counts([(model.r, model.alpha, model.a, model.b)], days, x, t_x, big_t, modified)
            mean = sum(n * p for n, p in enumerate(pmf))
            expected = float(model.conditional_expected(days, np.array([x]), np.array([t_x]), np.array([big_t]))[0])
            assert sum(pmf) == pytest.approx(1, abs=2e-5) and min(pmf) >= 0
            assert mean == pytest.approx(expected, rel=1e-3, abs=1e-4), (x, t_x, big_t, days)
            no_order = float(model.p_no_order(days, np.array([x]), np.array([t_x]), np.array([big_t]))[0])
            assert pmf[0] == pytest.approx(no_order, rel=1e-9)


def test_the_spend_intervals_hold_their_level_by_the_exact_beta_distribution() -> None:
    """Spend over (p, q, v) of n orders: scale * BetaPrime(p n, q'), i.e. its distribution function
    is the regularised incomplete beta at s / (s + scale); Paulson's approximation is held to it."""
    model, (p, q, v) = BetaGeo(0.8, 60.0, 0.3, 4.0), (2.2, 3.6, 490.0)
    for x, t_x, big_t in HISTORIES:
        for zbar in (0.0, 20.0, 400.0):
            pmf = intervals.order_counts([(model.r, model.alpha, model.a, model.b)], 365.25, x, t_x, big_t)
            shape, scale = (q + p * x, v + x * zbar) if x > 0 and zbar > 0 else (q, v)

            def exact(s: float, pmf: list[float] = pmf, shape: float = shape, scale: float = scale) -> float:
                return pmf[0] + sum(w * betainc(p * n, shape, s / (s + scale)) for n, w in enumerate(pmf) if n)

            for level, (low, high) in zip(intervals.LEVELS, intervals.value_intervals(pmf, p, q, v, x, zbar),
                                          strict=True):  # fmt: skip
                held = exact(high) - (exact(low) if low > 0 else 0.0)
                assert held == pytest.approx(max(level, pmf[0]), abs=0.01), (x, t_x, big_t, zbar, level)
                if low > 0:  # the lower tail is (1 - level) / 2
                    assert exact(low) == pytest.approx((1 - level) / 2, abs=0.005)


def simulated(customers: int, truth: BetaGeo, spend: GammaGamma, cut: int, end: int, seed: int = 7) -> OrderLog:
    """Customers from the BG/NBD and Gamma-Gamma stories themselves, first orders spread over the
    calibration, orders in days."""
    rng = np.random.default_rng(seed)
    histories = []
    for _ in range(customers):
        rate, drop = rng.gamma(truth.r, 1 / truth.alpha), rng.beta(truth.a, truth.b)
        nu, day = rng.gamma(spend.q, 1 / spend.v), float(rng.integers(0, cut - 30))
        days = [day]
        while (day := day + rng.exponential(1 / rate)) <= end:
            days.append(day)
            if rng.random() < drop:
                break
        order_days = sorted({int(d) for d in days})
        histories.append(OrderHistory(order_days, [float(rng.gamma(spend.p, 1 / nu)) for _ in order_days]))
    return OrderLog.of(histories)


def test_intervals_cover_their_level_on_data_simulated_from_known_parameters() -> None:
    truth, spend, cut, end = BetaGeo(0.8, 40.0, 0.4, 3.0), GammaGamma(4.0, 4.0, 150.0), 365, 455
    log = simulated(4000, truth, spend, cut, end)
    before = log.as_of(cut)
    orders, spent = log.orders_between(cut, end), log.spend_between(cut, end)

    known = figures(holdout_coverage([truth], spend, before, orders, spent, end - cut))
    fitted = figures(_coverage(log, before, fit_before(log, cut), cut, end, 0.0))

    for found in (known, fitted):
        for kind in KINDS:
            for level, (low, high) in NOMINAL.items():
                assert low <= found[kind][level] <= high, (found, kind, level)


def cdnow_log() -> OrderLog:
    """CDNOW's 1/10 sample as order days (same-day purchases merged) with the day's spend."""
    spend: dict[str, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    for line in (CDNOW / "CDNOW_sample.txt").read_text().splitlines():
        _, customer, day, _, amount = line.split()
        spend[customer][date(int(day[:4]), int(day[4:6]), int(day[6:])).toordinal()] += float(amount)
    return OrderLog.of([OrderHistory(sorted(days), [days[d] for d in sorted(days)]) for days in spend.values()])


def backtest(log: OrderLog, cut: date, end: date) -> dict[str, dict[str, float]]:
    """The retrain's own coverage check: BG/NBD (the model both backtests choose) fitted before
    ``cut`` with its bootstrap draws and Gamma-Gamma, against what followed up to ``end``."""
    before = log.as_of(cut.toordinal())
    return figures(_coverage(log, before, fit_before(log, cut.toordinal()), cut.toordinal(), end.toordinal(), 0.0))


def fit_before(log: OrderLog, cut: int) -> BetaGeo:
    before = log.as_of(cut)
    return fit_bgnbd(before.x[before.buyer], before.t_x[before.buyer], before.big_t[before.buyer])


@needs_cdnow
def test_intervals_cover_their_level_on_cdnow_weeks_40_to_78() -> None:
    found = backtest(cdnow_log(), date(1997, 9, 30), date(1998, 6, 30))

    # measured: orders 0.824 / 0.941, value 0.818 / 0.930 (80 % / 95 %)
    for kind in KINDS:
        for level, (low, high) in NOMINAL.items():
            assert low <= found[kind][level] <= high, (found, kind, level)


@cache
def retail_log() -> OrderLog:
    """Online Retail II's buyers' order days, from the profiles the importer folds."""
    from tests.real_data import imported_profiles

    return OrderLog.of([OrderHistory.of(p) for p in imported_profiles() if p.first_order_at is not None])


needs_retail = needs(RETAIL)


@needs_retail
def test_intervals_on_the_online_retail_ii_backtest_hold_at_95_and_fall_short_at_80() -> None:
    """The holdout (2010-09-09 to 12-10, 92 days) runs into the gift retailer's November-December peak:
    28 % more order days and 48 % more spend than a stationary model expects, so the 80 %
    intervals miss more often than they should (measured: orders 0.720, value 0.684); the 95 %
    ones hold, barely (0.925, 0.922). The bounds here fail should the model get worse than that."""
    found = backtest(retail_log(), date(2010, 9, 9), date(2010, 12, 10))

    assert NOMINAL["p95"][0] <= found["orders"]["p95"] <= NOMINAL["p95"][1], found
    assert NOMINAL["p95"][0] <= found["value"]["p95"] <= NOMINAL["p95"][1], found
    assert 0.70 <= found["orders"]["p80"] <= NOMINAL["p80"][1] and 0.66 <= found["value"]["p80"] <= 0.83, found


def test_every_buyers_predictions_carry_nested_intervals_in_whole_numbers_at_a_small_cost() -> None:
    draws = [(0.7, 65.0, 0.25, 4.5), (0.9, 75.0, 0.35, 5.5)]
    purchases = PurchaseModel(kind="bgnbd", r=0.8, alpha=70, a=0.3, b=5, draws=draws)
    spec = spec_for(purchases, SpendModel(p=2.2, q=3.6, v=490, mean=414.6))
    days = [NOW.date() - timedelta(days=d) for d in (300, 200, 100, 30)]
    profile = ledgered(days)

    predicted = spec.predict(profile, NOW)

    assert predicted is not None
    orders_80, orders_95 = predicted.expected_orders_90d_p80, predicted.expected_orders_90d_p95
    clv_80, clv_95 = predicted.clv_12m_p80, predicted.clv_12m_p95
    assert orders_80 and orders_95 and clv_80 and clv_95
    assert orders_95[0] <= orders_80[0] <= orders_80[1] <= orders_95[1] and orders_95[1] >= 1
    assert clv_95[0] <= clv_80[0] <= predicted.clv_12m <= clv_80[1] <= clv_95[1]
    assert all(isinstance(end, int) for end in (*orders_80, *orders_95, *clv_80, *clv_95))
    bare = predicted.model_copy(update=dict.fromkeys(("expected_orders_90d_p80", "expected_orders_90d_p95",
                                                      "clv_12m_p80", "clv_12m_p95")))  # fmt: skip
    stored = to_item(Profile(customer_id="c1", predictions=predicted))
    added = item_size(stored) - item_size(to_item(Profile(customer_id="c1", predictions=bare)))
    assert from_item(stored).predictions == predicted
    assert added <= 110, f"the intervals add {added} bytes to the profile item"
    # the first model with intervals rewrites a buyer once; then an end must move as an amount would
    assert predicted.moved(bare, 0.01) and not predicted.moved(predicted, 0.01)
    nudged = (clv_95[0], clv_95[1] + max(1, clv_95[1] // 50))
    assert predicted.model_copy(update={"clv_12m_p95": nudged}).moved(predicted, 0.01)


def test_a_prediction_stored_before_intervals_still_reads() -> None:
    old = Predictions(p_alive=0.5, expected_orders_90d=0.3, expected_order_value=3.0, clv_12m=10.0, churn_risk=0.5,
                      model_version="v1", as_of=NOW)  # fmt: skip
    assert from_item(to_item(Profile(customer_id="c1", predictions=old))).predictions == old
    assert old.intervals() == (None, None, None, None)

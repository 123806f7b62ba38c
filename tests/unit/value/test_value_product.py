"""The value model as the product runs it: MBG/NBD beside BG/NBD, the plain-Python spec the
stream scores with (held to numpy/scipy and scikit-learn), the columnar order log (held to the
per-customer history), and fitting with its holdout and churn comparison."""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from scipy.special import hyp2f1 as scipy_hyp2f1
from sklearn.ensemble import HistGradientBoostingClassifier

from audience.domain.profile import LedgerEntry, Profile
from audience.value import churn, scoring
from audience.value.btyd import FitFailed, Grouped, bgnbd_log_likelihood, fit_bgnbd, fit_gamma_gamma
from audience.value.orders import AsOf, OrderLog
from audience.value.spec import CHURN_FEATURES, ChurnModel, OrderHistory, PurchaseModel, SpendModel, ValueSpec
from audience.value.training import PARAMETER_DRAWS, SPEND_PENALIZERS, NotEnoughBuyers, _clv, fit_value
from tests.unit.value.test_value_models import CDNOW, needs_cdnow

NOW = datetime(2026, 11, 23, tzinfo=UTC)


def cdnow(*fields: str) -> list[np.ndarray]:
    with (CDNOW / "cdnow_customers_summary_with_transactions.csv").open() as summary:
        rows = list(csv.DictReader(summary))
    return [np.array([float(r[f]) for r in rows]) for f in fields]


@needs_cdnow
def test_mbgnbd_on_the_cdnow_sample_matches_lifetimes() -> None:
    """lifetimes 0.11.3's ModifiedBetaGeoFitter on the same summary (measured in its own venv)."""
    x, t_x, big_t = cdnow("x", "t_x", "T")

    model = fit_bgnbd(x, t_x, big_t, modified=True)

    assert (model.r, model.alpha, model.a, model.b) == pytest.approx((0.524838, 6.182988, 0.891356, 1.614000), rel=1e-4)
    assert model.conditional_expected(39, np.array([2.0]), np.array([30.43]), np.array([38.86]))[0] == pytest.approx(
        1.262671, abs=1e-5
    )
    assert model.p_alive(np.array([0.0]), np.array([0.0]), np.array([38.86]))[0] == pytest.approx(0.389716, abs=1e-5)
    assert model.expected(np.array([31.8571]))[0] == pytest.approx(1.033471, abs=1e-5)
    assert model.log_likelihood > fit_bgnbd(x, t_x, big_t).log_likelihood  # one-time buyers may drop out: fits better


def test_the_mbgnbd_gradient_is_its_likelihoods_own() -> None:
    rng = np.random.default_rng(3)
    x = rng.integers(0, 6, 300).astype(float)
    big_t = rng.uniform(20, 40, 300).round(1)
    data = Grouped.of(x, np.where(x > 0, big_t * rng.uniform(0.1, 1, 300), 0).round(1), big_t)
    params = np.array([0.5, 6.0, 0.9, 1.6])

    _, gradient = bgnbd_log_likelihood(params, data, gradient=True, modified=True)

    def ll(at: np.ndarray) -> float:
        return bgnbd_log_likelihood(at, data, modified=True)[0]

    numeric = [(ll(params + e) - ll(params - e)) / 2e-6 for e in np.eye(4) * 1e-6]

    assert gradient == pytest.approx(numeric, rel=1e-5)


@pytest.mark.parametrize("z", [0.0, 0.1, 0.5, 0.84, 0.97])
def test_the_plain_hypergeometric_series_equals_scipys(z: float) -> None:
    for a, b, c in [(0.87, 193.3, 193.4), (20.9, 213.3, 213.5), (0.24, 2.43, 2.22), (5.2, 7.4, 7.2), (1.0, 1.0, 2.0)]:
        assert scoring.hyp2f1(a, b, c, z) == pytest.approx(float(scipy_hyp2f1(a, b, c, z)), rel=1e-10)


def ledgered(days: list[date]) -> Profile:
    """Customer c1 with an order (50, 51, ... spent) on each of ``days``."""
    ledger = {f"o{i}": LedgerEntry(Decimal(50 + i), day) for i, day in enumerate(days)}
    first, last = (datetime.combine(d, datetime.min.time(), UTC) for d in (days[0], days[-1]))
    return Profile(customer_id="c1", orders=len(days), ledger=ledger, first_order_at=first, last_order_at=last)


def spec_for(purchases: PurchaseModel, spend: SpendModel, churn_model: ChurnModel | None = None) -> ValueSpec:
    churn_model = churn_model or ChurnModel(kind="btyd", typical=[30.0, 2.0, 200.0, 100.0, 50.0, 1.0, 50.0, 60.0])
    return ValueSpec(version="v", as_of=NOW, purchases=purchases, spend=spend, churn=churn_model)


@needs_cdnow
@pytest.mark.parametrize("modified", [False, True])
def test_the_plain_python_value_scoring_equals_numpy_on_every_cdnow_customer(modified: bool) -> None:
    x, t_x, big_t, zbar = cdnow("x", "t_x", "T", "zbar")
    model, gg = fit_bgnbd(x, t_x, big_t, modified=modified), fit_gamma_gamma(x, zbar)
    kind = "mbgnbd" if modified else "bgnbd"
    purchases = PurchaseModel(kind=kind, r=model.r, alpha=model.alpha, a=model.a, b=model.b)
    spec = spec_for(purchases, SpendModel(p=gg.p, q=gg.q, v=gg.v, mean=gg.p * gg.v / (gg.q - 1)))
    stats = AsOf(np.ones(len(x), dtype=bool), x, t_x, big_t, zbar, np.zeros((len(x), len(CHURN_FEATURES))))

    plain = [spec.values(*row) for row in zip(x, t_x, big_t, zbar, strict=True)]
    risk = [scoring.p_no_order(model.r, model.alpha, model.a, model.b, 90.0, *row, modified)
            for row in zip(x, t_x, big_t, strict=True)]  # fmt: skip

    assert [p[0] for p in plain] == pytest.approx(list(model.p_alive(x, t_x, big_t)), rel=1e-9)
    assert [p[1] for p in plain] == pytest.approx(list(model.conditional_expected(90.0, x, t_x, big_t)), rel=1e-9)
    assert [p[3] for p in plain] == pytest.approx(list(_clv(model, gg, stats, 0.1)), rel=1e-9)
    assert risk == pytest.approx(list(model.p_no_order(90.0, x, t_x, big_t)), rel=1e-9)


def random_histories(n: int, seed: int = 5) -> list[OrderHistory]:
    rng = np.random.default_rng(seed)
    histories = []
    for _ in range(n):
        days = sorted({int(d) for d in rng.integers(739_000, 739_400, rng.integers(0, 6))})
        histories.append(OrderHistory(days, [round(float(s), 2) for s in rng.gamma(2, 40, len(days))]))
    return histories


def test_the_columnar_log_equals_each_customers_history_on_any_day() -> None:
    histories = random_histories(300)
    log = OrderLog.of(histories)
    for today in (739_100, 739_250, 739_399):
        stats = log.as_of(today)
        for i, history in enumerate(histories):
            pairs = [(d, s) for d, s in zip(history.days, history.spend, strict=True) if d <= today]
            kept = OrderHistory([d for d, _ in pairs], [s for _, s in pairs])
            assert bool(stats.buyer[i]) == bool(kept.days)
            if not kept.days:
                continue
            assert (stats.x[i], stats.t_x[i], stats.big_t[i], stats.zbar[i]) == pytest.approx(kept.summary(today))
            expected = [np.nan if v is None else v for v in kept.features(today)]
            assert list(stats.features[i]) == pytest.approx(expected, nan_ok=True)
        assert log.orders_between(today - 50, today).sum() == sum(
            sum(1 for d in h.days if today - 50 < d <= today) for h in histories
        )


def test_exported_trees_score_as_scikit_learn_does_missing_values_included() -> None:
    rng = np.random.default_rng(0)
    x = rng.gamma(2, 30, (2000, len(CHURN_FEATURES)))
    x[rng.random(2000) < 0.3, 7] = np.nan  # one-time buyers have no gap between orders
    y = ((x[:, 0] > 60) ^ (rng.random(2000) < 0.2)).astype(int)
    model = HistGradientBoostingClassifier(max_iter=30, max_leaf_nodes=8, random_state=0).fit(x, y)
    baseline, trees = churn.export(model)
    spec = spec_for(PurchaseModel(kind="bgnbd", r=1, alpha=1, a=1, b=1), SpendModel(p=1, q=2, v=1, mean=1),
                    ChurnModel(kind="trees", typical=[float(v) for v in np.nanmedian(x, 0)], baseline=baseline,
                               trees=trees))  # fmt: skip

    rows = [[None if np.isnan(v) else float(v) for v in row] for row in x[:300]]

    assert [spec.risk(r) for r in rows] == pytest.approx(list(model.predict_proba(x[:300])[:, 1]), rel=1e-9)
    drivers = spec.drivers(rows[0], spec.risk(rows[0]))
    for driver in drivers:  # each effect is the risk minus the risk with that one feature typical
        i = CHURN_FEATURES.index(driver.feature)
        occluded = [*rows[0][:i], driver.typical, *rows[0][i + 1 :]]
        assert driver.effect == pytest.approx(spec.risk(rows[0]) - spec.risk(occluded), abs=1e-4)
    assert [d.effect for d in drivers] == sorted((d.effect for d in drivers), reverse=True)


def simulated_log(customers: int, seed: int = 11) -> OrderLog:
    """Order days over 600 days from BG/NBD-like behaviour: a Poisson rate, dropout after each order."""
    rng = np.random.default_rng(seed)
    start, histories = 739_000, []
    for _ in range(customers):
        day, rate, drop = float(rng.integers(0, 400)), rng.gamma(0.8, 1 / 40), rng.beta(1, 6)
        days = []
        while day < 600:
            days.append(start + int(day))
            if rng.random() < drop:
                break
            day += rng.exponential(1 / rate)
        days = sorted(set(days))
        histories.append(OrderHistory(days, [float(rng.gamma(3, 20)) for _ in days]))
    return OrderLog.of(histories)


def test_fitting_chooses_a_purchase_model_on_the_holdout_and_compares_churn_models() -> None:
    log = simulated_log(3000)
    as_of = datetime.fromordinal(739_600).replace(tzinfo=UTC)

    fit = fit_value(log, as_of, "v1")

    metrics = fit.metrics
    assert metrics["calibrationEnd"] == (as_of.date() - timedelta(days=90)).isoformat()
    assert set(metrics["holdout"]["candidates"]) == {"BG/NBD", "MBG/NBD"}
    chosen = metrics["purchaseModel"]["name"]
    assert metrics["holdout"]["candidates"][chosen]["mae"] == min(
        c["mae"] for c in metrics["holdout"]["candidates"].values()
    )
    assert metrics["holdout"]["candidates"][chosen]["correlation"] > 0.4
    compared = metrics["churn"]
    assert compared["chosen"] in ("trees", "btyd") and compared["btyd"]["auc"] > 0.6 and "trees" in compared
    assert fit.spec.churn.kind == compared["chosen"] and len(fit.spec.clv_percentiles) == 99
    assert np.isnan(fit.clv).sum() == log.customers - int(log.as_of(739_600).buyer.sum())
    # spend barely varies within these customers: whether the unpenalised fit converges depends on the
    # platform's floating point (CI's does, this machine's does not); the penalizer recorded is the
    # smallest that converges, and the one that gave the stored spend model
    now = log.as_of(739_600)
    x, zbar, used = now.x[now.buyer], now.zbar[now.buyer], metrics["spendModel"]["penalizer"]
    refit, stored = fit_gamma_gamma(x, zbar, penalizer=used), fit.spec.spend
    assert (refit.p, refit.q, refit.v) == pytest.approx((stored.p, stored.q, stored.v), rel=1e-9)
    for smaller in (p for p in (0.0, *SPEND_PENALIZERS) if p < used):
        with pytest.raises(FitFailed):
            fit_gamma_gamma(x, zbar, penalizer=smaller)
    # the intervals: the purchase model's parameter draws stored, their holdout coverage measured
    assert len(fit.spec.purchases.draws) == PARAMETER_DRAWS and metrics["intervals"]["customers"] == 3000
    assert all(metrics["intervals"][kind]["p95"]["coverage"] >= 0.92 for kind in ("orders", "value"))
    from audience.value.report import value_section

    section = value_section(fit, {"all": log.as_of(739_600).buyer})
    assert "Prediction intervals: how often they held what happened" in section


def test_a_fit_long_after_the_last_order_falls_back_to_the_purchase_model_for_churn() -> None:
    fit = fit_value(simulated_log(600), datetime.fromordinal(740_000).replace(tzinfo=UTC), "v1")

    assert fit.spec.churn.kind == "btyd"
    assert fit.metrics["churn"]["why"] == "every buyer churned in the holdout: nothing to compare on"


def test_too_little_history_is_a_clear_refusal() -> None:
    with pytest.raises(NotEnoughBuyers, match="at least 50"):
        fit_value(simulated_log(20), datetime.fromordinal(739_600).replace(tzinfo=UTC), "v1")
    with pytest.raises(ValueError, match="calibrationEnd must be before asOf"):
        fit_value(simulated_log(20), NOW, "v1", calibration_end=NOW.date())


def test_a_profile_is_scored_from_its_order_ledger_as_of_a_moment() -> None:
    spec = spec_for(
        PurchaseModel(kind="bgnbd", r=0.8, alpha=70, a=0.3, b=5), SpendModel(p=2.2, q=3.6, v=490, mean=414.6)
    )
    days = [NOW.date() - timedelta(days=d) for d in (300, 200, 100, 100)]
    profile = ledgered(days)

    predicted = spec.predict(profile, NOW)
    assert predicted is not None
    history = OrderHistory.of(profile)
    assert history.days == sorted({d.toordinal() for d in days}) and history.spend == [50.0, 51.0, 105.0]
    alive, _, _, clv = spec.values(*history.summary(NOW.date().toordinal()))
    assert (predicted.p_alive, predicted.clv_12m) == (pytest.approx(alive, rel=1e-5), round(clv, 2))
    assert spec.predict(Profile(customer_id="never-bought"), NOW) is None
    assert spec.refreshed(profile, NOW).predictions == predicted
    same = profile.model_copy(update={"predictions": predicted})
    assert spec.refreshed(same, NOW + timedelta(hours=1), tolerance=0.01) is same  # moved too little to write


def test_a_vanishing_probability_is_stored_as_zero_not_refused_by_dynamodb() -> None:
    """Online Retail II through the local stack: a P(alive) of ~1e-150 was refused with "Number
    underflow" (DynamoDB's smallest magnitude is 1e-130) and the retrain failed."""
    from audience.adapters.profile_items import from_item, to_item
    from audience.domain.predictions import Predictions

    tiny = Predictions(p_alive=1e-150, expected_orders_90d=1e-140, expected_order_value=3.0, clv_12m=0.0,
                       churn_risk=0.5, model_version="v1", as_of=NOW)  # fmt: skip
    item = to_item(Profile(customer_id="c1", predictions=tiny))
    stored = item["predictions"]["M"]
    assert stored["pAlive"] == {"N": "0"} and stored["expectedOrders90d"] == {"N": "0"}
    assert from_item(item).predictions == tiny.model_copy(update={"p_alive": 0.0, "expected_orders_90d": 0.0})

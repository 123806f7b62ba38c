"""The experiment statistics checked by simulation, a thousand experiments at a time (known
truth, fixed seeds), through the results code itself (``Arms``, ``versus``, the corrections):
arrays of experiments and daily looks go through what computes one experiment.

The figures each test prints are those the README records."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest

from audience.measure.corrections import benjamini_hochberg, bh_alpha, holm
from audience.measure.results import Arms, adjusted_sequence, versus
from audience.measure.statistics import ALPHA, TUNING, Sample
from tests.real_data import RETAIL

EXPERIMENTS, LOOKS = 1_000, 30


def cumulative(arms: Arms, axis: int = 1) -> Arms:
    """Each look's sums: everything exposed up to that day."""

    def running(sample: Sample) -> Sample:
        return Sample(*(np.cumsum(getattr(sample, f.name), axis=axis) for f in fields(sample)))

    return Arms(running(arms.conversion), running(arms.revenue), running(arms.refunds))


def daily_arms(rng: np.random.Generator, per_day: int, conversion: float, lift: float = 0.0,
               experiments: int = EXPERIMENTS, looks: int = LOOKS) -> tuple[Arms, Arms]:  # fmt: skip
    """Control and treatment, ``per_day`` customers each a day: converting at ``conversion``
    (times 1 + ``lift`` in the treatment), spending a lognormal amount when they do."""
    shape = (experiments, looks, per_day)

    def one(rate: float) -> Arms:
        converted = rng.random(shape) < rate
        revenue = converted * rng.lognormal(3.5, 0.8, shape)
        return Arms.of(converted, revenue, np.zeros(shape), np.zeros(shape), np.zeros(shape))

    return cumulative(one(conversion)), cumulative(one(conversion * (1 + lift)))


def test_a_a_read_daily_for_30_days_rejects_at_most_5_percent_always_valid_and_far_more_fixed_horizon() -> None:
    """1,000 A/A experiments, 200 customers per arm a day, read every day for 30 days: an
    experiment 'finds' an effect if any look rejects. The fixed-horizon p-value read daily
    rejects a true null about 29% of the time (the REFERENCE's figure for 30 looks)."""
    control, treatment = daily_arms(np.random.default_rng(27), 200, 0.10)
    found = versus(control, treatment, TUNING)
    for name, lift in (("conversion", found.conversion), ("revenue", found.revenue)):
        fixed = (lift.p_value < ALPHA).any(axis=1).mean()
        valid = (lift.sequential_p_value < ALPHA).any(axis=1).mean()
        last = (lift.p_value[:, -1] < ALPHA).mean()
        print(f"A/A {name}, 30 daily looks: always-valid {valid:.1%}, fixed horizon {fixed:.1%} "
              f"(fixed read once at the end: {last:.1%})")  # fmt: skip
        assert valid <= 0.05 and fixed >= 0.15 and 0.03 <= last <= 0.07, (valid, fixed, last)
        # the p-value and the sequence agree: p < 0.05 exactly when the sequence excludes zero
        excludes = (lift.sequential_low > 0) | (lift.sequential_high < 0)
        assert np.array_equal(excludes, lift.sequential_p_value < ALPHA)
    # what the decision ships on: either primary metric's Holm-adjusted sequence excluding zero, any day
    both = np.stack([found.conversion.sequential_p_value, found.revenue_cupac.sequential_p_value], axis=-1)
    shipped = (holm(both) < ALPHA).any(axis=(1, 2)).mean()
    print(f"A/A, a winner declared on any of 30 days (Holm across the two metrics, always valid): {shipped:.1%}")
    assert shipped <= 0.05


def test_the_95_percent_confidence_sequences_cover_known_lifts_at_every_look_at_least_94_percent() -> None:
    """1,000 experiments, each with its own true conversion lift (0 to +30%), covered at all 30
    looks at once (time-uniform coverage, the sequences' promise); and the fixed-horizon interval
    at its one planned look."""
    rng = np.random.default_rng(28)
    lifts = rng.uniform(0, 0.3, EXPERIMENTS)
    shape, base = (EXPERIMENTS, LOOKS, 150), 0.08
    converted_c = rng.random(shape) < base
    converted_t = rng.random(shape) < base * (1 + lifts[:, None, None])
    spend = lambda converted: converted * rng.lognormal(3.5, 0.8, shape) * (1 + 0 * converted)  # noqa: E731
    zeros = np.zeros(shape)
    control = cumulative(Arms.of(converted_c, spend(converted_c), zeros, zeros, zeros))
    treatment = cumulative(Arms.of(converted_t, spend(converted_t), zeros, zeros, zeros))
    found = versus(control, treatment, TUNING).conversion
    truth = (base * lifts)[:, None]
    covered = ((found.sequential_low <= truth) & (truth <= found.sequential_high)).all(axis=1).mean()
    relative = (found.sequential_relative_low <= lifts[:, None]) & (lifts[:, None] <= found.sequential_relative_high)
    fixed = ((found.low[:, -1] <= truth[:, 0]) & (truth[:, 0] <= found.high[:, -1])).mean()
    print(f"coverage over 30 looks: absolute {covered:.1%}, relative {relative.all(axis=1).mean():.1%}; "
          f"fixed horizon at the last look {fixed:.1%}")  # fmt: skip
    assert covered >= 0.94 and relative.all(axis=1).mean() >= 0.94 and 0.93 <= fixed <= 0.97


def test_small_arms_the_relative_interval_keeps_its_coverage_on_the_log_scale() -> None:
    """About 15 conversions an arm (150 customers at 10%): the symmetric delta-method relative
    interval covered ~93%; the product's log-scale interval covers 95%, and below 30 conversions
    an arm the decision says to keep running (tested in test_experiments)."""
    rng = np.random.default_rng(29)
    n, base, lift = 150, 0.10, 0.2
    converted_c = rng.random((EXPERIMENTS * 4, n)) < base
    converted_t = rng.random((EXPERIMENTS * 4, n)) < base * (1 + lift)
    zeros = np.zeros(converted_c.shape)
    found = versus(Arms.of(converted_c, zeros, zeros, zeros, zeros), Arms.of(converted_t, zeros, zeros, zeros, zeros),
                   TUNING).conversion  # fmt: skip
    ok = np.isfinite(found.relative)  # (a control with no conversion has no relative lift)
    log_scale = ((found.relative_low <= lift) & (lift <= found.relative_high))[ok].mean()
    se = np.sqrt(found.treatment * (1 - found.treatment) / n / found.control**2
                 + found.treatment**2 * found.control * (1 - found.control) / n / found.control**4)  # fmt: skip
    symmetric = ((found.relative - 1.96 * se <= lift) & (lift <= found.relative + 1.96 * se))[ok].mean()
    absolute = ((found.low <= base * lift) & (base * lift <= found.high)).mean()
    conversions = converted_c.sum(axis=1).mean()
    print(f"small arms (~{conversions:.0f} conversions): relative on the log scale {log_scale:.1%}, symmetric delta "
          f"method {symmetric:.1%}, absolute {absolute:.1%}")  # fmt: skip
    assert log_scale >= 0.94 and symmetric < log_scale


def test_benjamini_hochberg_across_10_segments_keeps_the_false_discovery_rate_at_5_percent() -> None:
    """1,000 experiments of 10 segments each; in 3 segments the offer lifts conversion by 25%,
    in 7 it does nothing. Discoveries are read on the always-valid p-values, adjusted."""
    rng = np.random.default_rng(30)
    segments, n, base = 10, 3_000, 0.08
    effect = np.zeros(segments)
    effect[:3] = 0.25
    shape = (EXPERIMENTS, segments, n)
    converted_c = rng.random(shape) < base
    converted_t = rng.random(shape) < base * (1 + effect[None, :, None])
    zeros = np.zeros(shape)
    found = versus(Arms.of(converted_c, zeros, zeros, zeros, zeros), Arms.of(converted_t, zeros, zeros, zeros, zeros),
                   TUNING).conversion  # fmt: skip
    for name, p in (("always valid", found.sequential_p_value), ("fixed horizon", found.p_value)):
        discovered = benjamini_hochberg(p) <= ALPHA
        false = (discovered & (effect == 0)).sum(axis=1)
        fdr = (false / np.maximum(discovered.sum(axis=1), 1)).mean()
        unadjusted = ((p < ALPHA) & (effect == 0)).sum(axis=1) / np.maximum((p < ALPHA).sum(axis=1), 1)
        power = (discovered & (effect > 0)).sum() / (3 * EXPERIMENTS)
        print(f"BH across 10 segments ({name}): FDR {fdr:.1%} (unadjusted {unadjusted.mean():.1%}), power {power:.0%}")
        assert fdr <= 0.05
    # the selected segments' adjusted intervals (level alpha R / m) cover their truth
    alpha = bh_alpha(found.sequential_p_value)[:, None]
    low, high = adjusted_sequence(found, 2 * n, TUNING, alpha)
    selected = benjamini_hochberg(found.sequential_p_value) <= ALPHA
    truth = base * effect
    miss = (selected & ((truth < low) | (high < truth))).sum(axis=1) / np.maximum(selected.sum(axis=1), 1)
    print(f"false coverage rate of the selected, BH-adjusted sequences: {miss.mean():.2%}")
    assert miss.mean() <= 0.05


def test_holm_keeps_the_family_wise_error_across_metrics() -> None:
    """Two metrics (conversion and revenue per customer), both null: Holm on the always-valid
    p-values rejects either at most 5% of the time, over 1,000 experiments read once."""
    control, treatment = daily_arms(np.random.default_rng(31), 1_500, 0.10, looks=1)
    found = versus(control, treatment, TUNING)
    fixed = np.stack([found.conversion.p_value[:, 0], found.revenue_cupac.p_value[:, 0]], axis=-1)
    any_rejected = (holm(fixed) <= ALPHA).any(axis=1).mean()
    unadjusted = (fixed < ALPHA).any(1).mean()
    print(f"Holm across 2 null metrics: family-wise error {any_rejected:.1%} (unadjusted {unadjusted:.1%})")
    assert any_rejected <= 0.06
    assert np.allclose(holm([[0.01, 0.04, 0.03]]), [[0.03, 0.06, 0.06]])
    assert np.allclose(benjamini_hochberg([[0.01, 0.04, 0.03]]), [[0.03, 0.04, 0.04]])


def spenders(rng: np.random.Generator, shape: tuple[int, ...], explained: float) -> tuple[np.ndarray, ...]:
    """Customers whose spending rates differ (gamma) spend in the window a Poisson number of
    orders of lognormal value. The value model's prediction is the rate's spend plus noise tuned
    so that it alone explains ``explained`` of the window's spend variance; the revenue before
    exposure is that prediction's twin (on Online Retail II the two correlate at 0.99: BTYD
    predicts from the same history)."""
    rate = rng.gamma(0.3, 0.1 / 0.3, size=shape)  # orders a day, mean 0.1
    mean_order = np.exp(3.5 + 0.5**2 / 2)
    after = rng.poisson(rate * 14) * rng.lognormal(3.5, 0.5, shape)
    signal = rate * 14 * mean_order
    var_signal, var_after = signal.var(), after.var()
    # R²(prediction) = var_signal² / ((var_signal + noise²) var_after)
    noise = np.sqrt(max(var_signal**2 / (explained * var_after) - var_signal, 0.0))
    predicted = signal + rng.normal(0, noise, shape)
    before = (predicted + rng.normal(0, 0.15 * noise + 1e-9, shape)) * 365 / 14
    return before, predicted, after


# R² of the value model's prediction for the next 14 and 30 days' spend on Online Retail II
# (monthly cuts June to November 2010, the median; test_cupac_on_the_online_retail_ii_backtest)
BACKTEST_EXPLAINED = {14: 0.48, 30: 0.58}


def test_cupac_reduces_the_variance_as_the_backtest_predicts_and_keeps_an_a_a_at_5_percent() -> None:
    """The prediction explains the window's spend as much as on the Online Retail II backtest;
    CUPAC (prediction and pre-exposure revenue) against CUPED (revenue before alone), over 1,000
    A/A experiments of 2,000 customers an arm, read once."""
    for window, explained in BACKTEST_EXPLAINED.items():
        rng = np.random.default_rng(32)
        shape = (EXPERIMENTS, 2, 2_000)
        before, predicted, after = spenders(rng, shape, explained)

        def arms(i: int) -> Arms:
            return Arms.of(after[:, i] > 0, after[:, i], np.zeros(shape[::2]), before[:, i], predicted[:, i])  # noqa: B023

        found = versus(arms(0), arms(1), TUNING)
        cuped, cupac = float(np.median(found.cuped_reduction)), float(np.median(found.cupac_reduction))
        lifts = {"plain": found.revenue, "CUPED": found.revenue_cuped, "CUPAC": found.revenue_cupac}
        rejected = {name: float((lift.p_value < ALPHA).mean()) for name, lift in lifts.items()}
        shown = ", ".join(f"{k} {v:.1%}" for k, v in rejected.items())
        print(f"{window}-day calibration (prediction R² {explained:.2f}): variance reduction CUPED {cuped:.0%}, "
              f"CUPAC {cupac:.0%}; A/A rejections read once: {shown}")  # fmt: skip
        assert cupac >= cuped and abs(cupac - explained) < 0.05
        assert all(0.03 <= v <= 0.07 for v in rejected.values()), rejected
        # the adjusted interval is narrower by the reduction: the standard error by sqrt(1 - reduction)
        assert abs(float(np.median(found.revenue_cupac.se / found.revenue.se)) - np.sqrt(1 - cupac)) < 0.03
        if window == 30:
            assert cupac >= 0.5


def fitted(log: object, cut: datetime) -> object:
    """The value model as of ``cut``, with the smallest penalizer that converges (as the retrain does when asked)."""
    from audience.value.btyd import FitFailed
    from audience.value.training import fit_value

    for penalizer in (0.0, 0.001, 0.01):
        try:
            return fit_value(log, cut, "backtest", penalizer=penalizer).spec  # type: ignore[arg-type]
        except FitFailed:
            continue
    raise AssertionError(f"no fit as of {cut}")


@pytest.mark.skipif(not RETAIL.exists(), reason="needs ../shared/data/online_retail (not part of a user's clone)")
def test_cupac_on_the_online_retail_ii_backtest() -> None:
    """The value model fitted as of the 1st of each month, June to November 2010 (no data after
    the cut), predicts each buyer's spend in the next 14 and 30 days as ``Profile.exposed``
    stores it (90 days' expected orders x expected order value, scaled to the window); the
    buyers, split at random into two arms, go through the results code: CUPED's and CUPAC's
    variance reductions. (BTYD predicts from the same history as the revenue before: CUPAC
    adds little to CUPED on this data.)"""
    from audience.value.orders import OrderLog
    from audience.value.spec import OrderHistory
    from tests.real_data import imported_profiles

    log = OrderLog.of([OrderHistory.of(p) for p in imported_profiles() if p.first_order_at is not None])
    found: dict[int, list[tuple[float, float]]] = {14: [], 30: []}
    rng = np.random.default_rng(33)
    for month in range(6, 12):
        cut = datetime(2010, month, 1, tzinfo=UTC)
        day = cut.date().toordinal()
        spec = fitted(log, cut)
        stats = log.as_of(day)
        buyers = np.flatnonzero(stats.buyer)
        earlier = log.day <= day
        before = np.bincount(log.owner[earlier], weights=log.spend[earlier], minlength=log.customers)[buyers]
        values = np.array([spec.values(stats.x[i], stats.t_x[i], stats.big_t[i], stats.zbar[i]) for i in buyers])
        arm = rng.random(len(buyers)) < 0.5
        for window in found:
            inside = (log.day > day) & (log.day <= day + window)
            after = np.bincount(log.owner[inside], weights=log.spend[inside], minlength=log.customers)[buyers]
            predicted = np.round(values[:, 1] * values[:, 2] * window / 90, 2)
            both = [Arms.of(after[k] > 0, after[k], np.zeros(k.sum()), before[k], predicted[k]) for k in (~arm, arm)]
            result = versus(both[0], both[1], TUNING)
            found[window].append((float(result.cuped_reduction), float(result.cupac_reduction)))
    for window, reductions in found.items():
        cuped, cupac = np.median(reductions, axis=0)
        print(f"Online Retail II, {window}-day windows, 6 monthly cuts: variance reduction CUPED {cuped:.0%}, "
              f"CUPAC {cupac:.0%} (by cut: {', '.join(f'{b:.0%}' for _, b in reductions)})")  # fmt: skip
        assert cupac >= cuped - 0.01 and abs(cupac - BACKTEST_EXPLAINED[window]) < 0.08


def test_an_exposure_keeps_the_prediction_and_its_model_in_about_30_bytes() -> None:
    from audience.adapters.profile_items import plain, size
    from audience.domain.predictions import Predictions
    from audience.domain.profile import Profile

    now = datetime(2026, 12, 7, tzinfo=UTC)
    predictions = Predictions(p_alive=0.9, expected_orders_90d=1.25, expected_order_value=48.5, clv_12m=150.0,
                              churn_risk=0.2, model_version="20261207T030000Z-1a2b3c", as_of=now)  # fmt: skip
    profile = Profile(customer_id="c", revenue=Decimal("300.50"), predictions=predictions)
    exposed = profile.exposed("spring", "offer", now, timedelta(days=14))
    assert exposed is not None
    exposure = exposed.exposures["spring"]
    assert exposure.predicted == Decimal("9.43") and exposure.model == predictions.model_version  # 1.25 x 48.5 x 14/90
    stored = plain(exposed.model_dump(mode="json", by_alias=True)["exposures"]["spring"])
    assert stored[7:] == ["9.43", predictions.model_version, "0"]  # appended: older exposures load with defaults
    assert Profile.model_validate({"customerId": "c", "exposures": {"spring": stored[:7]}}).exposures["spring"][7:] \
        == (Decimal(0), None, Decimal(0))  # fmt: skip
    added = size(stored) - size(stored[:7])  # JSON
    dynamodb = sum(1 + len(value.encode()) for value in stored[7:])  # a list element: its bytes and one more
    print(f"bytes added per exposure: {dynamodb} as DynamoDB counts them, {added} as JSON (of {size(stored)})")
    assert dynamodb <= 32 and added <= 40


NOW = datetime(2026, 12, 20, tzinfo=UTC)


def experiment(**changes: object) -> object:
    from audience.domain.experiments import Experiment

    document = {"id": "spring", "control": "control", "start": "2026-12-01T00:00:00Z",
                "end": "2027-01-01T00:00:00Z", "windowDays": 14,
                "variants": [{"id": "control", "weight": 1}, {"id": "offer", "weight": 1}], **changes}  # fmt: skip
    return Experiment.model_validate(document)


def exposures(rng: np.random.Generator, n: int, rates: dict[str, float], refunds: dict[str, float] | None = None,
              segments: int = 1) -> list[object]:  # fmt: skip
    """``n`` customers an arm, converting at ``rates``, spending 40 when they do; ``refunds``:
    the share of converters who get 20 back inside the window."""
    from audience.domain.profile import Exposure

    found = []
    for variant, rate in rates.items():
        for i in range(n):
            converted = rng.random() < rate
            refunded = Decimal(20) if converted and rng.random() < (refunds or {}).get(variant, 0.0) else Decimal(0)
            found.append(Exposure(variant, f"s{i % segments}", NOW - timedelta(days=20), NOW - timedelta(days=6),
                                  int(converted), Decimal(40) * converted - refunded, Decimal(0), Decimal(0), None,
                                  refunded))  # fmt: skip
    return found


def test_the_results_decide_to_ship_a_clear_winner_and_the_answer_is_the_published_view() -> None:
    from audience.api.experiment_views import ExperimentResults
    from audience.measure.report import render_experiment_report
    from audience.measure.results import results

    found = results(experiment(), exposures(np.random.default_rng(40), 4_000, {"control": 0.10, "offer": 0.14},
                                            segments=3), NOW)  # type: ignore[arg-type]  # fmt: skip
    assert found["decision"]["action"] == "shipWinner" and found["decision"]["variant"] == "offer", found["decision"]
    assert found["reading"]["use"] == "alwaysValid"  # still running
    lift = found["variants"]["offer"]["conversionLift"]
    assert lift["sequential_low"] < lift["low"] and lift["high"] < lift["sequential_high"]  # wider: valid every day
    assert lift["adjusted"]["method"] == "holm" and lift["adjusted"]["sequential_p_value"] >= lift["sequential_p_value"]
    segment = found["segments"]["s0"]["offer"]["conversionLift"]["adjusted"]
    assert segment["method"] == "benjamini-hochberg" and segment["alpha"] <= ALPHA
    shown = ExperimentResults.model_validate(found).model_dump(mode="json", exclude_none=True)
    assert (
        shown["decision"]["action"] == "shipWinner"
        and "sequentialPValue" in shown["variants"]["offer"]["conversionLift"]
    )
    assert shown["variants"]["offer"]["revenueLiftCupac"]["varianceReduction"] == 0.0  # no covariates here
    page = render_experiment_report(found, None)
    assert "Decision: shipWinner (offer)" in page and "always valid" in page


def test_a_guardrail_that_gets_worse_stops_the_experiment_and_too_few_conversions_keep_it_running() -> None:
    from audience.measure.results import results

    rng = np.random.default_rng(41)
    harmful = results(experiment(), exposures(rng, 4_000, {"control": 0.10, "offer": 0.14},
                                              {"control": 0.05, "offer": 0.40}), NOW)  # type: ignore[arg-type]  # fmt: skip
    guard = harmful["variants"]["offer"]["refundsGuardrail"]
    assert guard["harmed"] and guard["sequential_low"] > 0
    assert harmful["decision"]["action"] == "stop" and "refunds" in harmful["decision"]["reason"]
    few = results(experiment(), exposures(rng, 150, {"control": 0.10, "offer": 0.30}), NOW)  # type: ignore[arg-type]
    assert few["decision"]["action"] == "keepRunning" and "fewer than 30" in few["decision"]["reason"]


def test_an_a_a_with_enough_customers_stops_for_no_effect_and_an_ended_one_reads_the_fixed_horizon() -> None:
    from audience.measure.results import results

    ended = experiment(end="2026-12-10T00:00:00Z")
    found = results(ended, exposures(np.random.default_rng(42), 40_000, {"control": 0.3, "offer": 0.3}),
                    NOW)  # type: ignore[arg-type]  # fmt: skip
    assert found["decision"]["action"] == "stop" and "no effect likely" in found["decision"]["reason"]
    assert found["reading"]["use"] == "fixedHorizon"


def test_planning_gives_the_days_to_detect_the_planned_lift_from_the_segments_kpis() -> None:
    """Hand-checked: 10% conversion over 30 days is 1 - 0.9^(14/30) = 4.80% in 14 days; a 10%
    lift, two equal arms: n = (1.96 + 0.84)² (p(1-p) + p'(1-p')) / (p' - p)² per arm."""
    from scipy import stats

    from audience.measure.results import results

    kpis = {"learned:a": {"customers": 10_000, "conversion30d": 0.10, "revenue30dPerCustomer": 8.0,
                          "revenue30dVariance": 900.0}}  # fmt: skip
    found = results(experiment(segments=["learned:a"]),
                    exposures(np.random.default_rng(43), 1_900, {"control": 0.05, "offer": 0.05}), NOW,
                    kpis)["planning"]  # type: ignore[arg-type]  # fmt: skip
    p = 1 - 0.9 ** (14 / 30)
    q = p * 1.1
    per_arm = (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) ** 2 * (p * (1 - p) + q * (1 - q)) / (q - p) ** 2
    conversion = found["metrics"]["conversion"]
    assert abs(found["baselineConversion"] - p) < 1e-12 and found["exposuresPerDay"] == 3_800 / 19
    assert abs(conversion["customersFixedHorizon"] - 2 * per_arm) <= 1
    assert conversion["daysFixedHorizon"] == int(np.ceil(conversion["customersFixedHorizon"] / 200)) + 14
    assert conversion["customersAlwaysValid"] > conversion["customersFixedHorizon"]  # paying for the daily looks
    print("planning:", {m: (n["daysFixedHorizon"], n["daysAlwaysValid"]) for m, n in found["metrics"].items()})


def test_a_refund_inside_the_window_reduces_the_exposures_revenue_and_counts_for_the_guardrail() -> None:
    from audience.domain.events import parse_request
    from audience.domain.folding import fold
    from audience.domain.money import Currencies
    from audience.domain.profile import Exposure, PositionedMessage, Profile, StreamPosition

    currencies, start = Currencies("USD", {}), datetime(2026, 12, 1, tzinfo=UTC)
    profile = Profile(customer_id="c", exposures={"x": Exposure("offer", None, start, start + timedelta(days=14))})

    def send(profile: Profile, n: int, event: str, properties: dict[str, object], days: int) -> Profile:
        at = start + timedelta(days=days)
        message = parse_request({"type": "track", "event": event, "userId": "c", "messageId": f"m{n}",
                                 "properties": properties, "timestamp": at.isoformat()}, at, currencies)[0]  # fmt: skip
        return fold(profile, [PositionedMessage(message, StreamPosition("", "c", n))], currencies, at)[0]

    profile = send(profile, 1, "Order Completed", {"order_id": "o1", "total": "40"}, 2)
    profile = send(profile, 2, "Order Refunded", {"order_id": "o1", "total": "15"}, 5)
    profile = send(profile, 2, "Order Refunded", {"order_id": "o1", "total": "15"}, 5)  # a retry: nothing
    exposure = profile.exposures["x"]
    assert (exposure.orders, exposure.revenue, exposure.refunded) == (1, Decimal(25), Decimal(15))
    profile = send(profile, 3, "Order Refunded", {"order_id": "o1", "total": "10"}, 20)  # after the window
    assert profile.exposures["x"].refunded == Decimal(15) and profile.refunded == Decimal(25)

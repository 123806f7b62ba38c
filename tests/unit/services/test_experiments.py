"""Experiments: the document, deterministic assignment, and the statistics checked by simulation
(a known effect is found and covered, A/A tests reject at about the nominal rate, a skewed
assignment is flagged as a sample-ratio mismatch)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import numpy as np
import pytest

from audience.domain.documents import parse_document
from audience.domain.errors import InvalidInput
from audience.domain.experiments import Experiments, bucket
from audience.measure.statistics import conversion_lift, revenue_lift, sample_ratio_mismatch

NOW = datetime(2026, 12, 3, tzinfo=UTC)
DOCUMENT = {
    "holdout": 0.05,
    "experiments": [{
        "id": "spring-offer", "segments": ["rfm:champions"], "control": "control",
        "start": "2026-12-01T00:00:00Z", "end": "2027-01-01T00:00:00Z", "windowDays": 14,
        "variants": [{"id": "control", "weight": 1},
                     {"id": "offer", "weight": 1, "content": {"id": "spring-10", "kind": "offer"}}],
    }],
}  # fmt: skip


def test_assignment_is_sha256_to_a_bucket_stable_and_in_proportion_to_the_weights() -> None:
    digest = hashlib.sha256(b"spring-offer:c-42").digest()
    assert bucket("spring-offer", "c-42") == int.from_bytes(digest[:8], "big") / 2**64  # anyone can recompute it
    experiments = parse_document(Experiments, json.dumps(DOCUMENT))
    [experiment] = experiments.experiments
    assert experiment.variant("c-42") == experiment.variant("c-42") and experiment.running(NOW)
    chosen = [experiment.variant(f"c-{i}").id for i in range(20_000)]
    assert abs(chosen.count("offer") / 20_000 - 0.5) < 0.01
    held = sum(experiments.held_out(f"c-{i}") for i in range(20_000)) / 20_000
    assert abs(held - 0.05) < 0.005


def test_a_document_that_cannot_run_is_refused_naming_the_field_and_weights_cannot_change_mid_run() -> None:
    bad = {**DOCUMENT, "experiments": [{**DOCUMENT["experiments"][0], "control": "nobody"}]}  # type: ignore[dict-item]
    with pytest.raises(InvalidInput, match="control 'nobody' is not one of the variants"):
        parse_document(Experiments, json.dumps(bad))
    running = parse_document(Experiments, json.dumps(DOCUMENT))
    reweighted = json.loads(json.dumps(DOCUMENT))
    reweighted["experiments"][0]["variants"][1]["weight"] = 3
    assert parse_document(Experiments, json.dumps(reweighted)).changed_weights(running, NOW) == ["spring-offer"]
    assert running.changed_weights(running, NOW) == []
    retuned = json.loads(json.dumps(DOCUMENT))
    retuned["experiments"][0]["sequentialTuning"] = 20_000  # tuned on what was seen: no longer always valid
    assert parse_document(Experiments, json.dumps(retuned)).changed_weights(running, NOW) == ["spring-offer"]


def test_a_known_ten_percent_lift_in_conversion_is_found_and_its_interval_covers_the_truth() -> None:
    rng = np.random.default_rng(15)
    n, base = 40_000, 0.10
    control, treatment = int(rng.binomial(n, base)), int(rng.binomial(n, base * 1.10))
    lift = conversion_lift(control, n, treatment, n)
    assert lift.significant and lift.low <= base * 0.10 <= lift.high
    assert lift.relative_low <= 0.10 <= lift.relative_high


def test_a_a_tests_reject_at_about_the_nominal_five_percent() -> None:
    rng = np.random.default_rng(3)
    rounds, n = 2_000, 3_000
    conversions = rng.binomial(n, 0.08, size=(rounds, 2))
    rejected = sum(conversion_lift(int(a), n, int(b), n).significant for a, b in conversions) / rounds
    revenue = [revenue_lift(rng.lognormal(3, 1, 500) * rng.binomial(1, 0.1, 500),
                            rng.lognormal(3, 1, 500) * rng.binomial(1, 0.1, 500)).significant
               for _ in range(rounds)]  # fmt: skip
    assert 0.035 <= rejected <= 0.065, rejected  # binomial error of 2,000 rounds: about 0.005
    assert 0.03 <= sum(revenue) / rounds <= 0.065, sum(revenue) / rounds  # Welch: conservative with skew


def test_a_skewed_assignment_is_flagged_as_a_sample_ratio_mismatch() -> None:
    assert not sample_ratio_mismatch([5_020, 4_980], [1, 1])[1]
    p_value, flagged = sample_ratio_mismatch([5_300, 4_700], [1, 1])
    assert flagged and p_value < 0.001
    assert not sample_ratio_mismatch([2_010, 7_990], [1, 4])[1]


def test_a_simulated_experiment_through_the_services_finds_the_known_lift_and_an_a_a_finds_none() -> None:
    """20,000 customers ask for their personalization (the first answer records the exposure),
    then order with a known probability per variant (0.30 control, 0.33 offer: +10%) through the
    stream's fold; the measure job reads the exposures back from the profiles."""
    from datetime import timedelta

    from audience.domain.events import parse_request
    from audience.domain.folding import fold
    from audience.domain.money import Currencies
    from audience.domain.personalization import Content, ContentMapping
    from audience.domain.profile import PositionedMessage, Profile, StreamPosition
    from audience.domain.segments import Segments
    from audience.services.experiments import personalize
    from tests.unit.fakes import MemoryBucket, MemoryProfiles
    from tests.unit.jobs import measuring

    experiments = json.loads(json.dumps(DOCUMENT))
    experiments["holdout"] = 0
    experiments["experiments"][0]["segments"] = []  # everyone
    experiments["experiments"].append(
        {**experiments["experiments"][0], "id": "a-a", "start": "2026-11-01T00:00:00Z", "end": "2026-11-30T00:00:00Z"}
    )  # fmt: skip  (ended: nobody exposed)
    document = parse_document(Experiments, json.dumps(experiments))
    mapping = ContentMapping(default=Content(id="default"))
    profiles, currencies, rng = MemoryProfiles(), Currencies("USD", {}), np.random.default_rng(8)
    for i in range(20_000):
        profiles.items[f"c{i}"] = Profile(customer_id=f"c{i}", version=1)
        choice = personalize(f"c{i}", profiles, mapping, document, NOW)
        assert choice.experiment is not None and choice.personalized == (choice.experiment.variant == "offer")
        if rng.random() < (0.33 if choice.experiment.variant == "offer" else 0.30):
            order = parse_request({"type": "track", "event": "Order Completed", "userId": f"c{i}", "properties": {
                "order_id": f"o{i}", "total": "40"}, "timestamp": (NOW + timedelta(days=2)).isoformat()},
                NOW + timedelta(days=2), currencies)[0]  # fmt: skip
            placed = PositionedMessage(order, StreamPosition("", f"c{i}", 0))
            profiles.items[f"c{i}"], _ = fold(profiles.items[f"c{i}"], [placed], currencies, NOW + timedelta(days=2))
    version = profiles.items["c1"].version
    again = personalize("c1", profiles, mapping, document, NOW + timedelta(days=1))
    first = profiles.items["c1"].exposures["spring-offer"]
    assert again.experiment is not None and again.experiment.variant == first.variant  # the same variant
    assert first.at == NOW and profiles.items["c1"].version == version  # the first exposure only: no second write

    bucket = MemoryBucket()
    bucket.objects["live/experiments.json"] = json.dumps(experiments).encode()
    assert measuring(profiles, bucket, 2).measure(NOW + timedelta(days=20)) == ["spring-offer", "a-a"]
    found = json.loads(bucket.objects["models/experiments/spring-offer/results.json"])
    offer = found["variants"]["offer"]
    assert not found["sampleRatio"]["mismatch"] and found["windowsStillOpen"] == 0
    assert (
        offer["conversionLift"]["significant"]
        and offer["conversionLift"]["low"] <= 0.03 <= offer["conversionLift"]["high"]
    )
    assert offer["revenueLift"]["relative_low"] <= 0.10 <= offer["revenueLift"]["relative_high"]
    assert found["segments"]["(none)"]["offer"]["exposed"] == offer["exposed"]
    assert json.loads(bucket.objects["models/experiments/a-a/results.json"])["variants"]["control"]["exposed"] == 0
    assert b"conversion lift [95% CI]" in bucket.objects["reports/experiments/spring-offer.html"]
    assert json.loads(bucket.objects["models/segment-kpis.json"])["segments"] == {}  # nobody placed in this test

    # fanned out over the work queue (as the retrain function does at scale): the same results
    from tests.unit.fakes import MemoryQueue

    single = {k: v for k, v in bucket.objects.items() if k.startswith(("models/", "reports/"))}
    profiles.items["c0"] = profiles.items["c0"].model_copy(update={"segments": Segments(
        segment=0, name="Champions", rfm="Champions", model_version="v1", assigned_at=NOW)})  # fmt: skip
    single_kpis = measuring(profiles, bucket, 1).measure(NOW + timedelta(days=20)) and dict(bucket.objects)
    queue = MemoryQueue()
    fanned = measuring(profiles, bucket, work=queue)
    fanned.start("run-1", 3)
    done = [fanned.tally("run-1", int(i["segment"]), 3, NOW + timedelta(days=20))  # type: ignore[call-overload]
            for i in queue.items]  # fmt: skip
    assert done[:2] == [None, None] and done[2] == ["spring-offer", "a-a"]  # the last part publishes
    for key in (*single, "models/segment-kpis.json"):
        assert bucket.objects[key] == single_kpis[key], key
    assert json.loads(bucket.objects["models/segment-kpis.json"])["segments"]["learned:champions"]["customers"] == 1


def test_the_same_customer_keeps_their_variant_after_an_identity_merge() -> None:
    """Sticky: once exposed, the recorded variant is the answer. The survivor's exposure wins a
    merge; when only the retired id was exposed, its exposure (and variant) is carried over."""
    from audience.domain.folding import merge
    from audience.domain.personalization import Content, ContentMapping
    from audience.domain.profile import Exposure, Profile
    from audience.services.experiments import personalize
    from tests.unit.fakes import MemoryProfiles

    document = json.loads(json.dumps(DOCUMENT))
    document["holdout"], document["experiments"][0]["segments"] = 0, []
    experiments, mapping = parse_document(Experiments, json.dumps(document)), ContentMapping(default=Content(id="d"))
    experiment = experiments.experiments[0]
    # an anonymous id and a known id that hash to different variants
    anonymous = next(f"anon-{i}" for i in range(100) if experiment.variant(f"anon-{i}").id == "offer")
    known = next(f"user-{i}" for i in range(100) if experiment.variant(f"user-{i}").id == "control")
    profiles = MemoryProfiles()
    profiles.items[anonymous] = Profile(customer_id=anonymous, version=1)
    profiles.items[known] = Profile(customer_id=known, version=1)
    first = personalize(anonymous, profiles, mapping, experiments, NOW)
    assert first.experiment is not None and first.experiment.variant == "offer"

    survivor = merge(profiles.items[known], profiles.items[anonymous], NOW)  # only the retired id was exposed
    profiles.items[known] = survivor.model_copy(update={"version": 2})
    profiles.items[anonymous] = profiles.items[anonymous].model_copy(update={"merged_into": known, "version": 3})
    for asked in (known, anonymous, known):
        again = personalize(asked, profiles, mapping, experiments, NOW)
        assert again.experiment is not None and again.experiment.variant == "offer"
    assert profiles.items[known].exposures[experiment.id].at == NOW  # carried over, not exposed anew

    both = Profile(customer_id=known, version=1, exposures={})
    profiles.items[known] = both
    assert personalize(known, profiles, mapping, experiments, NOW).experiment.variant == "control"  # type: ignore[union-attr]
    retired = Profile(customer_id=anonymous, exposures={experiment.id: Exposure("offer", None, NOW, NOW)})
    assert merge(profiles.items[known], retired, NOW).exposures[experiment.id].variant == "control"  # survivor's


def test_segment_kpis_count_each_member_once_per_segment_and_leave_out_who_refused_analytics() -> None:
    from datetime import timedelta
    from decimal import Decimal

    from audience.domain.profile import ConsentState, DayTotals, Profile
    from audience.domain.segments import Segments
    from audience.measure.kpis import kpis, tally

    def member(n: int, orders: int, revenue: str, first_days_ago: int | None, recent_days_ago: int | None) -> Profile:
        daily = {(NOW - timedelta(days=recent_days_ago)).date(): DayTotals(orders=1, revenue=Decimal(10))} \
            if recent_days_ago is not None else {}  # fmt: skip
        return Profile(customer_id=f"k{n}", orders=orders, revenue=Decimal(revenue), daily=daily,
                       first_order_at=NOW - timedelta(days=first_days_ago) if first_days_ago is not None else None,
                       segments=Segments(segment=0, name="Champions", rfm="Champions", model_version="v1",
                                         assigned_at=NOW))  # fmt: skip

    people = [
        member(1, 4, "200", 400, 10),  # old buyer, ordered 10 days ago: converted, retained
        member(2, 2, "100", 200, 60),  # old buyer, ordered 60 days ago: retained, not converted in 30 days
        member(3, 1, "50", 150, None),  # old buyer, nothing since: not retained
        member(4, 1, "30", 20, 20),  # new buyer: converted, not in the retention base
        member(5, 0, "0", None, None),
    ]
    refused = member(6, 9, "900", 400, 1)
    refused.consent["analytics"] = ConsentState(False, NOW, "api")
    merged = member(7, 9, "900", 400, 1).model_copy(update={"merged_into": "k1"})
    found = kpis(tally([*people, refused, merged], NOW), NOW)["segments"]
    assert set(found) == {"rfm:champions", "learned:champions"}
    assert found["learned:champions"] == {
        "customers": 5, "conversion30d": 2 / 5, "revenuePerCustomer": 380 / 5, "averageOrderValue": 380 / 8,
        "retention90d": 2 / 3, "retentionBase": 3,
        "revenue30dPerCustomer": 20 / 5, "revenue30dVariance": (2 * 6**2 + 3 * 4**2) / 4,  # two members spent 10
        "members": 6,  # who allow personalization, the refuser of analytics among them
    }  # fmt: skip
    assert kpis({}, NOW)["segments"] == {}


def test_the_experiment_report_plots_each_variant_and_segment_with_intervals() -> None:
    from decimal import Decimal

    from audience.domain.profile import Exposure
    from audience.measure.report import render_experiment_report
    from audience.measure.results import results

    experiment = parse_document(Experiments, json.dumps(DOCUMENT)).experiments[0]
    rng = np.random.default_rng(3)
    exposures = [Exposure(str(v), s, NOW, NOW, int(o), Decimal(40 * int(o)))
                 for v, s, o in zip(rng.choice(["control", "offer"], 400), rng.choice(["A", "B"], 400),
                                    rng.random(400) < 0.3, strict=True)]  # fmt: skip
    found = results(experiment, exposures, NOW)
    for row in found["variants"].values():
        low, high = row["conversionInterval"]
        assert low < row["conversion"] < high
        low, high = row["revenuePerCustomerInterval"]
        assert low < row["revenuePerCustomer"] < high
    figures = {"customers": 3, "conversion30d": 0.5, "revenuePerCustomer": 10.0, "averageOrderValue": 20.0,
               "retention90d": None, "retentionBase": 0}  # fmt: skip
    kpi = {"asOf": NOW.isoformat(), "segments": {"learned:a": figures}}
    page = render_experiment_report(json.loads(json.dumps(found)), kpi)
    assert page.count("<img") == 3 and "Experiment spring-offer" in page and "learned:a" in page
    assert "offer" in page and "p=" in page and "no mismatch" in page


def test_a_a_experiments_through_the_real_assignment_and_results_reject_at_about_five_percent() -> None:
    """1,000 A/A experiments (the seed is the experiment id): customers are assigned by the
    published hash, convert at 10% whatever their arm, and the results table is computed as the
    measure job computes it. About 5% should be significant; the sample ratio is rarely flagged."""
    from datetime import timedelta
    from decimal import Decimal

    from audience.domain.profile import Exposure
    from audience.measure.results import results

    template = json.loads(json.dumps(DOCUMENT["experiments"][0]))  # type: ignore[index]
    template["variants"][1].pop("content")  # A/A: both arms show the default
    rng, rounds, customers = np.random.default_rng(21), 1_000, 1_000
    significant = flagged = 0
    for seed in range(rounds):
        document = {"holdout": 0, "experiments": [{**template, "id": f"aa-{seed}"}]}
        experiment = parse_document(Experiments, json.dumps(document)).experiments[0]
        converted = rng.random(customers) < 0.10
        exposures = [Exposure(experiment.variant(f"c{i}").id, None, NOW, NOW + timedelta(days=14), int(c),
                              Decimal(40) if c else Decimal(0)) for i, c in enumerate(converted)]  # fmt: skip
        found = results(experiment, exposures, NOW + timedelta(days=20))
        significant += found["variants"]["offer"]["conversionLift"]["significant"]
        flagged += found["sampleRatio"]["mismatch"]
    assert 0.03 <= significant / rounds <= 0.07, significant / rounds  # binomial error of 1,000 rounds: 0.007
    assert flagged <= 5  # the chi-square's own false alarms: 0.1% of rounds


def test_an_order_in_the_window_counts_once_and_a_corrected_amount_replaces_its_revenue() -> None:
    from datetime import timedelta
    from decimal import Decimal

    from audience.domain.events import parse_request
    from audience.domain.folding import fold
    from audience.domain.money import Currencies
    from audience.domain.profile import Exposure, PositionedMessage, Profile, StreamPosition

    currencies = Currencies("USD", {})
    profile = Profile(customer_id="c", exposures={"x": Exposure("offer", None, NOW, NOW + timedelta(days=14))})

    def send(profile: Profile, n: int, order: str, total: str, days: int) -> Profile:
        at = NOW + timedelta(days=days)
        message = parse_request({"type": "track", "event": "Order Completed", "userId": "c", "messageId": f"m{n}",
                                 "properties": {"order_id": order, "total": total}, "timestamp": at.isoformat()},
                                at, currencies)[0]  # fmt: skip
        return fold(profile, [PositionedMessage(message, StreamPosition("", "c", n))], currencies, at)[0]

    profile = send(profile, 1, "o1", "40", 2)
    profile = send(profile, 2, "o1", "40", 2)  # a retry: nothing
    assert profile.exposures["x"][4:6] == (1, Decimal(40))
    profile = send(profile, 3, "o1", "55", 2)  # a corrected export: the amount only
    assert profile.exposures["x"][4:6] == (1, Decimal(55)) and profile.revenue == Decimal(55)
    profile = send(profile, 4, "o2", "10", 20)  # after the window: not an outcome
    assert profile.exposures["x"][4:6] == (1, Decimal(55)) and profile.orders == 2


def test_cuped_with_pre_exposure_revenue_narrows_the_revenue_interval_and_still_covers_the_truth() -> None:
    """Customers differ in how much they spend (a gamma-distributed rate); the year before exposure
    predicts the 14 days after. The offer raises spend by 10%. CUPED must keep the estimate
    unbiased (its interval covers the truth) and narrow the interval by the variance it removes."""
    from audience.measure.statistics import cuped_revenue_lift

    rng = np.random.default_rng(31)
    n, order_value = 4_000, 40.0
    rate = rng.gamma(0.8, 1 / 20, size=(2, n))  # orders per day
    before = rng.poisson(rate * 365) * order_value
    lift = np.array([[1.0], [1.1]])
    after = rng.poisson(rate * 14 * lift) * order_value
    truth = float((rate[1] * 14 * 0.1 * order_value).mean())  # what the offer adds per treated customer
    plain = revenue_lift(after[0], after[1])
    adjusted, reduction = cuped_revenue_lift(after[0], before[0], after[1], before[1])
    print(f"plain {plain.absolute:.2f} [{plain.low:.2f}, {plain.high:.2f}], CUPED {adjusted.absolute:.2f}"
          f" [{adjusted.low:.2f}, {adjusted.high:.2f}], variance -{reduction:.0%}, truth {truth:.2f}")  # fmt: skip
    assert adjusted.low <= truth <= adjusted.high and plain.low <= truth <= plain.high
    assert reduction > 0.3 and (adjusted.high - adjusted.low) < 0.85 * (plain.high - plain.low)
    assert cuped_revenue_lift([1.0, 2.0], [0.0, 0.0], [2.0, 3.0], [0.0, 0.0])[1] == 0.0  # no covariate: no change

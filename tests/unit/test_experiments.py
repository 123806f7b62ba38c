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
    from audience.domain.money import Currencies
    from audience.domain.personalization import Content, ContentMapping
    from audience.domain.profile import PositionedMessage, Profile, StreamPosition, fold
    from audience.services.experiments import personalize
    from audience.services.models import measure
    from tests.unit.fakes import MemoryBucket, MemoryProfiles

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
    assert measure(profiles, bucket, NOW + timedelta(days=20), scan_segments=2) == ["spring-offer", "a-a"]
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

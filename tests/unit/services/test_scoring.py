"""Scoring in the stream: a changed profile is placed with the active model's spec, in the same
write; replays write nothing; a new active version is picked up after the refresh interval."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from decimal import Decimal

from audience.domain.money import Currencies
from audience.domain.profile import Profile
from audience.domain.triggers import TriggerRules
from audience.segmentation.training import TrainingConfig, feature_matrix, train
from audience.services.artifacts import Artifacts, SegmentModels
from audience.services.explain import Explanation, explain
from audience.services.pipelines import Pipelines
from audience.services.profiles import apply_records
from audience.services.scoring import EVENT_REASON, LiveScoring
from tests.conftest import ROOT
from tests.synthetic import NOW, customers
from tests.unit.fakes import MemoryBucket, MemoryDeadLetters, MemoryProfiles, MemoryRegistry
from tests.unit.services.test_profiles_service import order, record

FAST = TrainingConfig(k_range=(2, 5), n_init=2, selection_sample=1_000, silhouette_sample=500, bootstrap_rounds=2)


def active_model(version: str = "v1") -> tuple[MemoryBucket, MemoryRegistry]:
    bucket, registry = MemoryBucket(), MemoryRegistry()
    profiles, _ = customers(600, seed=13)
    trained = train(feature_matrix(profiles, NOW), version, FAST)
    Pipelines(Artifacts(bucket)).save(trained, {"promoted": True})
    registry.activate(version, "test", NOW)
    return bucket, registry


def test_an_updated_profile_is_placed_in_the_same_write_and_a_replay_writes_nothing() -> None:
    bucket, registry = active_model()
    profiles, scoring = MemoryProfiles(), LiveScoring(registry, bucket)
    batch = [record(1, order("c1", 120, messageId="m-1")), record(2, order("c1", 80, messageId="m-2"))]

    apply_records(batch, profiles, MemoryDeadLetters(), Currencies("USD"), NOW, scoring)

    placed = profiles.items["c1"]
    assert profiles.writes == 1 and placed.segments is not None and placed.segments.model_version == "v1"
    assert placed.segments.rfm != "Prospects" and placed.segment_history[-1].reason == EVENT_REASON
    apply_records(batch, profiles, MemoryDeadLetters(), Currencies("USD"), NOW + timedelta(days=1), scoring)
    assert profiles.writes == 1  # a replay changes nothing, not even a segment (the daily rescore ages them)


def test_without_an_active_model_profiles_carry_no_segments() -> None:
    profiles = MemoryProfiles()
    scoring = LiveScoring(MemoryRegistry(), MemoryBucket())
    apply_records([record(1, order("c1", Decimal(5)))], profiles, MemoryDeadLetters(), Currencies("USD"), NOW, scoring)
    assert profiles.items["c1"].segments is None


def test_a_new_active_version_is_used_after_the_refresh_interval() -> None:
    bucket, registry = active_model("v1")
    other_bucket, _ = active_model("v2")
    bucket.objects.update({k: v for k, v in other_bucket.objects.items() if k.startswith("models/v2/")})
    scoring = LiveScoring(registry, bucket, refresh=timedelta(minutes=1))
    assert scoring.model.get(NOW).version == "v1"  # type: ignore[union-attr]
    registry.activate("v2", "test", NOW)
    assert scoring.model.get(NOW + timedelta(seconds=30)).version == "v1"  # type: ignore[union-attr]
    assert scoring.model.get(NOW + timedelta(minutes=1)).version == "v2"  # type: ignore[union-attr]


def test_the_stream_function_scores_without_numpy_or_scikit_learn() -> None:
    probe = (
        "import sys; sys.path[:0] = ['functions/stream', 'layers/audience']; import app;"
        "print(','.join(m for m in ('numpy', 'sklearn', 'scipy') if m in sys.modules) or '-')"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "-"


def test_an_explanation_agrees_with_the_stored_place_and_shows_what_each_rule_compared() -> None:
    bucket, registry = active_model()
    spec = SegmentModels(bucket).spec("v1")
    assert spec is not None and set(spec.percentiles) >= {"recency_days", "frequency", "monetary"}
    profiles, scoring = MemoryProfiles(), LiveScoring(registry, bucket)
    batch = [record(1, order("c1", 120, messageId="m-1")), record(2, order("c1", 900, messageId="m-2"))]
    apply_records(batch, profiles, MemoryDeadLetters(), Currencies("USD"), NOW, scoring)
    profile = profiles.items["c1"]
    vip = [
        {"kind": "top-monetary-percent", "percent": 10},
        {"kind": "revenue-in-window-at-least", "amount": 5000, "days": 30},
    ]
    rules = TriggerRules.model_validate({"rules": [
        {"id": "big", "kind": "order-at-least", "amount": 500}, {"id": "vip", "kind": "all", "conditions": vip},
    ]})  # fmt: skip

    told = explain(profile, spec, rules, None, NOW)

    assert profile.segments is not None and told.segment == told.stored_segment == profile.segments.name
    assert told.scores[0].name == told.segment and [s.distance for s in told.scores] == sorted(spec.scores(row(told)))
    assert told.rfm is not None and told.rfm.cell == profile.segments.rfm
    frequency = next(f for f in told.features if f.name == "frequency")
    assert frequency.value == 2 and frequency.percentile is not None and 0 <= frequency.percentile <= 99
    big, vip = told.rules
    assert big.holds and big.compared == {"largestOrder": 900.0, "amount": 500.0}
    assert not vip.holds and vip.compared["conditions"][1] == {"kind": "revenue-in-window-at-least", "holds": False,
                                                               "revenue": 1020.0, "amount": 5000.0}  # fmt: skip
    assert told.moves == profile.segment_history[-5:] and told.predictions is None
    recency = next(f for f in told.features if f.name == "recency_days")
    assert recency.model_value is not None and 0 <= recency.model_value <= 1  # a rank among buyers
    assert next(f for f in told.features if f.name == "engagement").model_value is None  # not a model feature

    browser = explain(Profile(customer_id="b1", event_counts={"page": 3}, first_seen=NOW), spec, rules, None, NOW)
    assert browser.segment == "Not Yet Buyers" and browser.scores == [] and browser.rfm is not None
    assert all(f.model_value is None for f in browser.features)


def row(told: Explanation) -> list[float | None]:
    return [f.value for f in told.features]

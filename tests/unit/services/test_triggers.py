"""Trigger rules: a high-value order moves the customer at once, with the rule as the reason;
replays move nobody; a customer on a threshold does not flap within the dwell; a bad rules file
is refused naming the rule and field while the previous rules stay in force."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest

from audience.domain.documents import parse_document
from audience.domain.errors import InvalidInput
from audience.domain.personalization import ContentMapping
from audience.domain.profile import Profile
from audience.domain.triggers import Population, TriggerRules
from audience.services.artifacts import LIVE_VALUE, Artifacts, live_document
from audience.services.documents import Documents
from audience.services.imports import Importing
from audience.services.placement import Tiers
from audience.services.profiles import apply_records
from audience.services.rescoring import Rescoring
from audience.services.scoring import LiveScoring
from tests.synthetic import NOW
from tests.unit.fakes import MemoryBucket, MemoryDeadLetters, MemoryPrivacy, MemoryProfiles, MemoryRegistry
from tests.unit.services.test_profiles_service import CURRENCIES, order, record
from tests.unit.services.test_scoring import active_model

RULES = {
    "rules": [
        {"id": "big-order", "kind": "order-at-least", "amount": 500, "within_days": 30},
        {"id": "big-spend", "kind": "revenue-in-window-at-least", "amount": 1000, "days": 30},
    ]
}


def live(bucket: MemoryBucket, rules: dict[str, object]) -> None:
    bucket.put_text("config/triggers.json", json.dumps(rules))
    assert Documents(bucket).accept("config/triggers.json", NOW).accepted


def test_a_high_value_order_moves_the_customer_at_once_with_the_rule_as_reason() -> None:
    bucket, registry = active_model()
    live(bucket, RULES)
    profiles = MemoryProfiles()
    scoring = LiveScoring(registry, bucket, min_dwell=timedelta(hours=1))
    apply_records([record(1, order("c1", 20))], profiles, MemoryDeadLetters(), CURRENCIES, NOW, scoring)
    assert profiles.items["c1"].tier is None
    profiles.items["c1"] = profiles.items["c1"].model_copy(update={"outbox": []})

    later = NOW + timedelta(minutes=5)  # within the dwell: only a trigger may move them
    apply_records([record(2, order("c1", 750))], profiles, MemoryDeadLetters(), CURRENCIES, later, scoring)

    moved = profiles.items["c1"]
    assert moved.tier is not None and (moved.tier.name, moved.tier.rule) == ("High Value", "big-order")
    assert moved.segment_history[-1].reason == "trigger:big-order"
    entered = [e.detail for e in moved.outbox if e.detail_type == "Audience Entered" and e.detail.kind == "tier"]
    assert [(d.segment_id, d.reason) for d in entered] == [("tier:high-value", "trigger:big-order")]
    assert "tier:high-value" in moved.segment_ids()

    writes = profiles.writes
    apply_records([record(2, order("c1", 750))], profiles, MemoryDeadLetters(), CURRENCIES, later, scoring)
    assert profiles.writes == writes  # the replay moves nobody


def test_a_customer_on_a_threshold_does_not_flap_within_the_dwell() -> None:
    rules = parse_document(TriggerRules, json.dumps(RULES))
    tiers, dwell = Tiers(rules), timedelta(hours=1)
    profile = Profile(customer_id="c1")
    entered = tiers.settled(_with_orders(profile, [Decimal(400)] * 3), NOW, dwell)
    assert entered.tier is not None and entered.tier.rule == "big-spend"

    refunded = _with_orders(profile, [Decimal(400)] * 2).model_copy(
        update={"tier": entered.tier, "segment_history": entered.segment_history}
    )
    assert tiers.settled(refunded, NOW + timedelta(minutes=30), dwell) is refunded  # held within the dwell
    left = tiers.settled(refunded, NOW + timedelta(hours=2), dwell)
    assert left.tier is None and left.segment_history[-1].reason == "trigger:big-spend no longer holds"
    assert [e.detail_type for e in left.outbox] == ["Audience Exited"]


def test_the_daily_rescore_ends_a_tier_whose_condition_lapsed() -> None:
    bucket, registry = active_model()
    live(bucket, RULES)
    profiles = MemoryProfiles()
    scoring = LiveScoring(registry, bucket)
    apply_records([record(1, order("c1", 600))], profiles, MemoryDeadLetters(), CURRENCIES, NOW, scoring)
    assert profiles.items["c1"].tier is not None

    rules = live_document(bucket, TriggerRules).get(NOW)
    Rescoring(profiles, Artifacts(bucket), registry).rescore(NOW + timedelta(days=10), rules=rules)
    assert profiles.items["c1"].tier is not None  # the order is still within 30 days
    Rescoring(profiles, Artifacts(bucket), registry).rescore(NOW + timedelta(days=40), rules=rules)
    ended = profiles.items["c1"]
    assert ended.tier is None
    exits = [c.reason for c in ended.segment_history if c.previous_tier and not c.tier]
    assert exits == ["trigger:big-order no longer holds"]


def test_a_bad_rules_file_is_refused_naming_rule_and_field_and_the_previous_stays() -> None:
    bucket = MemoryBucket()
    live(bucket, RULES)
    bad = {"rules": [{"id": "big-order", "kind": "order-at-least", "amount": -5}, {"id": "x", "kind": "nope"}]}
    bucket.put_text("config/triggers.json", json.dumps(bad))

    audit = MemoryPrivacy(MemoryProfiles())
    outcome = Documents(bucket, audit).accept("config/triggers.json", NOW)

    assert not outcome.accepted
    [entry] = audit.entries("config")
    assert (entry.action, entry.actor, entry.details["errors"]) == ("config.refused", "s3 upload config/triggers.json",
                                                                    outcome.errors)  # fmt: skip
    assert outcome.errors[0] == {
        "field": "rules[0] (id 'big-order').amount",
        "reason": "Input should be greater than 0",
    }
    assert outcome.errors[1]["field"] == "rules[1] (id 'x')" and "does not match" in outcome.errors[1]["reason"]
    assert json.loads(bucket.read_text(outcome.report_key) or "")["errors"] == outcome.errors
    assert live_document(bucket, TriggerRules).get(NOW).rules[0].amount == 500  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"rules": [{"id": "Bad Id", "kind": "engagement-drop", "inactive_days": 30}]}, "rules[0] (id 'Bad Id').id"),
        (
            {"rules": [{"id": "w", "kind": "revenue-in-window-at-least", "amount": 5, "days": 400}]},
            "rules[0] (id 'w').days",
        ),
        ({"rules": [{"id": "t", "kind": "top-monetary-percent", "percent": 1, "extra": 1}]}, "rules[0] (id 't').extra"),
        ({"rules": "all"}, "rules"),
    ],
)
def test_each_error_names_the_rule_and_the_field(document: object, field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_document(TriggerRules, json.dumps(document))
    assert [e.field for e in refused.value.errors] == [field]


def test_without_an_uploaded_document_the_shipped_defaults_apply() -> None:
    rules = live_document(MemoryBucket(), TriggerRules).get(NOW)
    assert [r.id for r in rules.rules] == ["high-value-order", "high-value-spend", "top-spender", "engagement-drop"]


def test_top_spenders_come_from_the_models_percentiles_and_silence_is_an_engagement_drop() -> None:
    rules = live_document(MemoryBucket(), TriggerRules).get(NOW)
    percentiles = [float(p) for p in range(1, 100)]  # the 99th percentile is 99
    spender = _with_orders(Profile(customer_id="c1"), [Decimal(120)], days_ago=200)
    assert Tiers(rules, Population(percentiles)).due(spender, NOW).rule == "top-spender"  # type: ignore[union-attr]
    assert Tiers(rules).due(spender, NOW) is None  # no model, no percentiles

    quiet = Profile(customer_id="c2", last_seen=NOW - timedelta(days=61), event_counts={"page": 12})
    assert Tiers(rules).due(quiet, NOW).name == "Win Back"  # type: ignore[union-attr]


def test_personalization_follows_the_mapping_and_consent() -> None:
    mapping = live_document(MemoryBucket(), ContentMapping).get(NOW)
    rules = parse_document(TriggerRules, json.dumps(RULES))
    vip = Tiers(rules).settled(_with_orders(Profile(customer_id="c1"), [Decimal(800)]), NOW)

    choice = mapping.choose(vip)
    assert (choice.personalized, choice.content.id, choice.segment_id) == (True, "vip-rewards", "tier:high-value")
    assert choice.reason == "trigger:big-order"

    refused = vip.consented({"personalization": False}, NOW, "api")
    choice = mapping.choose(refused)
    assert (choice.personalized, choice.content.id, choice.reason) == (
        False,
        "bestsellers",
        "no personalization consent",
    )


def _with_orders(profile: Profile, amounts: list[Decimal], days_ago: int = 1) -> Profile:
    profiles = MemoryProfiles()
    profiles.items[profile.customer_id] = profile
    at = (NOW - timedelta(days=days_ago)).isoformat()
    batch = [record(i, order(profile.customer_id, float(a), timestamp=at)) for i, a in enumerate(amounts, 1)]
    apply_records(batch, profiles, MemoryDeadLetters(), CURRENCIES, NOW)
    return profiles.items[profile.customer_id]


def test_an_unknown_document_is_refused() -> None:
    bucket = MemoryBucket()
    bucket.put_text("config/colours.json", "{}")
    outcome = Documents(bucket).accept("config/colours.json", NOW)
    assert not outcome.accepted and "unknown configuration 'colours'" in outcome.errors[0]["reason"]
    assert bucket.keys("live/") == []


def test_an_imported_high_value_order_enters_the_tier_at_import() -> None:
    bucket, profiles = MemoryBucket(), MemoryProfiles()
    live(bucket, RULES)
    day = (NOW - timedelta(days=2)).date().isoformat()
    rows = ["order_id,customer_id,date,total,currency", f"o1,big,{day},650,USD", f"o2,small,{day},20,USD"]
    bucket.put_text("imports/orders/recent.csv", "\n".join(rows) + "\n")

    importing = Importing(bucket, profiles, CURRENCIES, place=LiveScoring(MemoryRegistry(), bucket, segments=False))
    manifest = importing.run("imports/orders/recent.csv", NOW)

    assert manifest.loaded == 2
    assert profiles.items["big"].tier is not None and profiles.items["big"].tier.rule == "big-order"
    assert (
        profiles.items["small"].tier is None and profiles.items["big"].segments is None
    )  # the model waits for the rescore


VALUE_RULES = {
    "rules": [
        {"id": "high-value-at-risk", "kind": "all", "tier": "High value at risk",
         "conditions": [{"kind": "clv-top-percent", "percent": 50}, {"kind": "churn-risk-at-least", "risk": 0.6}]},
        {"id": "churning", "kind": "churn-risk-at-least", "risk": 0.6},
    ]
}  # fmt: skip


def test_an_order_rescores_the_predictions_and_predictive_rules_tier_the_customer() -> None:
    from audience.value.spec import PurchaseModel, SpendModel
    from tests.unit.value.test_value_product import spec_for

    bucket, registry, profiles = MemoryBucket(), MemoryRegistry(), MemoryProfiles()
    value = spec_for(
        PurchaseModel(kind="bgnbd", r=0.8, alpha=40, a=0.3, b=5), SpendModel(p=2.2, q=3.6, v=490, mean=414.6)
    )
    value = value.model_copy(update={"clv_percentiles": [4.6 * i for i in range(1, 100)]})  # the median buyer: 230
    bucket.put_text(LIVE_VALUE, value.model_dump_json())
    live(bucket, VALUE_RULES)
    scoring = LiveScoring(registry, bucket)
    at = (NOW - timedelta(days=60)).isoformat()
    apply_records([record(1, order("c1", 300, timestamp=at)), record(2, order("c2", 20, timestamp=at))], profiles,
                  MemoryDeadLetters(), CURRENCIES, NOW - timedelta(days=60), scoring)  # fmt: skip
    first = profiles.items["c1"].predictions
    assert first is not None and first.as_of == NOW - timedelta(days=60) and first.model_version == "v"
    assert profiles.items["c1"].tier is None  # a new customer is not at risk

    apply_records([record(3, order("c1", 400))], profiles, MemoryDeadLetters(), CURRENCIES, NOW, scoring)
    second = profiles.items["c1"].predictions
    assert second is not None and second.as_of == NOW and second.moved(first)  # the order changed them

    later = NOW + timedelta(days=400)  # a year of silence: the daily rescore finds the risk
    assert Rescoring(profiles, Artifacts(bucket), registry).rescore(later) == 2
    c1, c2 = profiles.items["c1"], profiles.items["c2"]
    assert c1.predictions is not None and c1.predictions.churn_risk >= 0.6
    assert c1.tier is not None and (c1.tier.name, c1.tier.rule) == ("High value at risk", "high-value-at-risk")
    assert c1.segment_history[-1].reason == "trigger:high-value-at-risk"
    assert c2.tier is not None and c2.tier.rule == "churning"  # at risk, but not among the top half by value
    assert Rescoring(profiles, Artifacts(bucket), registry).rescore(later) == 0  # nothing moved since


def test_predictive_rules_are_checked_like_the_others() -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_document(TriggerRules, json.dumps({"rules": [{"kind": "churn-risk-at-least", "risk": 1.5, "id": "x"}]}))
    assert [(e.field, e.reason) for e in refused.value.errors] == [
        ("rules[0] (id 'x').risk", "Input should be less than or equal to 1")
    ]
    with pytest.raises(InvalidInput, match="every rule needs an id"):
        parse_document(TriggerRules, json.dumps({"rules": [{"kind": "p-alive-below", "probability": 0.2}]}))
    assert Tiers(TriggerRules.model_validate(VALUE_RULES)).due(Profile(customer_id="c1"), NOW) is None


def test_an_unreadable_value_model_in_force_never_stops_the_events() -> None:

    bucket = MemoryBucket()
    bucket.put_text(LIVE_VALUE, json.dumps({"version": "from-another-release"}))
    profiles = MemoryProfiles()
    apply_records([record(1, order("c1", 20))], profiles, MemoryDeadLetters(), CURRENCIES, NOW,
                  LiveScoring(MemoryRegistry(), bucket))  # fmt: skip
    assert profiles.items["c1"].orders == 1 and profiles.items["c1"].predictions is None


ENGAGED = {"id": "engaged", "kind": "engaged-visitor", "days": 7, "min_page_views": 3, "min_seconds": 60,
           "tier": "Engaged", "description": "3 page views and a minute on the site in the last 7 days"}  # fmt: skip


def test_an_engaged_visitor_rule_reads_the_page_behaviour_of_its_window_and_the_explanation_shows_it() -> None:
    from audience.services.explain import explain
    from tests.unit.domain.test_profile import BROWSING, folded

    bucket = MemoryBucket()
    live(bucket, {"rules": [ENGAGED]})  # checked on upload like the others
    rules = live_document(bucket, TriggerRules).get(NOW)
    visitor = folded(BROWSING)  # 4 page views and 3,695 s on 2026-11-20, three days before NOW

    assert rules.tier(visitor, NOW).name == "Engaged"  # type: ignore[union-attr]
    assert rules.tier(visitor, NOW + timedelta(days=5)) is None  # the views left the 7-day window
    assert rules.tier(folded(BROWSING[:3]), NOW) is None  # one page view only
    told = explain(visitor, None, rules, None, NOW)
    [check] = told.rules
    assert check.holds and check.compared == {"days": 7, "pageViews": 4, "minPageViews": 3, "secondsOnSite": 3695,
                                              "minSeconds": 60}  # fmt: skip
    assert told.model_dump(by_alias=True)["browsing"]["30d"] == {
        "pageViews": 4, "sessions": 3, "secondsOnSite": 3695, "clicks": 1, "maxScrollDepth": 75}  # fmt: skip


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ({"id": "e", "kind": "engaged-visitor", "days": 30}, "rules[0] (id 'e')"),  # no threshold
        ({"id": "e", "kind": "engaged-visitor", "days": 120, "min_sessions": 2}, "rules[0] (id 'e').days"),
        ({"id": "e", "kind": "engaged-visitor", "min_scroll_depth": 150}, "rules[0] (id 'e').min_scroll_depth"),
    ],
)
def test_an_engaged_visitor_rule_needs_a_threshold_within_bounds(rule: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_document(TriggerRules, json.dumps({"rules": [rule]}))
    assert [e.field for e in refused.value.errors] == [field]

"""The console's rule builder: a trigger rules document tried on the current profiles (counts
per tier, now and after; every rule's), refused with every failing field as an upload would
be, and saved through the config function's own checks."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from audience.domain.errors import InvalidInput
from audience.domain.profile import DayTotals, LedgerEntry, Profile
from audience.domain.segments import Tier
from audience.services.documents import RuleBuilder, checked
from audience.services.rule_builder import preview
from tests.unit.fakes import MemoryBucket, MemoryPrivacy, MemoryProfiles

NOW = datetime(2026, 12, 3, tzinfo=UTC)
BIG = {"id": "big-order", "kind": "order-at-least", "amount": 300, "within_days": 30, "tier": "Big Orders"}


def spender(n: int, amount: int, tier: str | None = None) -> Profile:
    day = (NOW - timedelta(days=3)).date()
    return Profile(customer_id=f"c{n}", orders=1, revenue=Decimal(amount), first_order_at=NOW - timedelta(days=3),
                   last_order_at=NOW - timedelta(days=3), daily={day: DayTotals(orders=1, revenue=Decimal(amount))},
                   ledger={f"o{n}": LedgerEntry(Decimal(amount), day)},
                   tier=Tier(name=tier, rule="old", since=NOW) if tier else None)  # fmt: skip


def test_a_preview_counts_each_tier_now_and_after_and_who_enters_and_leaves() -> None:
    profiles = MemoryProfiles()
    for i, (amount, tier) in enumerate([(500, None), (400, "High Value"), (100, "High Value"), (50, None)]):
        profiles.save(spender(i, amount, tier))
    rules = checked({"rules": [BIG]}, MemoryBucket(), NOW)
    shown = preview(rules, profiles, None, None, population=None, now=NOW)
    tiers = {t.tier: t for t in shown.tiers}
    assert shown.read == 4 and shown.exact
    assert (tiers["Big Orders"].now, tiers["Big Orders"].after, tiers["Big Orders"].entering) == (0, 2, 2)
    assert (tiers["High Value"].now, tiers["High Value"].after, tiers["High Value"].leaving) == (2, 0, 2)
    assert [(r.id, r.holds, r.decides) for r in shown.rules] == [("big-order", 2, 2)]

    sampled = preview(rules, profiles, None, None, population=400, now=NOW, sample=2)
    assert not sampled.exact and sampled.read == 2 and sum(t.estimated for t in sampled.tiers) % 200 == 0


def test_a_document_is_refused_as_an_upload_is_and_saved_through_the_config_functions_checks() -> None:
    with pytest.raises(InvalidInput) as refused:
        checked({"rules": [{**BIG, "amount": -1}]}, MemoryBucket(), NOW)
    assert refused.value.errors[0].field.startswith("rules[0] (id 'big-order')")
    bucket, audit = MemoryBucket(), MemoryPrivacy(MemoryProfiles())
    saved = RuleBuilder(bucket, audit).save({"rules": [BIG]}, NOW, "api-key:k1")
    assert saved.accepted and saved.in_force["rules"][0]["id"] == "big-order"
    assert json.loads(bucket.read_text("live/triggers.json") or "{}")["rules"][0]["tier"] == "Big Orders"
    assert audit.entries("config")[-1].actor == "api-key:k1"


def test_a_tier_may_not_bear_a_segments_or_an_rfm_cells_name() -> None:
    with pytest.raises(InvalidInput) as refused:
        checked({"rules": [{**BIG, "tier": "Champions"}]}, MemoryBucket(), NOW)
    assert "one name, one group" in refused.value.errors[0].reason


def test_a_timeline_lists_orders_moves_exposures_and_consent_newest_first() -> None:
    from audience.domain.profile import ConsentState, Exposure
    from audience.domain.segments import SegmentChange
    from audience.services.timeline import timeline

    profile = spender(1, 120).model_copy(update={
        "first_seen": NOW - timedelta(days=10),
        "segment_history": [SegmentChange(at=NOW - timedelta(days=2), reason="model v1", segment="First-time Buyers")],
        "exposures": {"demo-offer": Exposure("offer", None, NOW - timedelta(days=1), NOW)},
        "consent": {"marketing": ConsentState(False, NOW, "console")},
    })  # fmt: skip
    shown = timeline(profile, "EUR").entries
    assert [e.kind for e in shown] == ["consent", "exposure", "move", "orders", "seen"]
    assert shown[0].summary == "marketing refused (console)" and shown[3].summary == "1 order, 120.00 EUR"
    assert "segment: none → First-time Buyers (model v1)" in shown[2].summary

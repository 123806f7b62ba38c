"""Segment events: what a move publishes, consent, the outbox (never lost, at least once), the
published schema, and the dwell rule."""

from __future__ import annotations

import json
from datetime import timedelta

from audience.domain.money import Currencies
from audience.domain.profile import Profile
from audience.domain.segments import SegmentEventDetail, Segments, events_for
from audience.services.profiles import apply_records
from audience.services.scoring import LiveScoring
from audience.services.segment_events import PublishingProfiles
from tests.conftest import ROOT
from tests.synthetic import NOW
from tests.unit.fakes import MemoryBus, MemoryDeadLetters, MemoryProfiles
from tests.unit.services.test_profiles_service import order, record
from tests.unit.services.test_scoring import active_model


def place(name: str, rfm: str, at_minutes: int = 0) -> Segments:
    return Segments(model_version="v1", segment=0, name=name, rfm=rfm, assigned_at=NOW + timedelta(minutes=at_minutes))


def test_a_first_placement_enters_and_a_move_exits_then_enters_per_changed_dimension() -> None:
    first = Profile(customer_id="c1").placed(place("recent", "Champions"), "model v1")
    assert [(e.detail_type, e.detail.segment_id, e.detail.previous_segment) for e in first.outbox] == [
        ("Audience Entered", "learned:recent", None),
        ("Audience Entered", "rfm:champions", None),
    ]
    moved = first.model_copy(update={"outbox": []}).placed(place("lapsed", "Champions", 5), "time-based rescore")
    assert [(e.detail_type, e.detail.segment_name, e.detail.previous_segment) for e in moved.outbox] == [
        ("Audience Exited", "recent", "lapsed"),
        ("Audience Entered", "lapsed", "recent"),
    ]
    detail = moved.outbox[1].detail
    assert (detail.reason, detail.model_version, detail.customer_id) == ("time-based rescore", "v1", "c1")
    again = events_for("c1", moved.segment_history[-1])
    assert [e.detail.idempotency_key for e in again] == [e.detail.idempotency_key for e in moved.outbox]


def test_no_events_for_a_customer_without_personalization_consent() -> None:
    refused = Profile(customer_id="c1").consented({"personalization": False}, NOW, "api")
    placed = refused.placed(place("recent", "Champions"), "model v1")
    assert placed.segments is not None and placed.outbox == []


def test_events_go_out_after_the_write_and_a_refused_one_goes_out_with_the_next_write() -> None:
    memory, bus = MemoryProfiles(), MemoryBus(refuse=1)
    profiles = PublishingProfiles(memory, bus)
    profiles.save(Profile(customer_id="c1").placed(place("recent", "Champions"), "model v1"))
    assert len(bus.events) == 1 and len(memory.items["c1"].outbox) == 2  # one refused: both kept

    bus.refuse = 0
    stored = memory.items["c1"]
    profiles.save(stored.placed(place("lapsed", "Champions", 5), "rescore"))
    assert [e.detail_type for e in bus.events] == ["Audience Entered"] * 3 + ["Audience Exited", "Audience Entered"]
    assert memory.items["c1"].outbox == [] and memory.items["c1"].version == stored.version + 2  # write, then clear


def test_the_published_schema_is_the_models() -> None:
    published = json.loads((ROOT / "docs" / "schemas" / "segment-event.json").read_text())
    assert published == SegmentEventDetail.model_json_schema(by_alias=True)


def test_the_stream_publishes_a_move_once_and_a_replay_publishes_nothing() -> None:
    bucket, registry = active_model()
    memory, bus = MemoryProfiles(), MemoryBus()
    profiles = PublishingProfiles(memory, bus)
    batch = [record(1, order("c9", 300, messageId="m-1"))]
    apply_records(batch, profiles, MemoryDeadLetters(), Currencies("USD"), NOW, LiveScoring(registry, bucket))
    assert {e.detail_type for e in bus.events} == {"Audience Entered"} and len(bus.events) == 2
    assert all(e.detail.reason == "profile updated" for e in bus.events)
    apply_records(batch, profiles, MemoryDeadLetters(), Currencies("USD"), NOW, LiveScoring(registry, bucket))
    assert len(bus.events) == 2 and memory.items["c9"].outbox == []


def test_a_customer_placed_moments_ago_is_not_moved_by_an_event() -> None:
    bucket, registry = active_model()
    scoring = LiveScoring(registry, bucket, min_dwell=timedelta(minutes=60))
    recent = Profile(customer_id="c1", segments=place("nowhere", "Hibernating", at_minutes=-10))
    assert scoring(recent, NOW) is recent
    settled = Profile(customer_id="c1", segments=place("nowhere", "Hibernating", at_minutes=-61))
    assert scoring(settled, NOW).segments != settled.segments

"""apply_records with in-memory fakes: cost, identity, idempotency, conflicts and failures."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from audience.domain.errors import ConcurrentUpdate, TransientError
from audience.domain.events import message_to_json, parse_request
from audience.domain.money import Currencies
from audience.domain.profile import Profile, StreamPosition
from audience.services.profiles import StreamRecord, apply_records, get_profile
from audience.services.unit_of_work import CONFLICT_RETRIES
from tests.unit.fakes import MemoryDeadLetters, MemoryProfiles

NOW = datetime(2026, 11, 23, tzinfo=UTC)
SHARD = "shardId-000000000000"
CURRENCIES = Currencies("USD", {"EUR": Decimal("1.1")})


def record(sequence: int, body: dict[str, Any] | bytes, key: str | None = None) -> StreamRecord:
    if isinstance(body, bytes):
        return StreamRecord(str(sequence), StreamPosition(SHARD, key or "k", sequence), body)
    message = parse_request(body, NOW, CURRENCIES)[0]
    return StreamRecord(
        str(sequence), StreamPosition(SHARD, key or message.customer_id, sequence), message_to_json(message)
    )


ORDER_IDS = itertools.count()


def order(customer: str, total: float, **extra: Any) -> dict[str, Any]:
    """An order with its own id: identical payloads without a messageId are one message (a retry)."""
    properties = {"total": total, "order_id": f"o-{next(ORDER_IDS)}"}
    return {"type": "track", "userId": customer, "event": "Order Completed", "properties": properties, **extra}


def apply(records: list[StreamRecord], profiles: MemoryProfiles, dead: MemoryDeadLetters | None = None) -> Any:
    return apply_records(records, profiles, dead or MemoryDeadLetters(), CURRENCIES, NOW)


def test_one_batch_read_and_one_write_per_customer_touched() -> None:
    profiles = MemoryProfiles()
    outcome = apply([record(i, order(f"c{i % 3}", 10)) for i in range(1, 10)], profiles)

    assert (profiles.batch_reads, profiles.reads, profiles.writes) == (1, 0, 3)
    assert outcome.processed == 9 and outcome.profiles_updated == 3 and outcome.failed_item_ids == []
    assert {c: p.orders for c, p in profiles.items.items()} == {"c0": 3, "c1": 3, "c2": 3}


def test_a_poison_record_goes_to_the_dead_letter_queue_and_the_rest_are_applied() -> None:
    profiles, dead = MemoryProfiles(), MemoryDeadLetters()
    outcome = apply([record(1, order("c1", 5)), record(2, b"\x00not json"), record(3, order("c1", 7))], profiles, dead)

    assert outcome.rejected == 1 and outcome.failed_item_ids == []
    [(reason, payload)] = dead.sent
    assert "invalid" in reason and payload["sequenceNumber"] == "2" and "not json" in payload["data"]
    assert profiles.items["c1"].orders == 2


def test_the_same_batch_three_times_gives_identical_profiles() -> None:
    profiles = MemoryProfiles()
    records = [record(i, order(f"c{i % 4}", i)) for i in range(1, 20)]
    apply(records, profiles)
    snapshot = {k: v.model_copy() for k, v in profiles.items.items()}

    for _ in range(2):
        outcome = apply(records, profiles)
        assert outcome.duplicates == len(records) and outcome.profiles_updated == 0

    assert profiles.items == snapshot


def test_a_repeated_message_id_in_a_new_record_changes_nothing() -> None:
    profiles = MemoryProfiles()
    sent = order("c1", 5, messageId="m-1")
    apply([record(1, sent), record(2, {**sent, "type": "page", "messageId": "p-1"})], profiles)
    outcome = apply([record(3, sent), record(4, {**sent, "type": "page", "messageId": "p-1"})], profiles)
    assert outcome.duplicates == 2 and profiles.items["c1"].orders == 1
    assert profiles.items["c1"].event_counts == {"track": 1, "page": 1}


def test_anonymous_history_merges_into_the_known_customer_once() -> None:
    profiles = MemoryProfiles()
    apply(
        [
            record(1, {"type": "page", "anonymousId": "a1", "name": "Home"}),
            record(2, {"type": "track", "anonymousId": "a1", "event": "Product Added"}),
        ],
        profiles,
    )
    assert profiles.items["a1"].event_counts == {"page": 1, "track": 1}

    identify = record(
        3, {"type": "identify", "userId": "u1", "anonymousId": "a1", "traits": {"email": "a@example.com"}}
    )
    outcome = apply([identify, record(4, order("u1", 30))], profiles)

    assert outcome.merges == 1
    assert profiles.items["a1"].merged_into == "u1"
    user = profiles.items["u1"]
    assert user.event_counts == {"page": 1, "track": 2, "identify": 1} and user.orders == 1
    assert user.identities == ["a1", "u1"] and user.known
    # idempotent: the same records again merge nothing and count nothing twice
    again = apply([identify, record(4, order("u1", 30))], profiles)
    assert again.merges == 0 and profiles.items["u1"] == user
    # later anonymous-only events find the customer; the API follows the redirect
    apply([record(5, {"type": "page", "anonymousId": "a1", "name": "Sale"})], profiles)
    assert profiles.items["u1"].event_counts["page"] == 2
    assert get_profile("a1", profiles).customer_id == "u1"


def test_an_anonymous_id_first_seen_with_its_user_gets_a_redirect() -> None:
    profiles = MemoryProfiles()
    apply([record(1, {"type": "identify", "userId": "u1", "anonymousId": "a1"})], profiles)
    assert profiles.items["a1"].merged_into == "u1" and "a1" in profiles.items["u1"].identities
    apply([record(2, {"type": "track", "anonymousId": "a1", "event": "Cart Viewed"})], profiles)
    assert profiles.items["u1"].track_counts == {"Cart Viewed": 1}


def test_alias_merges_an_old_user_id_into_the_new_one() -> None:
    profiles = MemoryProfiles()
    apply([record(1, order("old", 10)), record(2, order("new", 20))], profiles)
    apply([record(3, {"type": "alias", "previousId": "old", "userId": "new"})], profiles)
    assert profiles.items["old"].merged_into == "new"
    assert profiles.items["new"].orders == 2 and profiles.items["new"].revenue == Decimal(30)


def test_two_known_users_are_never_merged_through_a_shared_device() -> None:
    profiles = MemoryProfiles()
    apply(
        [record(1, {"type": "identify", "userId": "u1", "anonymousId": "device"}), record(2, order("u1", 10))], profiles
    )
    apply([record(3, {"type": "identify", "userId": "u2", "anonymousId": "device"})], profiles)
    assert profiles.items["u1"].merged_into is None and profiles.items["u1"].orders == 1
    assert profiles.items["device"].merged_into == "u2"  # the device's next anonymous events are u2's


def test_a_merge_in_one_batch_is_the_same_as_across_batches() -> None:
    events = [
        {"type": "page", "anonymousId": "a1"},
        {"type": "track", "anonymousId": "a1", "event": "Product Viewed"},
        {"type": "identify", "userId": "u1", "anonymousId": "a1"},
        order("u1", 12.5),
        {"type": "page", "anonymousId": "a1"},
    ]
    records = [record(i, e) for i, e in enumerate(events, start=1)]
    together, apart = MemoryProfiles(), MemoryProfiles()
    apply(records, together)
    for r in records:
        apply([r], apart)
    skip = {"version", "applied", "seen"}
    assert together.items["u1"].model_dump(exclude=skip) == apart.items["u1"].model_dump(exclude=skip)


def test_a_concurrent_writer_loses_no_update() -> None:
    profiles = MemoryProfiles()
    apply([record(1, order("c1", 5))], profiles)

    class Interleaved(MemoryProfiles):
        """Another container writes the same customer between our read and our write, once."""

        def __init__(self, inner: MemoryProfiles) -> None:
            self.__dict__ = inner.__dict__
            self.interfered = False

        def save(self, profile: Profile, retired: Any = ()) -> None:
            if not self.interfered:
                self.interfered = True
                other = self.items["c1"]
                super().save(other.model_copy(update={"orders": other.orders + 1}))
            super().save(profile, retired)

    racing = Interleaved(profiles)
    outcome = apply([record(2, order("c1", 7))], racing)

    assert outcome.conflicts == 1 and outcome.failed_item_ids == []
    assert profiles.items["c1"].orders == 3  # ours, the rival's, and the first


def test_throttled_writes_are_retried_until_every_event_is_applied_exactly_once() -> None:
    rng = random.Random(3)

    class Throttled(MemoryProfiles):
        def save(self, profile: Profile, retired: Any = ()) -> None:
            if rng.random() < 0.3:
                raise TransientError("ProvisionedThroughputExceededException")
            super().save(profile, retired)

    profiles = Throttled()
    records = [record(i, order(f"c{i % 7}", 1)) for i in range(1, 200)]
    pending, deliveries = records, 0
    while pending:  # what Lambda does with batchItemFailures: re-deliver from the first failure
        deliveries += 1
        failed = set(apply(pending, profiles).failed_item_ids)
        first = next((i for i, r in enumerate(pending) if r.item_id in failed), None)
        pending = [] if first is None else pending[first:]
    assert deliveries > 1
    assert sum(p.orders for p in profiles.items.values()) == 199


def test_conflicts_beyond_the_retry_budget_are_reported_for_retry() -> None:
    class AlwaysConflicting(MemoryProfiles):
        def save(self, profile: Profile, retired: Any = ()) -> None:
            raise ConcurrentUpdate(profile.customer_id)

    outcome = apply([record(1, order("c1", 1))], AlwaysConflicting())
    assert outcome.failed_item_ids == ["1"] and outcome.conflicts == CONFLICT_RETRIES + 1


def test_an_order_in_a_currency_without_a_rate_goes_to_the_dead_letter_queue() -> None:
    message = parse_request(order("c1", 5, properties={"total": 5, "currency": "EUR"}), NOW, CURRENCIES)[0]
    stale = StreamRecord("1", StreamPosition(SHARD, "c1", 1), message_to_json(message))
    dead = MemoryDeadLetters()
    outcome = apply_records([stale], MemoryProfiles(), dead, Currencies("USD", {}), NOW)
    assert outcome.rejected == 1 and "no exchange rate from EUR" in dead.sent[0][0]

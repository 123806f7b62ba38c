"""apply_records with in-memory fakes of the repository and the dead-letter queue."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from audience.domain.errors import ConcurrentUpdate, TransientError
from audience.domain.events import message_to_json, parse_request
from audience.domain.profile import Profile, StreamPosition
from audience.services.profiles import CONFLICT_RETRIES, StreamRecord, apply_records

NOW = datetime(2026, 11, 23, tzinfo=UTC)
SHARD = "shardId-000000000000"


class MemoryProfiles:
    def __init__(self) -> None:
        self.items: dict[str, Profile] = {}
        self.reads = self.batch_reads = self.writes = 0

    def get(self, customer_id: str) -> Profile | None:
        self.reads += 1
        return self.items.get(customer_id)

    def get_many(self, customer_ids: Iterable[str]) -> Mapping[str, Profile]:
        self.batch_reads += 1
        return {c: self.items[c] for c in customer_ids if c in self.items}

    def save(self, profile: Profile) -> None:
        stored = self.items.get(profile.customer_id)
        if (stored.version if stored else 0) != profile.version:
            raise ConcurrentUpdate(profile.customer_id)
        self.writes += 1
        self.items[profile.customer_id] = profile.model_copy(update={"version": profile.version + 1})


class MemoryDeadLetters:
    def __init__(self) -> None:
        self.sent: list[tuple[str, Mapping[str, Any]]] = []

    def send(self, reason: str, payload: Mapping[str, Any]) -> None:
        self.sent.append((reason, payload))


def record(sequence: int, body: dict[str, Any] | bytes) -> StreamRecord:
    data = body if isinstance(body, bytes) else message_to_json(parse_request(body, NOW)[0])
    return StreamRecord(str(sequence), StreamPosition(SHARD, sequence), data)


def order(customer: str, total: float) -> dict[str, Any]:
    return {"type": "track", "userId": customer, "event": "Order Completed", "properties": {"total": total}}


def test_one_batch_read_and_one_write_per_customer_touched() -> None:
    profiles, dead = MemoryProfiles(), MemoryDeadLetters()
    records = [record(i, order(f"c{i % 3}", 10)) for i in range(1, 10)]

    outcome = apply_records(records, profiles, dead)

    assert (profiles.batch_reads, profiles.reads, profiles.writes) == (1, 0, 3)
    assert outcome.processed == 9 and outcome.profiles_updated == 3 and outcome.failed_item_ids == []
    assert {c: p.orders for c, p in profiles.items.items()} == {"c0": 3, "c1": 3, "c2": 3}


def test_an_undecodable_record_goes_to_the_dead_letter_queue_and_the_rest_are_applied() -> None:
    profiles, dead = MemoryProfiles(), MemoryDeadLetters()
    outcome = apply_records(
        [record(1, order("c1", 5)), record(2, b"\x00not json"), record(3, order("c1", 7))], profiles, dead
    )

    assert outcome.rejected == 1 and outcome.failed_item_ids == []
    [(reason, payload)] = dead.sent
    assert "invalid" in reason and payload["position"] == "2" and "not json" in payload["data"]
    assert profiles.items["c1"].orders == 2


def test_a_replayed_batch_writes_nothing() -> None:
    profiles, dead = MemoryProfiles(), MemoryDeadLetters()
    records = [record(1, order("c1", 5)), record(2, order("c2", 7))]
    apply_records(records, profiles, dead)
    writes = profiles.writes

    outcome = apply_records(records, profiles, dead)

    assert profiles.writes == writes and outcome.profiles_updated == 0
    assert profiles.items["c1"].orders == 1


def test_a_concurrent_writer_loses_no_update() -> None:
    profiles, dead = MemoryProfiles(), MemoryDeadLetters()
    apply_records([record(1, order("c1", 5))], profiles, dead)

    class Interleaved(MemoryProfiles):
        """Another container writes the same customer between our read and our write, once."""

        def __init__(self, inner: MemoryProfiles) -> None:
            self.__dict__ = inner.__dict__
            self.interfered = False

        def save(self, profile: Profile) -> None:
            if not self.interfered:
                self.interfered = True
                other = self.items["c1"]
                rival = other.model_copy(
                    update={"orders": other.orders + 1, "applied": {**other.applied, "shard-b": 1}}
                )
                super().save(rival)
            super().save(profile)

    racing = Interleaved(profiles)
    outcome = apply_records([record(2, order("c1", 7))], racing, dead)

    assert outcome.conflicts == 1 and outcome.failed_item_ids == []
    assert profiles.items["c1"].orders == 3  # ours, the rival's, and the first


def test_a_customer_whose_write_keeps_failing_is_retried_alone() -> None:
    class Flaky(MemoryProfiles):
        def save(self, profile: Profile) -> None:
            if profile.customer_id == "bad":
                raise TransientError("throttled")
            super().save(profile)

    profiles, dead = Flaky(), MemoryDeadLetters()
    outcome = apply_records(
        [record(1, order("good", 1)), record(2, order("bad", 2)), record(3, order("bad", 3))], profiles, dead
    )

    assert outcome.failed_item_ids == ["2", "3"]
    assert profiles.items["good"].orders == 1 and "bad" not in profiles.items


def test_conflicts_beyond_the_retry_budget_are_reported_for_retry() -> None:
    class AlwaysConflicting(MemoryProfiles):
        def save(self, profile: Profile) -> None:
            raise ConcurrentUpdate(profile.customer_id)

    profiles = AlwaysConflicting()
    outcome = apply_records([record(1, order("c1", 1))], profiles, MemoryDeadLetters())
    assert outcome.failed_item_ids == ["1"] and outcome.conflicts == CONFLICT_RETRIES + 1


def test_dead_letter_payload_is_json() -> None:
    dead = MemoryDeadLetters()
    apply_records([record(1, b'{"type": "track"}')], MemoryProfiles(), dead)
    json.dumps(dead.sent[0][1])

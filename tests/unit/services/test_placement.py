"""The retrain's placement: an update of only what placing changes (never the whole item), a
batch's segment events ten to a PutEvents request, refused events kept in their outbox, a lost
answer counted once and a lost race placed again from a fresh read. The DynamoDB and
EventBridge adapters run against recording stand-ins of their boto3 clients (no AWS)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from audience.adapters import eventbridge, table
from audience.adapters.dynamodb import DynamoProfileRepository
from audience.adapters.eventbridge import PUT_EVENTS_BYTES, EventBridgeSegmentEvents, entry_size
from audience.adapters.profile_items import BOOKKEEPING, DESERIALIZER, PLACEMENT_FIELDS, to_item, to_items
from audience.domain.profile import Profile
from audience.domain.segments import SegmentChange, Segments, Tier, events_for
from audience.ports import ProfileRepository
from audience.services.artifacts import Artifacts
from audience.services.rescoring import Rescoring
from audience.services.segment_events import PublishingProfiles
from tests.synthetic import NOW, customers
from tests.unit.fakes import MemoryBucket, MemoryProfiles, MemoryRegistry
from tests.unit.services.test_scoring import active_model

PLACE = Segments(model_version="v1", segment=1, name="Loyal", rfm="Champions", r=5, f=4, m=3, assigned_at=NOW)
INDEX_KEYS = {"gsi1pk", "gsi2pk", "gsi3pk"}


class RecordingDynamo:
    """The DynamoDB client as the profile repository calls it: every request kept; a write to
    an id in ``moved`` fails its condition, as when another writer got there first."""

    def __init__(self, moved: Sequence[str] = ()) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.moved = set(moved)
        self.stored: dict[str, list[dict[str, Any]]] = {}  # customer id -> its items

    def query(self, **request: Any) -> dict[str, Any]:
        return {
            "Items": self.stored.get(request["ExpressionAttributeValues"][":pk"]["S"].removeprefix("CUSTOMER#"), [])
        }

    def update_item(self, **request: Any) -> dict[str, Any]:
        self.calls.append(("update_item", request))
        if request["Key"]["pk"]["S"].removeprefix("CUSTOMER#") in self.moved:
            error = {"Error": {"Code": "ConditionalCheckFailedException", "Message": "The conditional request failed"}}
            raise ClientError(error, "UpdateItem")  # type: ignore[arg-type]
        return {"ConsumedCapacity": {"CapacityUnits": 2.0}}

    def put_item(self, **request: Any) -> dict[str, Any]:
        self.calls.append(("put_item", request))
        return {}


class RecordingBus:
    """EventBridge's PutEvents: every request kept; entries of a customer in ``refuse`` fail."""

    def __init__(self, refuse: Sequence[str] = ()) -> None:
        self.requests: list[list[dict[str, str]]] = []
        self.refuse = set(refuse)

    def put_events(self, Entries: list[dict[str, str]]) -> dict[str, Any]:  # noqa: N803 (boto3's name)
        assert len(Entries) <= 10 and sum(entry_size(e) for e in Entries) <= PUT_EVENTS_BYTES
        self.requests.append(Entries)
        failed = [any(f'"customerId": "{c}"' in e["Detail"] for c in self.refuse) for e in Entries]
        return {
            "FailedEntryCount": sum(failed),
            "Entries": [{"ErrorCode": "InternalFailure"} if f else {"EventId": "id"} for f in failed],
        }


def rescore(profiles: ProfileRepository, bucket: MemoryBucket, registry: MemoryRegistry) -> int:
    return Rescoring(profiles, Artifacts(bucket), registry).rescore(NOW)


@pytest.fixture
def dynamo(monkeypatch: pytest.MonkeyPatch) -> RecordingDynamo:
    recording = RecordingDynamo()
    monkeypatch.setattr(table, "client", lambda service: recording)
    return recording


@pytest.fixture
def bus(monkeypatch: pytest.MonkeyPatch) -> RecordingBus:
    recording = RecordingBus()
    monkeypatch.setattr(eventbridge, "client", lambda service: recording)
    monkeypatch.setattr(eventbridge.time, "sleep", lambda seconds: None)
    return recording


@pytest.fixture(scope="module")
def model() -> tuple[MemoryBucket, MemoryRegistry]:
    return active_model()


def applied(item: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    """``item`` after ``request``'s update, as DynamoDB applies the forms the placement uses
    (``SET #a = :a``, ``SET #version = #version + :one``, ``REMOVE #a``)."""
    names, values = request["ExpressionAttributeNames"], request["ExpressionAttributeValues"]
    sets, _, removes = request["UpdateExpression"].removeprefix("SET ").partition(" REMOVE ")
    result = dict(item)
    for clause in sets.split(", "):
        target, value = clause.split(" = ")
        if value == "#version + :one":
            result["version"] = {"N": str(int(item["version"]["N"]) + 1)}
        else:
            result[names[target]] = values[value]
    for name in filter(None, removes.split(", ")):
        result.pop(names[name], None)
    return result


def bookkeeping(request: dict[str, Any]) -> dict[str, Any]:
    """The page bookkeeping a placement's update sets on the hot item."""
    values = request["ExpressionAttributeValues"]
    return {name: DESERIALIZER.deserialize(values[f":{name}"]) for name in BOOKKEEPING if f":{name}" in values}


def unplaced(n: int, seed: int = 7) -> MemoryProfiles:
    repository = MemoryProfiles()
    for p in customers(n, seed=seed)[0]:
        repository.items[p.customer_id] = p.model_copy(update={"version": 1, "segments": None, "tier": None})
    return repository


def test_a_placement_is_one_update_of_the_placement_attributes_and_leaves_the_item_as_a_put_would(
    dynamo: RecordingDynamo,
) -> None:
    [stored], _ = customers(1, seed=3)
    stored = stored.model_copy(update={"version": 4})
    placed = stored.placed(PLACE, "model v1").tiered(Tier(name="High Value", rule="big", since=NOW), "trigger:big", NOW)

    dynamo.stored[stored.customer_id] = to_items(stored)
    assert DynamoProfileRepository("profiles").place([placed]) == []

    *pages, (operation, request) = dynamo.calls
    assert operation == "update_item" and "Item" not in request
    assert request["ConditionExpression"] == "#version = :expected"
    assert request["ExpressionAttributeValues"][":expected"] == {"N": "4"}
    written = set(request["ExpressionAttributeNames"].values())
    aliases = {Profile.model_fields[f].alias or f for f in PLACEMENT_FIELDS}
    assert written <= aliases | INDEX_KEYS | {"version", *BOOKKEEPING} and {"segments", "tier", "outbox"} <= written
    assert not {"ledger", "daily", "identities", "products", "rfm"} & written  # the rest of the item is not sent
    moved = {**bookkeeping(request).get("pending", {}), **{a: v for _, p in pages for a, v in p["Item"].items()}}
    assert any(attribute.startswith("h:") for attribute in moved)  # the change, in pending or a new page
    assert all(op == "put_item" and "Item" in p and p["Item"]["sk"]["S"].startswith("PAGE#") for op, p in pages)
    hot = to_items(stored)[0]
    assert applied(hot, request) == to_item(placed.model_copy(update={"version": 5}), bookkeeping(request))


def test_what_a_placement_empties_is_removed_as_a_put_would_leave_it_out(dynamo: RecordingDynamo) -> None:
    [profile], _ = customers(1, seed=3)
    big = Tier(name="High Value", rule="big", since=NOW)
    stored = (
        profile.placed(PLACE, "model v1")
        .tiered(big, "trigger:big", NOW)
        .model_copy(update={"outbox": [], "version": 6})
    )
    refused = stored.consented({"personalization": False}, NOW, "api")
    left, quiet = (p.tiered(None, "trigger:big no longer holds", NOW + timedelta(days=1)) for p in (stored, refused))

    dynamo.stored[stored.customer_id] = to_items(stored)
    DynamoProfileRepository("profiles").place([left])
    dynamo.stored[refused.customer_id] = to_items(refused)
    DynamoProfileRepository("profiles").place([quiet])

    request, refused_request = (r for op, r in dynamo.calls if op == "update_item")
    after = applied(to_items(stored)[0], request)
    assert after == to_item(left.model_copy(update={"version": 7}), bookkeeping(request))
    assert "tier" not in after and "gsi3pk" not in after and {"gsi1pk", "gsi2pk"} <= set(after)  # out of the tier
    assert "REMOVE" in refused_request["UpdateExpression"] and quiet.outbox == []  # no events without consent
    after = applied(to_items(refused)[0], refused_request)
    expected = to_item(quiet.model_copy(update={"version": 7}), bookkeeping(refused_request))
    assert after == expected and not INDEX_KEYS & set(after)


def test_a_placement_whose_stored_version_moved_is_returned_and_the_others_written(dynamo: RecordingDynamo) -> None:
    profiles = [Profile(customer_id=c, version=2).placed(PLACE, "model v1") for c in ("a", "b", "c")]
    dynamo.moved = {"b"}
    repository = DynamoProfileRepository("profiles")

    assert repository.place(profiles) == ["b"]
    assert [(op, r["Key"]["sk"]["S"]) for op, r in dynamo.calls] == [("update_item", "PROFILE")] * 3


def test_a_batch_of_moved_customers_is_published_ten_events_to_a_request_then_their_outboxes_cleared(
    bus: RecordingBus, model: tuple[MemoryBucket, MemoryRegistry]
) -> None:
    memory = unplaced(37)
    before = {c: p.version for c, p in memory.items.items()}

    moved = rescore(PublishingProfiles(memory, EventBridgeSegmentEvents("segments")), *model)

    published = sum(len(request) for request in bus.requests)
    assert moved == 37 and published >= 2 * 37  # each first placement enters a learned and an RFM segment
    assert len(bus.requests) == math.ceil(published / 10)  # not one request per customer
    assert all(p.outbox == [] and p.segments is not None for p in memory.items.values())
    assert all(p.version == before[c] + 2 for c, p in memory.items.items())  # placed, then the outbox cleared
    assert memory.writes == 37


def test_events_the_bus_refuses_stay_in_their_customers_outbox(
    bus: RecordingBus, model: tuple[MemoryBucket, MemoryRegistry]
) -> None:
    memory = unplaced(12)
    refused = sorted(memory.items)[3]
    bus.refuse = {refused}

    assert rescore(PublishingProfiles(memory, EventBridgeSegmentEvents("segments")), *model) == 12

    kept = memory.items[refused]
    assert len(kept.outbox) >= 2 and kept.outbox == [e for m in kept.segment_history for e in events_for(refused, m)]
    assert all(p.outbox == [] for c, p in memory.items.items() if c != refused)
    assert len(bus.requests) == math.ceil(sum(len(r) for r in bus.requests[:-2]) / 10) + 2  # two retries of its own
    assert all(refused in r[0]["Detail"] for r in bus.requests[-2:])


def test_a_request_holds_at_most_256_kb_of_entries(bus: RecordingBus) -> None:
    change = SegmentChange(at=NOW, reason="x" * 60_000, segment="Loyal", rfm="Champions")
    events = [e for c in range(5) for e in events_for(f"c{c}", change)]  # 10 events of ~60 KB

    assert EventBridgeSegmentEvents("segments").publish(events) == []
    assert [len(r) for r in bus.requests] == [4, 4, 2]


class LosesAnswers(MemoryProfiles):
    """The update of every id in ``lose`` lands, but the client hears a conflict (its answer was
    lost and botocore's retry failed the condition)."""

    def __init__(self, lose: set[str]) -> None:
        super().__init__()
        self.lose = lose

    def place(self, placed: Sequence[Profile]) -> list[str]:
        conflicted = super().place(placed)
        lost = [p.customer_id for p in placed if p.customer_id in self.lose and p.customer_id not in conflicted]
        self.lose -= set(lost)
        return [*conflicted, *lost]


def test_a_placement_whose_answer_was_lost_is_counted_once_and_not_written_again(
    bus: RecordingBus, model: tuple[MemoryBucket, MemoryRegistry]
) -> None:
    memory = LosesAnswers(set())
    memory.items = unplaced(20).items
    memory.lose = set(sorted(memory.items)[:4])
    lost = set(memory.lose)

    moved = rescore(PublishingProfiles(memory, EventBridgeSegmentEvents("segments")), *model)

    assert moved == 20 and memory.writes == 20
    assert all(p.segments is not None and not _repeated(p) for p in memory.items.values())
    published = {e["Detail"] for r in bus.requests for e in r}
    assert all(p.outbox == [] for c, p in memory.items.items() if c not in lost)
    for customer in lost:  # not heard as written, so not published: kept for the customer's next write
        assert memory.items[customer].outbox and not any(customer in d for d in published)


class RacedByTheStream(MemoryProfiles):
    """Before the first placement of each id in ``race`` lands, another writer adds an order to
    the stored item (bumping its version)."""

    def __init__(self, race: set[str]) -> None:
        super().__init__()
        self.race = race

    def place(self, placed: Sequence[Profile]) -> list[str]:
        for profile in placed:
            if profile.customer_id in self.race:
                self.race.discard(profile.customer_id)
                stored = self.items[profile.customer_id]
                self.items[profile.customer_id] = stored.model_copy(
                    update={"orders": stored.orders + 1, "version": stored.version + 1}
                )
        return super().place(placed)


def test_a_placement_that_lost_a_race_is_placed_again_from_a_fresh_read_keeping_the_other_write(
    model: tuple[MemoryBucket, MemoryRegistry],
) -> None:
    raced = RacedByTheStream(set())
    raced.items = unplaced(10).items
    chosen = sorted(raced.items)[:3]
    raced.race = set(chosen)
    orders = {c: raced.items[c].orders for c in chosen}

    assert rescore(raced, *model) == 10

    for customer in chosen:
        stored = raced.items[customer]
        assert stored.orders == orders[customer] + 1  # the other writer's change is kept
        assert stored.segments is not None and not _repeated(stored)  # placed once, after the race
        assert stored.version == 1 + 1 + 1
    assert raced.writes == 10 and raced.batch_reads == 2  # the batch's read, then one re-read of the three


class AlwaysRaced(MemoryProfiles):
    def place(self, placed: Sequence[Profile]) -> list[str]:
        for profile in placed:
            stored = self.items[profile.customer_id]
            self.items[profile.customer_id] = stored.model_copy(update={"version": stored.version + 1})
        return super().place(placed)


def test_a_customer_who_keeps_changing_is_left_to_the_next_rescore(
    model: tuple[MemoryBucket, MemoryRegistry], caplog: pytest.LogCaptureFixture
) -> None:
    racing = AlwaysRaced()
    racing.items = unplaced(3).items

    assert rescore(racing, *model) == 0

    assert racing.writes == 0 and racing.batch_reads == 1 + 4  # read, then a re-read after each of 4 rounds
    assert "3 customers kept changing" in caplog.text


def test_the_memory_fake_keeps_what_a_placement_does_not_own(model: tuple[MemoryBucket, MemoryRegistry]) -> None:
    memory = unplaced(1)
    [(customer, stored)] = memory.items.items()
    placed = stored.placed(PLACE, "model v1").model_copy(update={"orders": 999})

    assert memory.place([placed]) == [] and memory.place([placed]) == [customer]  # the second: a stale version
    assert memory.items[customer].orders == stored.orders and memory.items[customer].segments == PLACE


def _repeated(profile: Profile) -> bool:
    """Whether a move is recorded twice in the profile's history."""
    return len({(m.reason, m.at) for m in profile.segment_history}) < len(profile.segment_history)

"""The profile engine's guarantees, tried against the embedded stack (moto server, real handlers)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest

from audience.adapters.dynamodb import DynamoProfileRepository
from audience.adapters.profile_items import assemble
from audience.domain.events import message_to_json, parse_request
from audience.domain.money import Currencies
from audience.domain.profile import Profile, StreamPosition
from audience.services.profiles import StreamRecord, apply_records
from embedded.demo import get, post
from embedded.stack import EmbeddedStack
from tests.data import SHARED, needs

CDNOW = SHARED / "cdnow" / "CDNOW_sample.txt"
NOW = datetime.now(UTC)


class NoDeadLetters:
    def send(self, reason: str, payload: Any) -> None:
        raise AssertionError(f"unexpected dead letter: {reason}")


def profiles_table(aws: boto3.session.Session, embedded: EmbeddedStack) -> dict[str, Profile]:
    partitions: dict[str, list[dict[str, Any]]] = defaultdict(list)
    paginator = aws.client("dynamodb").get_paginator("scan")
    for page in paginator.paginate(TableName=embedded.outputs["ProfilesTableName"]):
        for item in page["Items"]:
            if item["pk"]["S"].startswith("CUSTOMER#"):  # the table also holds the active model's pointer
                partitions[item["pk"]["S"]].append(item)
    profiles = [assembled[0] for items in partitions.values() if (assembled := assemble(items)) is not None]
    return {p.customer_id: p for p in profiles}


def wait_until(check: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def test_concurrent_writers_lose_no_update(embedded: EmbeddedStack) -> None:
    """Eight threads, as eight Lambda containers on eight shards, update one customer at once."""
    customer = f"race-{uuid.uuid4().hex[:8]}"
    repository = DynamoProfileRepository(embedded.outputs["ProfilesTableName"])
    currencies = Currencies("USD", {})
    threads, per_thread, errors = 8, 15, []

    def writer(n: int) -> None:
        try:
            for i in range(per_thread):
                body = {
                    "type": "track",
                    "userId": customer,
                    "event": "Order Completed",
                    "messageId": f"{n}-{i}",
                    "properties": {"total": 1},
                }
                message = parse_request(body, NOW, currencies)[0]
                record = StreamRecord(str(i), StreamPosition(f"shard-{n}", customer, i), message_to_json(message))
                for _ in range(50):  # as Lambda re-delivers a record reported in batchItemFailures
                    outcome = apply_records([record], repository, NoDeadLetters(), currencies, NOW)
                    if not outcome.failed_item_ids:
                        break
                else:
                    raise AssertionError("a record never applied")
        except Exception as exc:  # surfaced below: a thread's assertion does not fail the test by itself
            errors.append(exc)

    workers = [threading.Thread(target=writer, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert errors == []
    stored = repository.get(customer)
    assert stored is not None and stored.orders == threads * per_thread
    assert stored.revenue == Decimal(threads * per_thread)


def test_a_poison_record_alone_goes_to_the_dead_letter_queue(
    aws: boto3.session.Session, embedded: EmbeddedStack, api: str
) -> None:
    customer, poison = f"poison-{uuid.uuid4().hex[:8]}", f"not json {uuid.uuid4()}".encode()
    good = [
        {
            "type": "page",
            "userId": customer,
            "name": f"p{i}",
            "messageId": f"{customer}-{i}",
            "receivedAt": "2026-11-20T14:03:00Z",
        }
        for i in range(4)
    ]
    records = [
        json.dumps(good[0]).encode(),
        json.dumps(good[1]).encode(),
        poison,
        json.dumps(good[2]).encode(),
        json.dumps(good[3]).encode(),
    ]
    aws.client("kinesis").put_records(
        StreamName=embedded.outputs["EventsStreamName"],
        Records=[{"Data": data, "PartitionKey": customer} for data in records],
    )

    _, profile = wait_until(lambda: (r := get(f"{api}/v1/customers/{customer}"))[0] == 200 and r, 10)
    assert profile["eventCounts"] == {"page": 4}
    sqs = aws.client("sqs")
    found = []
    for _ in range(5):
        for message in sqs.receive_message(
            QueueUrl=embedded.outputs["DeadLetterQueueUrl"], MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", []):
            body = json.loads(message["Body"])
            if body.get("payload", {}).get("data") == poison.decode():
                found.append(body)
    assert len(found) == 1 and found[0]["payload"]["partitionKey"] == customer


@pytest.fixture
def throttled_writes(embedded: EmbeddedStack) -> Iterator[Counter[str]]:
    """A fifth of the functions' DynamoDB calls fail with a throttling error, as DynamoDB answers
    when a partition is hot (the local AWS injects it); botocore's and the poller's retries must
    then apply every event."""
    assert embedded.moto is not None
    embedded.moto.faults.injected.clear()
    embedded.inject("dynamodb=0.2")
    yield embedded.moto.faults.injected
    embedded.inject("")


def test_throttled_writes_end_with_every_event_applied_exactly_once(
    api: str, aws: boto3.session.Session, embedded: EmbeddedStack, throttled_writes: Counter[str]
) -> None:
    run = uuid.uuid4().hex[:6]
    events = [
        {
            "type": "track",
            "userId": f"throttle-{run}-{i % 40}",
            "event": "Order Completed",
            "messageId": f"{run}-{i}",
            "properties": {"total": 1},
        }
        for i in range(400)
    ]
    for start in range(0, len(events), 100):
        assert post(f"{api}/v1/events", {"batch": events[start : start + 100]})[0] == 202

    repository = DynamoProfileRepository(embedded.outputs["ProfilesTableName"])
    ids = [f"throttle-{run}-{i}" for i in range(40)]

    def settled() -> dict[str, Profile] | None:  # the 40 customers only: a scan would starve the writers
        ours = dict(repository.get_many(ids))
        return ours if sum(p.orders for p in ours.values()) >= 400 else None

    profiles = wait_until(settled, 30)
    assert profiles, "not every event was applied"
    assert throttled_writes["dynamodb:throttle"] > 5, "the test injected too few faults to prove anything"
    assert {p.orders for p in profiles.values()} == {10}  # 400 events over 40 customers, none twice


@needs(CDNOW)
def test_the_cdnow_log_replayed_as_orders_gives_each_customers_orders_and_revenue(
    api: str, aws: boto3.session.Session, embedded: EmbeddedStack
) -> None:
    expected_orders: Counter[str] = Counter()
    expected_revenue: defaultdict[str, Decimal] = defaultdict(Decimal)
    events = []
    for line_number, line in enumerate(Path(CDNOW).read_text().splitlines(), start=1):
        _, sample_id, day, _, dollars = line.split()
        customer = f"cdnow-{sample_id}"
        expected_orders[customer] += 1
        expected_revenue[customer] += Decimal(dollars)
        events.append(
            {
                "type": "track",
                "userId": customer,
                "event": "Order Completed",
                "messageId": f"cdnow-line-{line_number}",
                "timestamp": f"{day[:4]}-{day[4:6]}-{day[6:]}T00:00:00Z",
                "properties": {"order_id": f"cdnow-{line_number}", "total": dollars, "currency": "USD"},
            }
        )
    for start in range(0, len(events), 500):
        status, body = post(f"{api}/v1/events", {"batch": events[start : start + 500]})
        assert status == 202, body

    # The stream's lanes (ParallelizationFactor) keep each customer's order, not the order across
    # customers: the replay is done when every customer has every order.
    def replayed() -> dict[str, Profile] | None:
        found = {k: v for k, v in profiles_table(aws, embedded).items() if k.startswith("cdnow-")}
        return found if {c: p.orders for c, p in found.items()} == dict(expected_orders) else None

    profiles = wait_until(replayed, 180)
    assert profiles, "the replay did not finish"
    assert len(profiles) == 2357 and len(events) == 6919
    assert {c: p.revenue for c, p in profiles.items()} == dict(expected_revenue)

"""GIVEN customers with long histories folded through the stream service into the real DynamoDB
repository (moto, in process), THEN a write costs the same however long the history (counted
from the items before and after, as DynamoDB bills), no item passes 64 KB, exactly-once holds
across the hot item and its pages (replays, a page write lost mid-way), merges, export and
erasure cover every item, and a profile stored in the old one-item shape is read and moved."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest

from audience.adapters.dynamodb import DynamoProfileRepository
from audience.adapters.privacy_table import DynamoPrivacy
from audience.adapters.profile_items import PROFILE_SK, plain, profile_key, serialize
from audience.adapters.table import Table
from audience.domain.errors import TransientError
from audience.domain.events import message_to_json, parse_request
from audience.domain.money import Currencies
from audience.domain.profile import StreamPosition
from audience.services.privacy import erase_customer, export_customer
from audience.services.profiles import StreamRecord, apply_records, get_profile
from tests.billing import item_size, write_units
from tests.unit.fakes import MemoryDeadLetters

NOW = datetime(2026, 11, 23, tzinfo=UTC)
CURRENCIES = Currencies("USD", {})
TABLE = "profiles"
SHARD = "shardId-000000000000"


@pytest.fixture
def repository(aws: boto3.session.Session) -> DynamoProfileRepository:
    aws.client("dynamodb").create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    return DynamoProfileRepository(TABLE)


class Stream:
    """Segment messages as the stream carries them, numbered in one lane per customer."""

    def __init__(self) -> None:
        self.sequence = 0

    def records(self, bodies: list[dict[str, Any]]) -> list[StreamRecord]:
        found = []
        for body in bodies:
            self.sequence += 1
            message = parse_request(body, NOW, CURRENCIES)[0]
            position = StreamPosition(SHARD, message.customer_id, self.sequence)
            found.append(StreamRecord(str(self.sequence), position, message_to_json(message)))
        return found


def orders(
    customer: str, n: int, products: int, lines: int = 3, years: float = 5, seed: int = 1
) -> list[dict[str, Any]]:
    """``n`` orders of ``lines`` products (drawn from ``products``) spread over ``years`` to NOW."""
    rng = random.Random(seed)
    start = NOW - timedelta(days=365 * years)
    step = (NOW - start) / n
    return [
        {
            "type": "track",
            "userId": customer,
            "event": "Order Completed",
            "messageId": f"{customer}-m{i}",
            "timestamp": (start + step * i).isoformat(),
            "properties": {
                "order_id": f"{customer}-o{i}",
                "total": 10 + i % 7,
                "currency": "USD",
                "products": [
                    {"product_id": f"p{rng.randrange(products)}", "price": 5, "quantity": 1} for _ in range(lines)
                ],
            },
        }
        for i in range(n)
    ]


def fold(repository: DynamoProfileRepository, records: list[StreamRecord], batch: int = 1000) -> None:
    for start in range(0, len(records), batch):
        outcome = apply_records(records[start : start + batch], repository, MemoryDeadLetters(), CURRENCIES, NOW)
        assert not outcome.failed_item_ids and not outcome.rejected


def items(aws: boto3.session.Session) -> dict[tuple[str, str], dict[str, Any]]:
    scanned = aws.client("dynamodb").scan(TableName=TABLE)["Items"]
    return {(i["pk"]["S"], i["sk"]["S"]): i for i in scanned}


def billed(before: dict[Any, dict[str, Any]], after: dict[Any, dict[str, Any]]) -> int:
    """The write units of the items that changed, from their size before and after."""
    return sum(write_units(before.get(k), after.get(k)) for k in {*before, *after} if before.get(k) != after.get(k))


def test_more_orders_for_a_customer_with_2000_orders_cost_at_most_3_write_units_each(
    aws: boto3.session.Session, repository: DynamoProfileRepository
) -> None:
    stream = Stream()
    fold(repository, stream.records(orders("loyal", 2000, products=400)))
    more = [
        o | {"timestamp": (NOW + timedelta(hours=i)).isoformat()}
        for i, o in enumerate(orders("loyal", 2010, 400)[-10:])
    ]
    units = []
    for order in more:  # one at a time: each its own batch and its own write
        before = items(aws)
        fold(repository, stream.records([order]))
        units.append(billed(before, items(aws)))

    single = item_size(serialize(plain(get_profile("loyal", repository).model_dump(mode="json", by_alias=True))))
    print(f"\nten more orders, one at a time, after 2,000 of 3 products: {units} write units; one item: {single} B")
    assert sum(units) / len(units) <= 3  # the page writes an order leaves in the hot item for later included
    assert max(units) <= 4
    assert max(item_size(i) for i in items(aws).values()) <= 64 * 1024
    assert get_profile("loyal", repository).orders == 2010


def test_a_customer_with_5000_orders_and_1000_products_folds_merges_exports_and_erases(
    aws: boto3.session.Session, repository: DynamoProfileRepository
) -> None:
    stream = Stream()
    history = orders("big", 5000, products=1000, lines=4)
    fold(repository, stream.records(history))
    anonymous = [{"type": "track", "anonymousId": "anon-1", "event": "Product Viewed", "messageId": f"v{i}",
                  "timestamp": (NOW - timedelta(hours=i)).isoformat(), "properties": {"product_id": f"new-{i}"}}
                 for i in range(30)]  # fmt: skip
    alias = {"type": "identify", "userId": "big", "anonymousId": "anon-1", "messageId": "join",
             "timestamp": NOW.isoformat(), "traits": {"plan": "gold"}}  # fmt: skip
    fold(repository, stream.records(anonymous))
    assert any(sk.startswith("PAGE#") for pk, sk in items(aws) if pk == "CUSTOMER#anon-1")
    fold(repository, stream.records([alias]))
    assert [sk for pk, sk in items(aws) if pk == "CUSTOMER#anon-1"] == [PROFILE_SK]  # a redirect; its pages moved

    profile = get_profile("big", repository)
    assert profile.orders == 5000 and profile.revenue == sum(Decimal(o["properties"]["total"]) for o in history)
    assert "anon-1" in profile.identities and profile.traits["plan"].v == "gold"
    assert len(profile.products) == 200 and {f"new-{i}" for i in range(30)} <= set(profile.products)
    assert len(profile.ledger) == 2000  # the newest orders remembered by id (README)
    stored = items(aws)
    assert max(item_size(i) for i in stored.values()) <= 64 * 1024
    hot = stored[("CUSTOMER#big", PROFILE_SK)]
    print(
        f"\n5,000 orders: {len(stored)} items, hot item {item_size(hot)} B,"
        f" largest {max(map(item_size, stored.values()))} B"
    )

    exported = export_customer("anon-1", repository, DynamoPrivacy(TABLE), "pepper", NOW, "test")
    assert exported["profile"]["orders"] == 5000 and len(exported["profile"]["ledger"]) == 2000
    assert len(exported["profile"]["products"]) == 200

    erase_customer("big", repository, DynamoPrivacy(TABLE), "pepper", NOW, "test")
    left = [k for k in items(aws) if k[0] in ("CUSTOMER#big", "CUSTOMER#anon-1")]
    assert left == []


def test_the_same_batch_three_times_changes_nothing(
    aws: boto3.session.Session, repository: DynamoProfileRepository
) -> None:
    records = Stream().records(orders("c1", 30, products=20) + orders("c2", 10, products=5, seed=2))
    fold(repository, records)
    first = items(aws)
    fold(repository, records)
    fold(repository, records)
    assert items(aws) == first


def test_a_page_written_by_a_write_that_never_committed_is_not_read_and_is_replaced(
    aws: boto3.session.Session, repository: DynamoProfileRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = Stream()
    history = orders("c1", 40, products=30)
    fold(repository, stream.records(history[:20]))
    write = Table.write

    def crash_at_the_hot_item(self: Table, operation: str, **request: Any) -> dict[str, Any]:
        if operation == "put_item" and request["Item"]["sk"]["S"] == PROFILE_SK:
            raise TransientError("the container died after writing the page")
        return write(self, operation, **request)

    retried = stream.records(history[20:30])
    with monkeypatch.context() as patch:
        patch.setattr(Table, "write", crash_at_the_hot_item)
        outcome = apply_records(retried, repository, MemoryDeadLetters(), CURRENCIES, NOW)
    assert len(outcome.failed_item_ids) == 10  # left to the stream's retry
    assert any(sk.startswith("PAGE#") for pk, sk in items(aws) if pk == "CUSTOMER#c1")
    fresh = DynamoProfileRepository(TABLE)  # another container: nothing remembered
    assert get_profile("c1", fresh).orders == 20 and len(get_profile("c1", fresh).ledger) == 20  # the page is not read

    fold(fresh, retried)  # the retry: the page is written again (replacing the one left), then committed
    fold(fresh, retried)  # and once more: replays, nothing changes
    fold(fresh, stream.records(history[30:]))
    profile = get_profile("c1", DynamoProfileRepository(TABLE))
    assert profile.orders == 40 and len(profile.ledger) == 40
    assert profile.revenue == sum(Decimal(o["properties"]["total"]) for o in history)


def test_a_profile_in_the_old_one_item_shape_is_read_updated_and_moved_to_pages(
    aws: boto3.session.Session, repository: DynamoProfileRepository
) -> None:
    stream = Stream()
    history = orders("old", 12, products=8)
    fold(repository, stream.records(history[:10]))
    expected = get_profile("old", repository)
    legacy = plain(expected.model_dump(mode="json", by_alias=True, exclude_defaults=True)) | {
        "version": expected.version
    }
    dynamodb = aws.client("dynamodb")
    for key in [k for k in items(aws) if k[0] == "CUSTOMER#old"]:
        dynamodb.delete_item(TableName=TABLE, Key={"pk": {"S": key[0]}, "sk": {"S": key[1]}})
    dynamodb.put_item(TableName=TABLE, Item={**serialize(legacy), **profile_key("old")})  # as earlier releases wrote it

    assert get_profile("old", DynamoProfileRepository(TABLE)) == expected
    fold(DynamoProfileRepository(TABLE), stream.records(history[10:]))
    stored = {k: v for k, v in items(aws).items() if k[0] == "CUSTOMER#old"}
    assert (
        "ledger" not in stored[("CUSTOMER#old", PROFILE_SK)] and "products" not in stored[("CUSTOMER#old", PROFILE_SK)]
    )
    assert any(sk.startswith("PAGE#") for _, sk in stored)
    moved = get_profile("old", DynamoProfileRepository(TABLE))
    assert moved.orders == 12 and len(moved.ledger) == 12 and moved.products.keys() >= expected.products.keys()

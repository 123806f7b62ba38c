"""`make bench` section 15: what a write costs as histories grow, the split profile beside the
one-item profile of earlier releases, in the same run.

The Online Retail II year (Dec 2009 - Dec 2010) as Segment messages (``tests/replay.py``: each
invoice an ``Order Completed`` with its ``products[]`` after a ``Product Viewed`` of one of its
lines) through the real stream handler, in batches of 1,000, against the embedded moto. Every
DynamoDB request the handler sends is billed as DynamoDB bills it (``tests/billing.py``), from
the items before and after it, read from moto's own tables.

Run alone: ``python -m tests.benchmarks.profile_split [customers]``.
"""

from __future__ import annotations

import io
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.models.dynamo_type import DynamoType

from audience.adapters.dynamodb import DynamoProfileRepository
from audience.adapters.profile_items import PROFILE_SK, conditional_put, plain, profile_key, serialize
from audience.adapters.table import Table
from audience.domain.events import message_from_json, message_to_json, parse_request
from audience.domain.folding import fold
from audience.domain.money import Currencies
from audience.domain.profile import PositionedMessage, Profile, StreamPosition
from audience.services.profiles import StreamRecord
from embedded.stack import EmbeddedStack
from tests.billing import KB, item_size, read_units, write_units
from tests.replay import RETAIL, online_retail_messages

BATCH = 1000
BATCH_ROW = "(this batch)"
# $ per million events, us-east-1 list prices (docs/benchmarks.md says where and when they were read):
# Kinesis Data Streams on-demand $0.08 per GB written (a record rounded up to 1 KB; the tail's
# orders are ~0.7 KB) and $0.04 per GB read by the stream function.
KINESIS = 1e6 * (0.08 + 0.04) / 1024**2
LAMBDA_GB = 0.5  # the stream function's MemorySize (template.yaml)


def all_in_lambda(seconds: float, events: int) -> float:
    """Lambda's $ per million events from the measured handler time (against moto, which is
    slower than DynamoDB: an upper bound): $0.0000166667 per GB-second, $0.20 per million
    invocations of 1,000 records."""
    return 1e6 * (seconds / events * LAMBDA_GB * 0.0000166667 + 0.20e-6 / BATCH)


SHARD = "shardId-000000000000"
PARSED_AT = datetime(2010, 12, 31, tzinfo=UTC)
PRICES = {"write": 0.625, "read": 0.125}  # $ per million units, DynamoDB on-demand us-east-1 (REFERENCE.md)


class Bill:
    """Write and read units of every request the repository sends, by the month of the batch."""

    def __init__(self, table: str, label: Callable[[str], str] | None = None) -> None:
        self.table = dynamodb_backends["123456789012"]["us-east-1"].get_table(table)
        self.month = ""
        self.label = label  # pk -> the row its units go to (else: the month of the batch)
        self.writes: dict[str, float] = defaultdict(float)
        self.item_writes: dict[str, float] = defaultdict(float)
        self.reads: dict[str, float] = defaultdict(float)
        self.events: dict[str, int] = defaultdict(int)

    def row(self, pk: str) -> str:
        return self.label(pk) if self.label else self.month

    def item(self, key: dict[str, Any]) -> dict[str, Any] | None:
        found = self.table.get_item(DynamoType(key["pk"]), DynamoType(key["sk"]))
        return found.to_json()["Attributes"] if found is not None else None

    @contextmanager
    def metering(self) -> Iterator[None]:
        original = Table.call
        bill = self

        def call(table: Table, operation: str, **request: Any) -> dict[str, Any]:
            writes = _written_keys(operation, request)
            before = [bill.item(k) for k, _ in writes]
            response: dict[str, Any] = {}
            try:
                response = original(table, operation, **request)
                return response
            finally:
                for (key, transactional), was in zip(writes, before, strict=True):
                    row = bill.row(key["pk"]["S"])
                    bill.writes[row] += write_units(was, bill.item(key), transactional)
                    bill.item_writes[row] += 1
                if operation == "query" and "IndexName" not in request and "ProjectionExpression" not in request:
                    pk = request["ExpressionAttributeValues"][":pk"]
                    partition = bill.table.items.get(DynamoType(pk), {}).values()
                    bill.reads[bill.row(pk["S"])] += read_units(i.to_json()["Attributes"] for i in partition)
                for item in response.get("Responses", {}).get(bill.table.name, []):  # BatchGetItem: per item
                    bill.reads[bill.row(item["pk"]["S"])] += read_units([item])

        Table.call = call  # type: ignore[method-assign,assignment]
        try:
            yield
        finally:
            Table.call = original  # type: ignore[method-assign]


def _written_keys(operation: str, request: dict[str, Any]) -> list[tuple[dict[str, Any], bool]]:
    if operation == "put_item":
        return [({"pk": request["Item"]["pk"], "sk": request["Item"]["sk"]}, False)]
    if operation == "update_item":
        return [(request["Key"], False)]
    if operation == "transact_write_items":
        found = []
        for action in request["TransactItems"]:
            ((kind, body),) = action.items()
            found.append(({"pk": body["Item"]["pk"], "sk": body["Item"]["sk"]} if kind == "Put" else body["Key"], True))
        return found
    return []


def _save_one_item(repository: DynamoProfileRepository, profile: Profile, retired: Any = ()) -> None:
    """The one-item profile of earlier releases: the whole profile in one conditional put."""
    for p in (profile, *retired):
        document = plain(p.model_dump(mode="json", by_alias=True, exclude_defaults=True))
        document["version"] = p.version + 1
        condition = {k: v for k, v in conditional_put(p).items() if k != "Item"}
        repository.table.write("put_item", TableName=repository.table.name, Item={**serialize(document),
                               **profile_key(p.customer_id)}, **condition)  # fmt: skip


def records(messages: list[dict[str, Any]]) -> list[tuple[str, StreamRecord]]:
    currencies = Currencies("GBP", {})
    found = []
    for n, body in enumerate(messages, start=1):
        message = parse_request(body, PARSED_AT, currencies)[0]
        position = StreamPosition(SHARD, message.customer_id, 10**20 + n)
        found.append((body["timestamp"][:7], StreamRecord(str(10**20 + n), position, message_to_json(message))))
    return found


def replay(stack: EmbeddedStack, bill: Bill, stream: list[tuple[str, StreamRecord]]) -> None:
    from tests.benchmarks.profile_engine import kinesis_event  # (profile_engine runs this section)

    assert stack.runtime is not None
    arn = f"arn:aws:kinesis:us-east-1:123456789012:stream/{stack.outputs['EventsStreamName']}"
    with bill.metering():
        for start in range(0, len(stream), BATCH):
            batch = stream[start : start + BATCH]
            bill.month = BATCH_ROW
            for month, _ in batch:
                bill.events[month] += 1
            answer = stack.runtime.invoke("StreamFunction", kinesis_event([r for _, r in batch], arn))
            assert answer == {"batchItemFailures": []}, answer
            months = Counter(month for month, _ in batch)  # a batch's units go to its months by their events
            for counts in (bill.writes, bill.reads, bill.item_writes):
                spent = counts.pop(BATCH_ROW, 0)
                for month, n in months.items():
                    counts[month] += spent * n / len(batch)


def sizes(bill: Bill, prefix: str) -> dict[str, Any]:
    by_customer: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for partition in bill.table.items.values():
        for item in partition.values():
            attributes = item.to_json()["Attributes"]
            pk = attributes["pk"]["S"]
            if pk.startswith(f"CUSTOMER#{prefix}"):
                by_customer[pk].append((attributes["sk"]["S"], item_size(attributes)))
    every = sorted(s for items in by_customer.values() for _, s in items)
    hot = sorted(s for items in by_customer.values() for sk, s in items if sk == PROFILE_SK)
    largest = max(by_customer.items(), key=lambda kv: sum(s for _, s in kv[1]))
    return {
        "customers": [(pk, sum(s for _, s in items)) for pk, items in by_customer.items()],
        "items": len(every),
        "p50": every[len(every) // 2],
        "p99": every[int(len(every) * 0.99)],
        "max": every[-1],
        "hot_p99": hot[int(len(hot) * 0.99)],
        "largest": (largest[0], sorted(largest[1], key=lambda kv: -kv[1])[:4], len(largest[1])),
    }


COHORTS = {"week": (2, 7), "year": (50, 365), "five years": (500, 5 * 365)}  # orders, over days
COHORT_SIZE = 50
TAIL_ROUNDS = 5


def cohort_messages(prefix: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Customers with a week's, a year's and five years' history (orders of 3 of 400 products),
    then the same tail for each: rounds of a ``Product Viewed`` and an ``Order Completed``."""
    history, tail = [], []
    end = datetime(2010, 12, 1, tzinfo=UTC)
    for cohort, (orders, days) in COHORTS.items():
        for c in range(COHORT_SIZE):
            user = f"{prefix}{cohort.replace(' ', '')}-{c}"
            for i in range(orders):
                at = end - timedelta(days=days) + timedelta(days=days) * i / orders
                history.append(_order(user, f"h{i}", at, [(c * 7 + i * j) % 400 for j in (1, 2, 3)]))
            for r in range(TAIL_ROUNDS):
                at = end + timedelta(days=r + 1)
                viewed = {"product_id": f"p{(c + r) % 400}"}
                tail.append({"type": "track", "event": "Product Viewed", "userId": user, "messageId": f"{user}-v{r}",
                             "timestamp": at.isoformat(), "properties": viewed})  # fmt: skip
                tail.append(_order(user, f"t{r}", at + timedelta(minutes=5), [(c + r * j) % 400 for j in (1, 5, 9)]))
    return sorted(history, key=lambda m: m["timestamp"]), sorted(tail, key=lambda m: m["timestamp"])


def _order(user: str, name: str, at: datetime, products: list[int]) -> dict[str, Any]:
    lines = [{"product_id": f"p{p}", "price": 4.5, "quantity": 2} for p in products]
    return {"type": "track", "event": "Order Completed", "userId": user, "messageId": f"{user}-{name}",
            "timestamp": at.isoformat(), "properties": {"order_id": f"{user}-{name}", "total": 27.0,
                                                        "currency": "GBP", "products": lines}}  # fmt: skip


def _cohort(pk: str) -> str:
    return next(c for c in COHORTS if f"-{c.replace(' ', '')}-" in pk)


def read_times(stack: EmbeddedStack, customers: list[str], rounds: int = 5) -> list[float]:
    """Seconds per profile read (one Query of the partition) of ``customers``, a fresh repository each."""
    table, found = stack.outputs["ProfilesTableName"], []
    for _ in range(rounds):
        for customer in customers:
            started = time.perf_counter()
            assert DynamoProfileRepository(table).get(customer) is not None
            found.append(time.perf_counter() - started)
    return sorted(found)


@contextmanager
def saving(label: str) -> Iterator[None]:
    """The repository's writes as ``label`` stores profiles: split, or the one item of earlier releases."""
    original = DynamoProfileRepository.save
    if label == "one item":
        DynamoProfileRepository.save = _save_one_item  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        DynamoProfileRepository.save = original  # type: ignore[method-assign]


def store_histories(table: str, history: list[dict[str, Any]]) -> None:
    """The cohorts' histories folded in memory (the stream's own fold) and written once each."""
    by_customer: dict[str, list[PositionedMessage]] = defaultdict(list)
    for n, (_, record) in enumerate(records(history), start=1):
        message = message_from_json(record.data)
        position = StreamPosition(SHARD, message.customer_id, n)  # before every record the stream brings
        by_customer[message.customer_id].append(PositionedMessage(message, position))
    repository = DynamoProfileRepository(table)
    for customer, events in by_customer.items():
        profile, _ = fold(Profile(customer_id=customer), events, Currencies("GBP", {}), PARSED_AT)
        repository.save(profile)


def measure(customers: int = 1_000) -> dict[str, Any] | None:
    if not RETAIL.exists():
        return None
    results: dict[str, Any] = {}
    parameters = {"MaxEventAgeDays": "20000", "BaseCurrency": "GBP"}
    with EmbeddedStack(aws_port=0, api_port=None, poll_streams=False, log=io.StringIO(), isolated=False,
                       parameters=parameters) as stack:  # fmt: skip
        table = stack.outputs["ProfilesTableName"]
        for label, prefix in (("split", "s-"), ("one item", "o-")):
            stream = records(online_retail_messages(customers, prefix))
            bill = Bill(table)
            with saving(label):
                replay(stack, bill, stream)
            results[label] = {"bill": bill, "sizes": sizes(bill, prefix), "events": len(stream)}
            biggest = sorted(results[label]["sizes"]["customers"], key=lambda kv: -kv[1])[:20]
            results[label]["reads"] = read_times(stack, [pk.removeprefix("CUSTOMER#") for pk, _ in biggest])
            history, tail = cohort_messages(f"h{prefix}")
            cohorts = Bill(table, _cohort)
            with saving(label):
                store_histories(table, history)
                started = time.perf_counter()
                replay(stack, cohorts, records(tail))
            results[label] |= {"cohorts": cohorts, "tail_s": time.perf_counter() - started}
    return results


def report(results: dict[str, Any] | None) -> None:
    if results is None:
        print("   skipped: ../shared/data/online_retail is absent")
        return
    print(f"   {results['split']['events']:,} events; write units (WCU) as DynamoDB bills them, by month of the replay")
    print(f"   {'':<10} {'WCU/event':>20} {'WCU/item write':>20} {'RCU/event':>20}")
    print(f"   {'month':<10} {'split':>9} {'one item':>10} {'split':>9} {'one item':>10} {'split':>9} {'one item':>10}")
    split, single = results["split"]["bill"], results["one item"]["bill"]
    for month in [m for m in sorted(split.events) if split.writes[m]]:
        row = [split.writes[month] / split.events[month], single.writes[month] / single.events[month],
               split.writes[month] / max(split.item_writes[month], 1),
               single.writes[month] / max(single.item_writes[month], 1),
               split.reads[month] / split.events[month], single.reads[month] / single.events[month]]  # fmt: skip
        print(f"   {month:<10} " + " ".join(f"{v:>9.2f}" if i % 2 == 0 else f"{v:>10.2f}" for i, v in enumerate(row)))
    for label in ("split", "one item"):
        bill = results[label]["bill"]
        events = sum(bill.events.values())
        wcu, item_writes, rcu = sum(bill.writes.values()), sum(bill.item_writes.values()), sum(bill.reads.values())
        cost = (wcu * PRICES["write"] + rcu * PRICES["read"]) / events
        print(f"   {label:<9} year: {wcu / events:.2f} WCU/event, {wcu / item_writes:.2f} WCU/item write,"
              f" {rcu / events:.2f} RCU/event: DynamoDB ${cost:.2f} per million events")  # fmt: skip
        s = results[label]["sizes"]
        pk, top, count = s["largest"]
        print(f"   {'':<9} items {s['items']:,}: p50 {s['p50']:,} B, p99 {s['p99']:,} B, max {s['max']:,} B,"
              f" hot item p99 {s['hot_p99']:,} B; largest customer {pk} in {count} items,"
              f" biggest {', '.join(f'{sk} {b:,} B' for sk, b in top)}")  # fmt: skip
    written = [m for m in sorted(split.events) if split.writes[m]]  # (a batch's units go to its last month)
    first, last = written[0], written[-1]
    ratio = (split.writes[last] / split.events[last]) / (split.writes[first] / split.events[first])
    year = sum(split.writes.values()) / sum(split.item_writes.values())
    last_item = split.writes[last] / max(split.item_writes[last], 1)
    p95 = {label: results[label]["reads"][int(len(results[label]["reads"]) * 0.95)] for label in ("split", "one item")}
    slower = p95["split"] / p95["one item"]
    print(f"   reading the 20 largest customers (one Query of the partition): p95 {p95['split'] * 1000:.1f} ms,"
          f" one item {p95['one item'] * 1000:.1f} ms: {slower:.2f}x (target <= 1.2x)")  # fmt: skip
    print(f"   the same tail ({TAIL_ROUNDS} rounds of a view and an order of 3 products) on {COHORT_SIZE} customers"
          " per history length, per million events:")  # fmt: skip
    print(f"   {'history':<12} {'':<9} {'WCU/event':>9} {'RCU/event':>9} {'DynamoDB':>9} {'Kinesis':>8} {'Lambda':>7}"
          f" {'all-in':>7}")  # fmt: skip
    for cohort in COHORTS:
        for label in ("split", "one item"):
            bill, tail_s = results[label]["cohorts"], results[label]["tail_s"]
            events = COHORT_SIZE * TAIL_ROUNDS * 2
            wcu, rcu = bill.writes[cohort] / events, bill.reads[cohort] / events
            dynamo = wcu * PRICES["write"] + rcu * PRICES["read"]
            lambda_ = all_in_lambda(tail_s, 3 * events)
            print(f"   {cohort:<12} {label:<9} {wcu:>9.2f} {rcu:>9.2f} {dynamo:>9.3f} {KINESIS:>8.3f} {lambda_:>7.3f}"
                  f" {dynamo + KINESIS + lambda_:>7.3f}")  # fmt: skip
    print(f"   targets: WCU/item write <= 1.5 over the year ({year:.2f}), <= 2 in the last month ({last_item:.2f});"
          f" WCU/event last month / first <= 1.2 ({ratio:.2f}); hot p99 <= 2 KB"
          f" ({results['split']['sizes']['hot_p99'] / KB:.2f} KB); no item > 64 KB"
          f" ({results['split']['sizes']['max'] / KB:.1f} KB)")  # fmt: skip


if __name__ == "__main__":
    report(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000))

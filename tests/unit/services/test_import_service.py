"""Importing with an in-memory bucket and repository: accounting, rejects, profiles, idempotency."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from decimal import Decimal

from audience.domain.money import Currencies
from audience.services.imports import Importing, mapping_for
from tests.unit.fakes import MemoryBucket, MemoryProfiles

NOW = datetime(2026, 11, 23, tzinfo=UTC)
CURRENCIES = Currencies("USD", {"GBP": Decimal("1.25")})
FILE = (
    "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"
    "100,A,mug,2,2010-03-01 10:00:00,4.00,7,United Kingdom\n"
    "100,POST,postage,1,2010-03-01 10:00:00,2.00,7,United Kingdom\n"
    "101,A,mug,1,2010-03-05 10:00:00,4.00,8,France\n"
    "C102,A,mug,-1,2010-03-06 10:00:00,4.00,7,United Kingdom\n"
    "103,A,mug,1,2010-03-07 10:00:00,4.00,,United Kingdom\n"
    "101,A,mug,1,2010-03-05 10:00:00,4.00,8,France\n"
)


def test_the_mapping_comes_from_the_folder() -> None:
    bucket = MemoryBucket()
    assert mapping_for("imports/orders/online-retail/2010.csv.gz", bucket).name == "online-retail"
    assert mapping_for("imports/orders/export.csv", bucket).name == "orders"
    assert mapping_for("imports/customers/crm.csv.gz", bucket).name == "customers"


def test_an_import_accounts_for_every_row_and_folds_orders_into_profiles() -> None:
    bucket, profiles = MemoryBucket(), MemoryProfiles()
    bucket.objects["imports/orders/online-retail/march.csv"] = FILE.encode()

    manifest = Importing(bucket, profiles, CURRENCIES).run("imports/orders/online-retail/march.csv", NOW)

    assert (manifest.rows_read, manifest.loaded, manifest.rejected, manifest.duplicates) == (6, 4, 1, 1)
    assert manifest.reconciles and manifest.rejected_by_reason == {"customer id missing": 1}
    assert (manifest.orders, manifest.refunds, manifest.customers_created) == (2, 1, 2)
    assert manifest.revenue == "12.50"  # (8 + 2) + 4 - 4 GBP refunded, at 1.25
    [reject] = [json.loads(line) for line in bucket.objects[manifest.rejects_key].decode().splitlines()]
    assert reject["line"] == 6 and reject["reasons"] == ["customer id missing"]
    stored = json.loads(bucket.objects[f"reports/imports/{manifest.import_id}.json"])
    assert stored["rows_read"] == 6
    seven = profiles.items["7"]
    assert (seven.orders, seven.revenue, seven.refunds, seven.refunded) == (1, Decimal("12.50"), 1, Decimal("5.00"))
    assert seven.category_spend == {} and seven.first_order_at == datetime(2010, 3, 1, 10, tzinfo=UTC)


def test_importing_the_same_object_again_changes_nothing() -> None:
    bucket, profiles = MemoryBucket(), MemoryProfiles()
    bucket.objects["imports/orders/online-retail/march.csv"] = FILE.encode()
    first = Importing(bucket, profiles, CURRENCIES).run("imports/orders/online-retail/march.csv", NOW)
    snapshot, writes = dict(profiles.items), profiles.writes

    again = Importing(bucket, profiles, CURRENCIES).run("imports/orders/online-retail/march.csv", NOW)

    assert again == first and profiles.writes == writes and profiles.items == snapshot


def test_a_re_export_of_the_same_orders_does_not_count_them_twice() -> None:
    bucket, profiles = MemoryBucket(), MemoryProfiles()
    bucket.objects["imports/orders/online-retail/a.csv"] = FILE.encode()
    bucket.objects["imports/orders/online-retail/b.csv"] = (
        FILE + "104,A,mug,1,2010-03-08 10:00:00,4.00,8,France\n"
    ).encode()
    Importing(bucket, profiles, CURRENCIES).run("imports/orders/online-retail/a.csv", NOW)
    Importing(bucket, profiles, CURRENCIES).run("imports/orders/online-retail/b.csv", NOW)
    assert profiles.items["7"].orders == 1 and profiles.items["8"].orders == 2


def test_a_corrected_re_export_replaces_the_amounts_it_corrects() -> None:
    bucket, profiles = MemoryBucket(), MemoryProfiles()
    bucket.objects["imports/orders/online-retail/a.csv"] = FILE.encode()
    bucket.objects["imports/orders/online-retail/b.csv"] = FILE.replace("101,A,mug,1,", "101,A,mug,3,").encode()
    Importing(bucket, profiles, CURRENCIES).run("imports/orders/online-retail/a.csv", NOW)
    before = profiles.items["7"]
    Importing(bucket, profiles, CURRENCIES).run("imports/orders/online-retail/b.csv", NOW)
    eight = profiles.items["8"]
    assert (eight.orders, eight.revenue) == (1, Decimal("15.00"))  # 3 mugs at 4 GBP, not 1 + 3
    assert profiles.items["7"] == before  # nothing of customer 7 changed: not even a write


class MemoryQueue:
    def __init__(self) -> None:
        self.items: list[dict[str, object]] = []

    def send(self, item: Mapping[str, object]) -> None:
        self.items.append(dict(item))


def test_a_file_with_more_customers_than_a_chunk_fans_out_and_still_reconciles() -> None:
    inline_bucket, inline_profiles = MemoryBucket(), MemoryProfiles()
    inline_bucket.objects["imports/orders/online-retail/march.csv"] = FILE.encode()
    inline = Importing(inline_bucket, inline_profiles, CURRENCIES).run("imports/orders/online-retail/march.csv", NOW)

    bucket, profiles, queue = MemoryBucket(), MemoryProfiles(), MemoryQueue()
    bucket.objects["imports/orders/online-retail/march.csv"] = FILE.encode()
    planned = Importing(bucket, profiles, CURRENCIES, queue, chunk_customers=1).run(
        "imports/orders/online-retail/march.csv", NOW
    )
    assert planned.chunks == 2 and queue.items == [
        {"importId": planned.import_id, "chunk": 0},
        {"importId": planned.import_id, "chunk": 1},
    ]
    manifest_key = f"reports/imports/{planned.import_id}.json"
    assert manifest_key not in bucket.objects and profiles.writes == 0  # nothing applied yet
    again = Importing(bucket, profiles, CURRENCIES, queue, 1).run("imports/orders/online-retail/march.csv", NOW)
    assert again.chunks == 2 and len(queue.items) == 2  # the same object while in flight: no second plan

    chunks = Importing(bucket, profiles, CURRENCIES)
    assert chunks.apply_chunk(planned.import_id, 1, NOW) is None  # chunk 0 still pending
    first = chunks.apply_chunk(planned.import_id, 0, NOW)
    repeat = chunks.apply_chunk(planned.import_id, 0, NOW)  # SQS delivers twice
    assert first is not None and repeat is not None and manifest_key in bucket.objects
    ignore = {"started", "finished", "chunks"}
    assert {k: v for k, v in asdict(first).items() if k not in ignore} == {
        k: v for k, v in asdict(inline).items() if k not in ignore
    }
    assert asdict(repeat) | {"finished": ""} == asdict(first) | {"finished": ""}
    assert {c: p.model_dump(exclude={"version"}) for c, p in profiles.items.items()} == {
        c: p.model_dump(exclude={"version"}) for c, p in inline_profiles.items.items()
    }

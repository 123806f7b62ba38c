"""Import an order export dropped into the bucket: clean it, account for every row, fold the
orders into profiles through the same code as live events, and leave rejects and a manifest."""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from audience.domain.errors import TransientError
from audience.domain.events import Message, Track, message_to_json
from audience.domain.imports import (
    Accounting,
    ColumnMapping,
    ImportedOrder,
    OrderFileCleaner,
    Reject,
    builtin_mapping,
    orders_by_customer,
)
from audience.domain.money import Currencies
from audience.domain.profile import StreamPosition
from audience.ports import ObjectStore, ProfileRepository
from audience.services.profiles import StreamRecord, apply_messages

ORDERS_PREFIX = "imports/orders/"
BATCH = 100  # BatchGetItem's limit


@dataclass
class Manifest:
    import_id: str
    key: str
    mapping: str
    started: str
    finished: str = ""
    rows_read: int = 0
    loaded: int = 0
    rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    reconciles: bool = False
    file_errors: list[str] = field(default_factory=list)
    customers_created: int = 0
    customers_updated: int = 0
    orders: int = 0
    refunds: int = 0
    revenue: str = "0"
    currency: str = ""
    countries_unknown: int = 0
    non_product_lines: int = 0
    cancellation_lines: int = 0
    rejects_key: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def import_id(key: str, etag: str) -> str:
    """The same object (key and content) always gets the same id, so a second run is a no-op."""
    return hashlib.sha256(f"{key}\n{etag}".encode()).hexdigest()[:20]


def mapping_for(key: str) -> ColumnMapping:
    """``imports/orders/<mapping>/<file>`` uses that mapping; a file directly under the folder the default."""
    folders = key.removeprefix(ORDERS_PREFIX).split("/")[:-1]
    return builtin_mapping(folders[0] if folders else "orders")


def run_import(
    key: str, store: ObjectStore, profiles: ProfileRepository, currencies: Currencies, now: datetime
) -> Manifest:
    etag = store.etag(key)
    identity = import_id(key, etag)
    manifest_key = f"reports/imports/{identity}.json"
    existing = store.read_text(manifest_key)
    if existing is not None:  # the same object imported before: change nothing
        return Manifest(**json.loads(existing))
    mapping = mapping_for(key)
    manifest = Manifest(
        identity, key, mapping.name, now.isoformat(), currency=currencies.base, rejects_key=f"rejects/{identity}.jsonl"
    )
    with tempfile.TemporaryFile("w+", encoding="utf-8") as rejects:

        def keep(reject: Reject) -> None:
            rejects.write(reject.to_json() + "\n")

        cleaner = OrderFileCleaner(mapping, currencies, keep)
        with store.open(key) as body:
            orders = orders_by_customer(cleaner.lines(body), currencies)
        rejects.seek(0)
        store.put_file(manifest.rejects_key, rejects)
    _account(manifest, cleaner.accounting)
    _apply(orders, identity, profiles, currencies, now, manifest)
    manifest.finished = datetime.now(now.tzinfo).isoformat()
    store.put_text(manifest_key, manifest.to_json())  # last: its presence means "done"
    return manifest


def _account(manifest: Manifest, accounting: Accounting) -> None:
    manifest.rows_read, manifest.loaded = accounting.rows_read, accounting.loaded
    manifest.rejected, manifest.duplicates = accounting.rejected, accounting.duplicates
    manifest.rejected_by_reason = dict(accounting.rejected_by_reason)
    manifest.reconciles, manifest.file_errors = accounting.reconciles(), accounting.file_errors
    manifest.countries_unknown, manifest.non_product_lines = accounting.countries_unknown, accounting.non_product_lines
    manifest.cancellation_lines = accounting.cancellation_lines


def _apply(
    orders: dict[str, list[ImportedOrder]],
    identity: str,
    profiles: ProfileRepository,
    currencies: Currencies,
    now: datetime,
    manifest: Manifest,
) -> None:
    """Through the stream's own path (one batched read and one write per customer, conflicts
    re-read and re-folded, merged ids followed), 100 customers at a time."""
    customers = sorted(orders)
    revenue = Decimal(0)
    for start in range(0, len(customers), BATCH):
        messages = []
        for customer in customers[start : start + BATCH]:
            for n, order in enumerate(sorted(orders[customer], key=lambda o: (o.at, o.order_id))):
                message = _as_event(order, currencies.base)
                position = StreamPosition("", identity, n)  # untracked: the ledger counts each order once
                messages.append((StreamRecord(order.order_id, position, message_to_json(message)), message))
                manifest.refunds += order.is_refund
                manifest.orders += not order.is_refund
                revenue += -order.amount if order.is_refund else order.amount
        outcome = apply_messages(messages, profiles, _ValidatedOrders(), currencies, now)
        if outcome.failed_item_ids:  # no manifest yet: the retried import skips what was applied
            raise TransientError(f"{len(outcome.failed_item_ids)} orders could not be written; retry the import")
        manifest.customers_created += outcome.profiles_created
        manifest.customers_updated += outcome.profiles_updated - outcome.profiles_created
    manifest.revenue = str(revenue)


class _ValidatedOrders:
    """The dead-letter port for imported orders: the cleaner checked them (currency included),
    so one that cannot be folded is a bug, not a bad row."""

    def send(self, reason: str, payload: Mapping[str, Any]) -> None:
        raise RuntimeError(f"an imported order could not be folded: {reason} ({payload.get('sequenceNumber')})")


def _as_event(order: ImportedOrder, currency: str) -> Message:
    """An imported order is an ``Order Completed`` (or ``Order Refunded``) event like any other."""
    properties: dict[str, Any] = {
        "order_id": order.order_id,
        "total": str(order.amount),
        "currency": currency,
        "products": [{"category": c, "price": str(s), "quantity": 1} for c, s in sorted(order.category_spend.items())],
    }
    return Track(
        type="track",
        user_id=order.customer_id,
        # the amount is part of the id: a corrected amount is not mistaken for a repeat
        message_id=f"import:{'refund' if order.is_refund else 'order'}:{order.order_id}:{order.amount}",
        timestamp=order.at,
        received_at=order.at,
        event="Order Refunded" if order.is_refund else "Order Completed",
        properties=properties,
    )

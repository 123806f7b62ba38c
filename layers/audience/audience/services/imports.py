"""Import an export dropped into the bucket (orders or customers): clean it, account for every
row, fold it into profiles through the same code as live events (orders become ``Order
Completed``/``Order Refunded``, customers ``identify`` and ``alias``), and leave rejects and a
manifest."""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import IO, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from audience.domain.customers import CustomerFileCleaner, ResolvedCustomer, resolve
from audience.domain.errors import TransientError
from audience.domain.events import Alias, Identify, Message, Track, message_from_json, message_to_json
from audience.domain.imports import Accounting, ColumnMapping, Reject, builtin_mapping
from audience.domain.money import Currencies
from audience.domain.orders import ImportedOrder, OrderFileCleaner, orders_by_customer
from audience.domain.privacy import pseudonymised
from audience.domain.profile import StreamPosition
from audience.ports import AuditTrail, ObjectStore, ProfileRepository, WorkQueue
from audience.services.artifacts import (
    catalogue_key,
    import_folders,
    import_kind,
    manifest_key,
    mapping_key,
    parts,
    rejects_key,
)
from audience.services.privacy import Scrub, scrub_erased
from audience.services.profiles import Folding, Placer, Suppressing, ValidEvent

KINDS = ("orders", "customers")  # imports/<kind>/[<mapping>/]<file>
BATCH = 100  # customers per read-fold-write round (BatchGetItem's limit)
CHUNK_CUSTOMERS = 20_000  # customers one invocation applies (~200 s against DynamoDB): more fan out


Batches = dict[str, list[Message]]  # the messages of each customer, in order


class MappingNotUsable(Exception):
    """The object's folder names a mapping that does not exist or is not valid."""


@dataclass
class Manifest:
    import_id: str
    key: str
    kind: str
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
    fields_cleared: dict[str, int] = field(default_factory=dict)
    records_merged: int = 0  # customer records resolved into another record's customer
    rejects_key: str = ""
    merges_key: str = ""
    chunks: int = 1  # invocations that applied it (more than one: fanned out through the work queue)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def import_id(key: str, etag: str) -> str:
    """The same object (key and content) always gets the same id, so a second run is a no-op."""
    return hashlib.sha256(f"{key}\n{etag}".encode()).hexdigest()[:20]


def mapping_for(key: str, store: ObjectStore) -> ColumnMapping:
    """``imports/<kind>/<mapping>/<file>`` uses that mapping, ``mappings/<mapping>.json`` in the
    bucket or one shipped with the package; a file directly under the kind's folder the kind's
    default (``orders``, ``customers``)."""
    kind, *folders = import_folders(key) or [""]
    if kind not in KINDS:
        raise MappingNotUsable(f"{key!r} is not under imports/orders/ or imports/customers/")
    name = folders[0] if folders else kind
    text = store.read_text(mapping_key(name))
    try:
        mapping = ColumnMapping.model_validate_json(text) if text is not None else builtin_mapping(name)
    except FileNotFoundError:
        raise MappingNotUsable(f"no mapping named {name!r} (put it at {mapping_key(name)})") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise MappingNotUsable(f"mapping {name!r} is not valid: {problems}") from None
    if mapping.kind != kind:
        raise MappingNotUsable(f"mapping {name!r} is for {mapping.kind}, the file is under imports/{kind}/")
    return mapping


class ChunkWork(BaseModel):
    """A work item: apply one chunk of a fanned-out import."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    import_id: str = Field(alias="importId", min_length=1)
    chunk: int = Field(ge=0)


@dataclass(frozen=True)
class Importing:
    """Imports into profiles. Up to ``chunk_customers`` customers are applied in one invocation;
    a larger file is cut into chunks of that many customers, each applied by its own invocation
    through ``work``. ``place`` puts each changed profile in its place (the trigger rules' tiers,
    for imports); the rows of erased customers (``suppression``) are dropped; with a
    ``contact_key``, contact details are stored as keyed hashes (resolution compares them in the
    clear first). ``audit`` records the scrubbing of an erased customer's rows."""

    store: ObjectStore
    profiles: ProfileRepository
    currencies: Currencies
    work: WorkQueue | None = None  # the chunks of a large import (None: applied here, however large)
    chunk_customers: int = CHUNK_CUSTOMERS
    place: Placer | None = None
    suppression: Suppressing | None = None
    contact_key: str | None = None
    audit: AuditTrail | None = None

    def run(self, key: str, now: datetime) -> Manifest:
        """Import the object at ``key``; a fanned-out import's manifest is written when its last
        chunk is applied (:meth:`apply_chunk`)."""
        store, currencies = self.store, self.currencies
        identity = import_id(key, store.etag(key))
        manifest_at, plan = manifest_key(identity), parts(store, "imports", identity).key("plan.json")
        existing = store.read_text(manifest_at) or store.read_text(plan)
        if existing is not None:  # the same object imported before (or being applied): change nothing
            return Manifest(**json.loads(existing))
        manifest = Manifest(identity, key, import_kind(key), "", now.isoformat())
        manifest.currency, manifest.rejects_key = currencies.base, rejects_key(identity)
        try:
            mapping = mapping_for(key, store)
        except MappingNotUsable as exc:
            manifest.file_errors = [str(exc)]
            return _finish(manifest, store, now)
        manifest.mapping = mapping.name
        messages = self._read(key, mapping, manifest, now)
        customers = sorted(messages)
        if len(customers) <= self.chunk_customers or self.work is None:
            _tally(manifest, self._apply(messages, customers, identity, now))
            return _finish(manifest, store, now)
        return _fan_out(messages, customers, self.chunk_customers, manifest, store, self.work)

    def _read(self, key: str, mapping: ColumnMapping, manifest: Manifest, now: datetime) -> Batches:
        """The file's rows as messages per customer; its rejects written, every row accounted for."""
        store, currencies, identity = self.store, self.currencies, manifest.import_id
        with tempfile.TemporaryFile("w+", encoding="utf-8") as rejects:

            def keep(reject: Reject) -> None:
                rejects.write(reject.to_json() + "\n")

            with store.open(key) as body:
                if mapping.kind == "orders":
                    cleaner = OrderFileCleaner(mapping, currencies, keep)
                    messages, catalogue = _orders(cleaner, body, currencies, manifest)
                    if catalogue:  # what the file says of its products: the recommendations' names and categories
                        store.put_text(catalogue_key(identity), json.dumps(catalogue, sort_keys=True))
                else:
                    customers = CustomerFileCleaner(mapping, keep)
                    messages = _customers(customers, body, mapping, identity, now, manifest, store, self.contact_key)
            rejects.seek(0)
            store.put_file(manifest.rejects_key, rejects)
        return messages

    def apply_chunk(self, import_identity: str, chunk: int, now: datetime) -> Manifest | None:
        """Apply one chunk of a fanned-out import; the invocation that completes the last chunk
        writes the manifest (returned; None while chunks remain). A chunk delivered twice is
        applied twice harmlessly (message ids and the order ledger) and counted once."""
        store, chunks = self.store, parts(self.store, "imports", import_identity)
        plan_text = store.read_text(chunks.key("plan.json"))
        if plan_text is None:
            raise ValueError(f"import {import_identity} has no plan: nothing to apply")
        if chunks.read(chunk) is None:  # a chunk's part says what it wrote: applied once, counted once
            text = store.read_text(chunks.key(f"chunk-{chunk:05d}.jsonl")) or ""
            messages = {}
            for line in text.splitlines():
                entry = json.loads(line)
                messages[entry["customer"]] = [message_from_json(m) for m in entry["messages"]]
            created, updated = self._apply(messages, sorted(messages), import_identity, now)
            chunks.put(chunk, json.dumps({"created": created, "updated": updated}).encode())
        manifest = Manifest(**json.loads(plan_text))
        gathered = chunks.gather(manifest.chunks)
        if gathered is None:
            return None
        for written in map(json.loads, gathered):
            _tally(manifest, (written["created"], written["updated"]))
        return _finish(manifest, store, now)

    def scrub(self, scrub: Scrub, now: datetime) -> dict[str, int]:
        """Remove an erased customer's rows from the files imports write (rejects, merge reports)."""
        if self.audit is None:
            raise ValueError("scrubbing an erased customer's files needs an audit trail")
        return scrub_erased(
            scrub.ids, scrub.subject, scrub.receipt, self.store, self.audit, now, scrub.pseudonyms, scrub.erased_at
        )

    def _apply(self, messages: Batches, customers: list[str], identity: str, now: datetime) -> tuple[int, int]:
        """Fold the messages of ``customers`` as the stream does (one batched read and one write
        per customer, conflicts re-read and re-folded, merged ids followed), ``BATCH`` customers
        at a time; returns how many profiles were created and how many updated."""
        folding = Folding(self.profiles, _ValidatedImport(), self.currencies, self.place, self.suppression)
        created = updated = 0
        for start in range(0, len(customers), BATCH):
            batch = customers[start : start + BATCH]
            # untracked positions: message ids and the order ledger catch repeats
            events = [ValidEvent(m, StreamPosition("", identity, n)) for c in batch for n, m in enumerate(messages[c])]
            outcome = folding.fold_events(events, now)
            if outcome.failed_item_ids:  # no manifest yet: the retried import skips what was applied
                raise TransientError(f"{len(outcome.failed_item_ids)} records could not be written; retry the import")
            created += outcome.profiles_created
            updated += outcome.profiles_updated - outcome.profiles_created
        return created, updated


def _fan_out(messages: Batches, customers: list[str], chunk_customers: int, manifest: Manifest, store: ObjectStore,
             work: WorkQueue) -> Manifest:  # fmt: skip
    """Write each chunk's messages to the bucket, then the plan (the manifest so far: every row
    is accounted for already), then one work item per chunk."""
    identity, chunks = manifest.import_id, parts(store, "imports", manifest.import_id)
    starts = range(0, len(customers), chunk_customers)
    manifest.chunks = len(starts)
    for n, start in enumerate(starts):
        lines = (
            json.dumps({"customer": c, "messages": [message_to_json(m).decode() for m in messages[c]]}) + "\n"
            for c in customers[start : start + chunk_customers]
        )
        store.put_text(chunks.key(f"chunk-{n:05d}.jsonl"), "".join(lines))
    store.put_text(chunks.key("plan.json"), manifest.to_json())
    for n in range(manifest.chunks):
        work.send(ChunkWork(import_id=identity, chunk=n).model_dump(by_alias=True))
    return manifest


def _tally(manifest: Manifest, written: tuple[int, int]) -> None:
    created, updated = written
    manifest.customers_created += created
    manifest.customers_updated += updated


def _finish(manifest: Manifest, store: ObjectStore, now: datetime) -> Manifest:
    manifest.finished = datetime.now(now.tzinfo).isoformat()
    store.put_text(manifest_key(manifest.import_id), manifest.to_json())  # last: its presence means "done"
    return manifest


def _orders(
    cleaner: OrderFileCleaner, body: IO[bytes], currencies: Currencies, manifest: Manifest
) -> tuple[Batches, dict[str, dict[str, str | int]]]:
    """The orders as events per customer, and each product's name and category (the latest order's)
    and the orders that held it (the popular list served before a model is fitted)."""
    orders = orders_by_customer(cleaner.records(body), currencies)
    _account(manifest, cleaner.accounting)
    revenue = Decimal(0)
    messages: Batches = {}
    for customer, placed in orders.items():
        messages[customer] = [_as_event(o, currencies.base) for o in sorted(placed, key=lambda o: (o.at, o.order_id))]
        for order in placed:
            manifest.refunds += order.is_refund
            manifest.orders += not order.is_refund
            revenue += -order.amount if order.is_refund else order.amount
    manifest.revenue = str(revenue)
    catalogue: dict[str, dict[str, str | int]] = {}
    for order in sorted((o for placed in orders.values() for o in placed), key=lambda o: o.at):
        for product, (name, category, _) in order.products.items():
            entry = catalogue.setdefault(product, {"orders": 0})
            entry.update((k, v) for k, v in (("name", name), ("category", category)) if v)
            entry["orders"] = int(entry["orders"]) + (not order.is_refund)
    return messages, catalogue


def _customers(cleaner: CustomerFileCleaner, body: IO[bytes], mapping: ColumnMapping, identity: str, now: datetime,
               manifest: Manifest, store: ObjectStore, contact_key: str | None = None) -> Batches:  # fmt: skip
    """Resolved customers as an ``identify`` of the survivor and an ``alias`` per merged id (the
    stream's identity rules then merge any profiles those ids already have)."""
    resolved = resolve(cleaner.records(body), mapping.match_threshold)
    _account(manifest, cleaner.accounting)
    manifest.fields_cleared = dict(cleaner.fields_cleared)
    manifest.records_merged = manifest.loaded - len(resolved)
    merges = [_provenance(r) for r in resolved if len(r.lines) > 1]
    if merges:
        manifest.merges_key = manifest_key(identity, "-merges.jsonl")
        store.put_text(manifest.merges_key, "".join(json.dumps(m) + "\n" for m in merges))
    return {r.record.customer_id: _as_identity(r, now, contact_key) for r in resolved}


def _provenance(customer: ResolvedCustomer) -> dict[str, Any]:
    return {
        "customerId": customer.record.customer_id,
        "mergedIds": customer.merged_ids,
        "rules": customer.rules,
        "lines": customer.lines,
    }


def _account(manifest: Manifest, accounting: Accounting) -> None:
    manifest.rows_read, manifest.loaded = accounting.rows_read, accounting.loaded
    manifest.rejected, manifest.duplicates = accounting.rejected, accounting.duplicates
    manifest.rejected_by_reason = dict(accounting.rejected_by_reason)
    manifest.reconciles, manifest.file_errors = accounting.reconciles(), accounting.file_errors
    manifest.countries_unknown, manifest.non_product_lines = accounting.countries_unknown, accounting.non_product_lines
    manifest.cancellation_lines = accounting.cancellation_lines


class _ValidatedImport:
    """The dead-letter port for imported records: the cleaner checked them (currency included),
    so one that cannot be folded is a bug, not a bad row."""

    def send(self, reason: str, payload: Mapping[str, Any]) -> None:
        raise RuntimeError(f"an imported record could not be folded: {reason} ({payload.get('messageId')})")


def _as_event(order: ImportedOrder, currency: str) -> Message:
    """An imported order is an ``Order Completed`` (or ``Order Refunded``) event like any other."""
    properties: dict[str, Any] = {
        "order_id": order.order_id,
        "total": str(order.amount),
        "currency": currency,
        "products": [
            *(
                {"product_id": p, "name": n, "category": c, "price": str(s), "quantity": 1}
                for p, (n, c, s) in sorted(order.products.items())
            ),
            *({"category": c, "price": str(s), "quantity": 1} for c, s in sorted(order.category_spend.items())),
        ],
    }
    return Track(
        type="track",
        user_id=order.customer_id,
        message_id=f"import:{'refund' if order.is_refund else 'order'}:{order.order_id}",  # the ledger's key
        timestamp=order.at,
        received_at=order.at,
        event="Order Refunded" if order.is_refund else "Order Completed",
        properties=properties,
    )


def _as_identity(customer: ResolvedCustomer, now: datetime, contact_key: str | None = None) -> list[Message]:
    """A customer record is an ``identify`` (as of the import), and each id merged into it an
    ``alias``. Message ids carry the content: the same record imported again is a repeat."""
    survivor, traits = customer.record.customer_id, customer.record.traits()
    stored = pseudonymised(traits, contact_key) if contact_key is not None else traits
    digest = hashlib.sha256(json.dumps(stored, sort_keys=True).encode()).hexdigest()[:16]
    identify = Identify(
        type="identify",
        user_id=survivor,
        message_id=f"import:customer:{survivor}:{digest}",
        timestamp=now,
        received_at=now,
        traits=traits,
    )
    identify = identify.model_copy(update={"traits": stored})  # after validation: a hash is no email address
    messages: list[Message] = [identify]
    messages += [
        Alias(
            type="alias",
            user_id=survivor,
            previous_id=merged,
            message_id=f"import:alias:{merged}:{survivor}",
            timestamp=now,
            received_at=now,
        )
        for merged in customer.merged_ids
    ]
    return messages

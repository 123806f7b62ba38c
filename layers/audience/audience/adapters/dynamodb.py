"""Profiles in the single DynamoDB table.

Keys: ``pk = CUSTOMER#<id>``, ``sk = PROFILE`` for a customer's hot item, or for a retired id
the redirect to its customer (``mergedInto``); the customer's month pages beside it
(``profile_items`` says what goes where). Segment membership: a profile carries the id of
its learned segment in ``gsi1pk``, its RFM cell in ``gsi2pk`` and its tier in ``gsi3pk``, each
the partition key of a keys-only index (``bySegment``, ``byRfm``, ``byTier``) sorted by
``customerId``; the keys are set only for customers who allow personalization, so the indexes
list exactly the members an activation may use.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from botocore.exceptions import ClientError

from audience.adapters.aws import as_transient, client, error_code
from audience.adapters.profile_items import (
    BOOKKEEPING,
    FLUSH_BYTES,
    PARTS,
    PROFILE_SK,
    SERIALIZER,
    Stored,
    assemble,
    bookkeeping,
    changes,
    page_key,
    page_number,
    paged,
    serialize,
    size,
    split,
)
from audience.domain.errors import ConcurrentUpdate, TransientError
from audience.domain.privacy import AuditEntry
from audience.domain.profile import Profile

logger = logging.getLogger(__name__)

_BATCH_GET_LIMIT = 100
MAX_PAGE_PROBES = 20


@dataclass
class StoreStats:
    """What the store cost: requests sent, retries botocore made, capacity DynamoDB reported."""

    requests: int = 0
    retries: int = 0
    read_units: float = 0.0
    write_units: float = 0.0

    def reset(self) -> None:
        """Start counting afresh (each invocation reports its own)."""
        self.requests, self.retries, self.read_units, self.write_units = 0, 0, 0.0, 0.0


def customer_pk(customer_id: str) -> dict[str, Any]:
    return {"S": f"CUSTOMER#{customer_id}"}


def profile_key(customer_id: str) -> dict[str, Any]:
    return {"pk": customer_pk(customer_id), "sk": {"S": PROFILE_SK}}


# segment kind -> (index, its partition key attribute); every index is sorted by customerId
INDEXES = {"learned": ("bySegment", "gsi1pk"), "rfm": ("byRfm", "gsi2pk"), "tier": ("byTier", "gsi3pk")}


# What placing a customer changes (``Profile`` field names): the retrain's placement writes these
# attributes of the hot item, the membership index keys, the version and the page bookkeeping
# (the segment change goes to ``pending`` or a page), and nothing else.
PLACEMENT_FIELDS = ("segments", "tier", "predictions", "segment_history", "outbox")


def to_item(profile: Profile, bookkeeping: dict[str, Any] | None = None) -> dict[str, Any]:
    """The hot item of ``profile`` (what grows is in ``bookkeeping["pending"]`` or in pages; see
    ``profile_items``)."""
    document, _ = split(profile)
    document.update(_index_keys(profile))
    document.update({k: v for k, v in (bookkeeping or {}).items() if v})
    return {**serialize(document), **profile_key(profile.customer_id)}


def to_items(profile: Profile) -> list[dict[str, Any]]:
    """Every item of ``profile`` as a first write would leave them: its hot item and its pages."""
    _, entries = split(profile)
    if size(entries) <= FLUSH_BYTES:
        return [to_item(profile, {"pending": entries})]
    pages = paged(entries)
    page_items = [{**serialize(content), "pk": customer_pk(profile.customer_id), "sk": {"S": page_key(n)}}
                  for n, content in enumerate(pages, start=1)]  # fmt: skip
    return [to_item(profile, {"pages": len(pages)}), *page_items]


def _index_keys(profile: Profile) -> dict[str, str]:
    """The membership index attributes the profile carries (none for a customer who refused personalization)."""
    if not profile.personalization_allowed:
        return {}
    return {INDEXES[segment.split(":", 1)[0]][1]: segment for segment in profile.segment_ids()}


def placement_update(profile: Profile, bookkeeping: dict[str, Any] | None = None) -> dict[str, Any]:
    """The conditional ``UpdateItem`` that stores ``profile``'s placement (``PLACEMENT_FIELDS``, the
    membership index keys and the page ``bookkeeping``, each set as ``to_item`` would store it, or
    removed where ``to_item`` would leave it out), with its version bumped, only if the stored
    version is still ``profile.version``: what a retrain's move sends instead of the whole item."""
    document, _ = split(profile)
    document.update(_index_keys(profile))
    document.update({k: v for k, v in (bookkeeping or {}).items() if v})
    grows = {part.alias for part in PARTS}
    aliases = [a for a in (Profile.model_fields[f].alias or f for f in PLACEMENT_FIELDS) if a not in grows]
    names = [*aliases, *(attribute for _, attribute in INDEXES.values()), *BOOKKEEPING]
    placeholders = {f"#{name}": name for name in [*names, "version"]}
    update = "SET " + ", ".join(["#version = #version + :one", *(f"#{n} = :{n}" for n in names if n in document)])
    if removed := [f"#{n}" for n in names if n not in document]:
        update += " REMOVE " + ", ".join(removed)
    values = {f":{name}": SERIALIZER.serialize(document[name]) for name in names if name in document}
    return {
        "UpdateExpression": update,
        "ConditionExpression": "#version = :expected",
        "ExpressionAttributeNames": placeholders,
        "ExpressionAttributeValues": {**values, ":one": {"N": "1"}, ":expected": {"N": str(profile.version)}},
    }


def from_item(item: dict[str, Any]) -> Profile:
    """A profile from its hot item alone (or from an item of the one-item shape)."""
    assembled = assemble([item])
    assert assembled is not None, "not a profile item"
    return assembled[0]


class DynamoProfileRepository:
    """Profiles as a hot item and month pages in the customer's partition (``profile_items``).
    A profile is read with one ``Query`` of its partition; a write sends the hot item and
    updates of the page entries that changed, computed from what the last read found."""

    def __init__(self, table_name: str) -> None:
        self.table_name = table_name
        self.stats = StoreStats()
        self._read: dict[str, tuple[int, Stored]] = {}  # customer id -> (version, pages) as last read

    def get(self, customer_id: str) -> Profile | None:
        return self._load(customer_id)

    def get_many(self, customer_ids: Iterable[str]) -> dict[str, Profile]:
        """The profiles of ``customer_ids`` (and redirects), two batched reads a hundred: the hot
        items, then the pages they commit."""
        ids = list(dict.fromkeys(customer_ids))
        hot: list[dict[str, Any]] = []
        for start in range(0, len(ids), _BATCH_GET_LIMIT):
            hot += self.batch_get_items([profile_key(c) for c in ids[start : start + _BATCH_GET_LIMIT]])
        wanted = [{"pk": item["pk"], "sk": {"S": page_key(n)}} for item in hot for n in bookkeeping(item).committed()]
        by_partition: dict[str, list[dict[str, Any]]] = {item["pk"]["S"]: [item] for item in hot}
        for start in range(0, len(wanted), _BATCH_GET_LIMIT):
            for page in self.batch_get_items(wanted[start : start + _BATCH_GET_LIMIT]):
                by_partition[page["pk"]["S"]].append(page)
        found = (self._remember(assemble(items)) for items in by_partition.values())
        return {p.customer_id: p for p in found if p is not None}

    def _load(self, customer_id: str) -> Profile | None:
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": customer_pk(customer_id)},
            "ConsistentRead": True,
        }
        items: list[dict[str, Any]] = []
        while True:
            response = self._call("query", **request)
            self.stats.read_units += _units(response)
            items += response.get("Items", [])
            if "LastEvaluatedKey" not in response:
                break
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return self._remember(assemble(items))

    def _remember(self, assembled: tuple[Profile, Stored] | None) -> Profile | None:
        if assembled is None:
            return None
        profile, stored = assembled
        if len(self._read) > 100_000:  # a long-lived container: forget; a write then reads its pages again
            self._read.clear()
        self._read[profile.customer_id] = (profile.version, stored)
        return profile

    def _stored(self, profile: Profile) -> Stored:
        """The pages as the read that ``profile`` came from found them (read again if unknown)."""
        if profile.version == 0:
            return Stored()
        known = self._read.get(profile.customer_id)
        if known is None or known[0] != profile.version:
            self._load(profile.customer_id)
            known = self._read.get(profile.customer_id)
        return known[1] if known is not None else Stored()

    def scan(self, segment: int, total_segments: int) -> Iterator[Profile]:
        """Every customer's profile (and redirect) in one of ``total_segments`` parallel scan
        segments: all items of a partition come together (DynamoDB scans partition by partition)."""
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "Segment": segment,
            "TotalSegments": total_segments,
            "FilterExpression": "begins_with(pk, :customer)",
            "ExpressionAttributeValues": {":customer": {"S": "CUSTOMER#"}},
        }
        partition: list[dict[str, Any]] = []
        while True:
            response = self._call("scan", **request)
            self.stats.read_units += _units(response)
            for item in response.get("Items", []):
                if partition and partition[0]["pk"] != item["pk"]:
                    if (assembled := assemble(partition)) is not None:
                        yield assembled[0]
                    partition = []
                partition.append(item)
            if "LastEvaluatedKey" not in response:
                break
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        if partition and (assembled := assemble(partition)) is not None:
            yield assembled[0]

    def members(self, segment: str, limit: int, after: str | None = None) -> tuple[list[str], str | None]:
        """Up to ``limit`` customer ids of ``segment`` (a ``kind:slug`` id) in id order, after
        ``after``; and the last id returned when more may follow."""
        request = {**self._segment_query(segment), "Limit": limit}
        if after is not None:
            attribute = INDEXES[segment.split(":", 1)[0]][1]
            request["ExclusiveStartKey"] = {**profile_key(after), "customerId": {"S": after}, attribute: {"S": segment}}
        response = self._call("query", **request)
        ids = [item["customerId"]["S"] for item in response.get("Items", [])]
        return ids, ids[-1] if "LastEvaluatedKey" in response and ids else None

    def count(self, segment: str) -> int:
        """How many customers ``segment`` has (a keys-only count, page by page)."""
        request = {**self._segment_query(segment), "Select": "COUNT"}
        total = 0
        while True:
            response = self._call("query", **request)
            total += int(response.get("Count", 0))
            if "LastEvaluatedKey" not in response:
                return total
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def _segment_query(self, segment: str) -> dict[str, Any]:
        """A query of the membership index that holds ``segment`` (a ``kind:slug`` id)."""
        index, attribute = INDEXES[segment.split(":", 1)[0]]
        return {
            "TableName": self.table_name,
            "IndexName": index,
            "KeyConditionExpression": "#segment = :segment",
            "ExpressionAttributeNames": {"#segment": attribute},
            "ExpressionAttributeValues": {":segment": {"S": segment}},
        }

    def clear_outbox(self, customer_id: str, stored_version: int) -> None:
        response = self._write(
            "update_item",
            TableName=self.table_name,
            Key=profile_key(customer_id),
            UpdateExpression="SET version = version + :one REMOVE outbox",
            ConditionExpression="version = :expected",
            ExpressionAttributeValues={":one": {"N": "1"}, ":expected": {"N": str(stored_version)}},
        )
        self.stats.write_units += _units(response)
        known = self._read.get(customer_id)
        if known is not None and known[0] == stored_version:
            self._read[customer_id] = (stored_version + 1, known[1])

    def place(self, placed: Sequence[Profile]) -> list[str]:
        """One conditional ``UpdateItem`` per profile, of its placement only (``placement_update``;
        the segment change joins ``pending``, or a new page first when that outgrows it): the
        request carries a few hundred bytes, never what grows with the history. Returns the ids
        whose stored version had moved."""
        conflicted: list[str] = []
        for profile in placed:
            bookkeeping, after = self._pages_for(profile)
            try:
                response = self._write("update_item", TableName=self.table_name, Key=profile_key(profile.customer_id),
                                       **placement_update(profile, bookkeeping))  # fmt: skip
            except ConcurrentUpdate:
                conflicted.append(profile.customer_id)
                continue
            self.stats.write_units += _units(response)
            self._committed(profile, after)
        return conflicted

    def save(self, profile: Profile, retired: Sequence[Profile] = ()) -> None:
        """Write the new page a change needs, if any, then the hot item, conditional on its
        version (its ``pages`` count makes the page part of the profile); with the redirects of
        ``retired`` ids in one transaction when identities merge."""
        bookkeeping, after = self._pages_for(profile)
        if retired:
            hot = [{"Put": {"TableName": self.table_name, **_conditional_put(p, b)}}
                   for p, b in ((profile, bookkeeping), *((r, {}) for r in retired))]  # fmt: skip
            response = self._write("transact_write_items", TransactItems=hot)
        else:
            response = self._write("put_item", TableName=self.table_name, **_conditional_put(profile, bookkeeping))
        self.stats.write_units += _units(response)
        self._committed(profile, after)
        for redirect in retired:  # their entries are the survivor's now; a redirect reads none
            self._drop(redirect.customer_id, self._read.pop(redirect.customer_id, (0, Stored()))[1])

    def _pages_for(self, profile: Profile) -> tuple[dict[str, Any], Stored]:
        """The hot item's page bookkeeping for a write of ``profile``, and the pages after it: the
        changes wait in ``pending`` up to ``FLUSH_BYTES``; beyond, they are put as the next
        page(s) now (read only once the hot item counts them), all live entries when the pages
        hold more stale copies than live ones."""
        stored = self._stored(profile)
        _, entries = split(profile)
        pending = changes(entries, stored)
        if size(pending) <= FLUSH_BYTES:
            return {"pending": pending, "pages": stored.pages, "base": stored.base}, stored
        compact = stored.stale()
        content = entries if compact else pending
        number, skip, last = stored.pages + 1, list(stored.skip), 0
        pk = customer_pk(profile.customer_id)
        for page in paged(content):
            for _ in range(MAX_PAGE_PROBES):  # a page left by a write that never committed: the next number
                item = {**serialize(page), "pk": pk, "sk": {"S": page_key(number)}}
                request = {
                    "TableName": self.table_name,
                    "Item": item,
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
                try:
                    response = self._write("put_item", **request)
                    break
                except ConcurrentUpdate:
                    skip.append(number)
                    number += 1
            else:
                raise TransientError(f"no free page number for {profile.customer_id} after {MAX_PAGE_PROBES} tries")
            self.stats.write_units += _units(response)
            last, number = number, number + 1
        after = Stored(entries={**({} if compact else stored.entries), **content}, pages=last,
                       base=stored.pages + 1 if compact else stored.base,
                       skip=[n for n in skip if n > stored.pages] if compact else skip,
                       obsolete=stored.keys() if compact else [])  # fmt: skip
        after.obsolete = [sk for sk in after.obsolete if page_number(sk) < after.base or page_number(sk) in stored.skip]
        after.page_bytes = after.live_bytes if compact else stored.page_bytes + size(content)
        return {"pages": last, "base": after.base, "skip": after.skip}, after

    def _committed(self, profile: Profile, after: Stored) -> None:
        """Remember the pages as the commit of ``profile`` left them; drop what a compaction replaced."""
        self._read[profile.customer_id] = (profile.version + 1, after)
        if after.obsolete:
            self._drop(profile.customer_id, Stored(obsolete=after.obsolete, pages=0))
            after.obsolete = []

    def _drop(self, customer_id: str, stored: Stored) -> None:
        """Delete the pages of ``stored`` (best effort: erasure removes any left)."""
        sks = stored.keys()
        try:
            self.delete_items([{"pk": customer_pk(customer_id), "sk": {"S": sk}} for sk in sks])
        except (TransientError, ClientError) as exc:
            logger.warning("pages of %s left for erasure: %s", customer_id, exc)

    def batch_get_items(self, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The stored items of up to 100 ``keys`` (consistent reads), unprocessed keys retried."""
        items: list[dict[str, Any]] = []
        request: dict[str, Any] = {self.table_name: {"Keys": keys, "ConsistentRead": True}}
        for attempt in range(6):
            response = self._call("batch_get_item", RequestItems=request)
            self.stats.read_units += _units(response)
            items.extend(response["Responses"].get(self.table_name, []))
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return items
            self.stats.retries += 1
            time.sleep(0.05 * 2**attempt)
        raise TransientError("DynamoDB left keys unprocessed after 6 attempts")

    def partition_keys(self, customer_id: str) -> list[dict[str, Any]]:
        """The keys of every item in the customer's partition (its hot item and pages)."""
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": customer_pk(customer_id)},
            "ProjectionExpression": "pk, sk",
        }
        keys: list[dict[str, Any]] = []
        while True:
            response = self._call("query", **request)
            keys += response.get("Items", [])
            if "LastEvaluatedKey" not in response:
                return keys
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def delete_items(self, keys: list[dict[str, Any]]) -> None:
        """Delete ``keys``, 25 to a ``BatchWriteItem``, unprocessed ones retried."""
        for start in range(0, len(keys), 25):
            request = {self.table_name: [{"DeleteRequest": {"Key": k}} for k in keys[start : start + 25]]}
            for attempt in range(6):
                response = self._call("batch_write_item", RequestItems=request)
                self.stats.write_units += _units(response)
                request = response.get("UnprocessedItems") or {}
                if not request:
                    break
                time.sleep(0.05 * 2**attempt)
            else:
                raise TransientError("DynamoDB left deletions unprocessed after 6 attempts")

    def _write(self, operation: str, **request: Any) -> dict[str, Any]:
        try:
            return self._call(operation, **request)
        except ClientError as exc:
            if _lost_condition(exc):
                raise ConcurrentUpdate(f"an item changed since it was read ({error_code(exc)})") from exc
            if error_code(exc) == "TransactionCanceledException":
                raise TransientError(f"transaction cancelled: {_cancellation_reasons(exc)}") from exc
            raise

    def _call(self, operation: str, **request: Any) -> dict[str, Any]:
        self.stats.requests += 1
        try:
            response: dict[str, Any] = getattr(client("dynamodb"), operation)(ReturnConsumedCapacity="TOTAL", **request)
        except ClientError as exc:
            raise as_transient(exc) from exc
        self.stats.retries += int(response.get("ResponseMetadata", {}).get("RetryAttempts", 0))
        return response


def _conditional_put(profile: Profile, bookkeeping: dict[str, Any] | None = None) -> dict[str, Any]:
    """Put the hot item of ``profile`` with its version bumped, only if the stored version is
    the one it was read at."""
    stored = profile.model_copy(update={"version": profile.version + 1})
    if profile.version == 0:  # never stored: two writers creating the same item must not both win
        return {"Item": to_item(stored, bookkeeping), "ConditionExpression": "attribute_not_exists(pk)"}
    return {
        "Item": to_item(stored, bookkeeping),
        "ConditionExpression": "version = :expected",
        "ExpressionAttributeValues": {":expected": {"N": str(profile.version)}},
    }


def _units(response: dict[str, Any]) -> float:
    consumed = response.get("ConsumedCapacity") or []
    entries = consumed if isinstance(consumed, list) else [consumed]
    return sum(float(entry.get("CapacityUnits", 0)) for entry in entries)


class DynamoModelRegistry:
    """The active model's version: one item (``pk = MODEL#segments``, ``sk = ACTIVE``) in the table."""

    KEY: ClassVar[dict[str, Any]] = {"pk": {"S": "MODEL#segments"}, "sk": {"S": "ACTIVE"}}

    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    def active(self) -> str | None:
        try:
            item = client("dynamodb").get_item(TableName=self.table_name, Key=self.KEY, ConsistentRead=True).get("Item")
        except ClientError as exc:
            raise as_transient(exc) from exc
        return item["version"]["S"] if item else None

    def activate(self, version: str, reason: str, at: datetime) -> None:
        """Point at ``version`` and append the change to the audit trail (subject ``model``), at once."""
        item = {**self.KEY, "version": {"S": version}, "reason": {"S": reason}, "at": {"S": at.isoformat()}}
        previous = self.active()
        if previous:
            item["previous"] = {"S": previous}
        entry = AuditEntry(subject="model", at=at, action="model.activated", actor="retrain function",
                           details={"version": version, "previous": previous, "reason": reason})  # fmt: skip
        actions = [{"Put": {"TableName": self.table_name, "Item": item}},
                   {"Put": {"TableName": self.table_name, "Item": _audit_item(entry)}}]  # fmt: skip
        try:
            client("dynamodb").transact_write_items(TransactItems=actions)
        except ClientError as exc:
            raise as_transient(exc) from exc


class DynamoPrivacy:
    """Suppression records (``pk = SUPPRESSED#<pseudonym>``) and the audit trail
    (``pk = AUDIT#<subject>``, ``sk = <time>#<entry id>``, written only if new) in the table."""

    def __init__(self, table_name: str) -> None:
        self.table_name = table_name
        self._items = DynamoProfileRepository(table_name)  # batched reads, retried as for profiles

    def record(self, entry: AuditEntry) -> None:
        self._call("put_item", TableName=self.table_name, Item=_audit_item(entry),
                   ConditionExpression="attribute_not_exists(pk)")  # fmt: skip

    def entries(self, subject: str) -> list[AuditEntry]:
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :subject",
            "ExpressionAttributeValues": {":subject": {"S": f"AUDIT#{subject}"}},
        }
        found: list[AuditEntry] = []
        while True:
            response = self._call("query", **request)
            found += [AuditEntry.model_validate_json(item["entry"]["S"]) for item in response.get("Items", [])]
            if "LastEvaluatedKey" not in response:
                return found
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def erase(self, customer_id: str, redirects: Sequence[str], pseudonyms: Sequence[str], entry: AuditEntry) -> None:
        """The pages of the customer and of its merged ids first (a retry finds the rest), then
        in one transaction their hot items, the suppression records and the audit entry."""
        pages = [
            k for c in (customer_id, *redirects) for k in self._items.partition_keys(c) if k["sk"]["S"] != PROFILE_SK
        ]
        self._items.delete_items(pages)
        actions: list[dict[str, Any]] = [
            {
                "Delete": {
                    "TableName": self.table_name,
                    "Key": profile_key(customer_id),
                    "ConditionExpression": "attribute_exists(pk)",
                }
            },
            *({"Delete": {"TableName": self.table_name, "Key": profile_key(r)}} for r in redirects),
            *(
                {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": {**_suppression_key(p), "at": {"S": entry.at.isoformat()}},
                    }
                }
                for p in pseudonyms
            ),
            {"Put": {"TableName": self.table_name, "Item": _audit_item(entry)}},
        ]
        self._call("transact_write_items", TransactItems=actions)

    def suppressed(self, pseudonyms: Iterable[str]) -> set[str]:
        wanted = list(dict.fromkeys(pseudonyms))
        found: set[str] = set()
        for start in range(0, len(wanted), _BATCH_GET_LIMIT):
            keys = [_suppression_key(p) for p in wanted[start : start + _BATCH_GET_LIMIT]]
            found |= {i["pk"]["S"].removeprefix("SUPPRESSED#") for i in self._items.batch_get_items(keys)}
        return found

    def lift(self, pseudonyms: Sequence[str]) -> None:
        for p in pseudonyms:
            self._call("delete_item", TableName=self.table_name, Key=_suppression_key(p))

    def _call(self, operation: str, **request: Any) -> dict[str, Any]:
        try:
            response: dict[str, Any] = getattr(client("dynamodb"), operation)(**request)
        except ClientError as exc:
            if _lost_condition(exc):
                raise ConcurrentUpdate(f"an item changed or is gone ({error_code(exc)})") from exc
            raise as_transient(exc) from exc
        return response


def _cancellation_reasons(exc: ClientError) -> list[str | None]:
    return [r.get("Code") for r in exc.response.get("CancellationReasons", [])]


def _lost_condition(exc: ClientError) -> bool:
    """A conditional write (alone or in a transaction) found the item changed."""
    return error_code(exc) == "ConditionalCheckFailedException" or "ConditionalCheckFailed" in _cancellation_reasons(
        exc
    )


def _suppression_key(pseudonym: str) -> dict[str, Any]:
    return {"pk": {"S": f"SUPPRESSED#{pseudonym}"}, "sk": {"S": "SUPPRESSED"}}


def _audit_item(entry: AuditEntry) -> dict[str, Any]:
    return {
        "pk": {"S": f"AUDIT#{entry.subject}"},
        "sk": {"S": f"{entry.at.isoformat()}#{entry.entry_id}"},
        "entry": {"S": entry.model_dump_json(by_alias=True)},
    }

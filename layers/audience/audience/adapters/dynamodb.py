"""Profiles in the single DynamoDB table.

Keys: ``pk = CUSTOMER#<id>``, ``sk = PROFILE`` for a customer's profile, or for a retired id
the redirect to its customer (``mergedInto``). Segment membership: a profile carries the id of
its learned segment in ``gsi1pk``, its RFM cell in ``gsi2pk`` and its tier in ``gsi3pk``, each
the partition key of a keys-only index (``bySegment``, ``byRfm``, ``byTier``) sorted by
``customerId``; the keys are set only for customers who allow personalization, so the indexes
list exactly the members an activation may use.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from audience.adapters.aws import as_transient, client, error_code
from audience.domain.errors import ConcurrentUpdate, TransientError
from audience.domain.privacy import AuditEntry
from audience.domain.profile import Profile

_BATCH_GET_LIMIT = 100
_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()
PROFILE_SK = "PROFILE"


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


DYNAMO_SMALLEST = Decimal("1e-130")


def profile_key(customer_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"CUSTOMER#{customer_id}"}, "sk": {"S": PROFILE_SK}}


# segment kind -> (index, its partition key attribute); every index is sorted by customerId
INDEXES = {"learned": ("bySegment", "gsi1pk"), "rfm": ("byRfm", "gsi2pk"), "tier": ("byTier", "gsi3pk")}


# What placing a customer changes (``Profile`` field names): the retrain's placement writes these
# attributes, the membership index keys and the version, and nothing else of the item.
PLACEMENT_FIELDS = ("segments", "tier", "predictions", "segment_history", "outbox")


def to_item(profile: Profile) -> dict[str, Any]:
    plain = json.loads(profile.model_dump_json(by_alias=True, exclude_defaults=True), parse_float=_number)
    plain["version"] = profile.version
    plain.update(_index_keys(profile))
    item = {name: _SERIALIZER.serialize(value) for name, value in plain.items()}
    return {**item, **profile_key(profile.customer_id)}


def _index_keys(profile: Profile) -> dict[str, str]:
    """The membership index attributes the profile carries (none for a customer who refused personalization)."""
    if not profile.personalization_allowed:
        return {}
    return {INDEXES[segment.split(":", 1)[0]][1]: segment for segment in profile.segment_ids()}


def placement_update(profile: Profile) -> dict[str, Any]:
    """The conditional ``UpdateItem`` that stores ``profile``'s placement (``PLACEMENT_FIELDS`` and
    the membership index keys, each set as ``to_item`` would store it, or removed where
    ``to_item`` would leave it out), with its version bumped, only if the stored version is
    still ``profile.version``: what a retrain's move sends instead of the whole item."""
    include = set(PLACEMENT_FIELDS)
    plain = json.loads(profile.model_dump_json(by_alias=True, exclude_defaults=True, include=include),
                       parse_float=_number)  # fmt: skip
    plain.update(_index_keys(profile))
    aliases = [Profile.model_fields[f].alias or f for f in PLACEMENT_FIELDS]
    names = [*aliases, *(attribute for _, attribute in INDEXES.values())]
    placeholders = {f"#{name}": name for name in [*names, "version"]}
    update = "SET " + ", ".join(["#version = #version + :one", *(f"#{n} = :{n}" for n in names if n in plain)])
    if removed := [f"#{n}" for n in names if n not in plain]:
        update += " REMOVE " + ", ".join(removed)
    values = {f":{name}": _SERIALIZER.serialize(plain[name]) for name in names if name in plain}
    return {
        "UpdateExpression": update,
        "ConditionExpression": "#version = :expected",
        "ExpressionAttributeNames": placeholders,
        "ExpressionAttributeValues": {**values, ":one": {"N": "1"}, ":expected": {"N": str(profile.version)}},
    }


def _number(text: str) -> Decimal:
    """A JSON number as DynamoDB stores it: one smaller in magnitude than 1e-130 is zero (it would
    be refused with "Number underflow")."""
    number = Decimal(text)
    return number if abs(number) >= DYNAMO_SMALLEST else Decimal(0)


def from_item(item: dict[str, Any]) -> Profile:
    keys = {"pk", "sk", *(attribute for _, attribute in INDEXES.values())}
    plain = {name: _DESERIALIZER.deserialize(value) for name, value in item.items() if name not in keys}
    return Profile.model_validate(plain)


class DynamoProfileRepository:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name
        self.stats = StoreStats()

    def get(self, customer_id: str) -> Profile | None:
        response = self._call("get_item", TableName=self.table_name, Key=profile_key(customer_id), ConsistentRead=True)
        self.stats.read_units += _units(response)
        return from_item(response["Item"]) if "Item" in response else None

    def get_many(self, customer_ids: Iterable[str]) -> dict[str, Profile]:
        ids = list(dict.fromkeys(customer_ids))
        found: dict[str, Profile] = {}
        for start in range(0, len(ids), _BATCH_GET_LIMIT):
            keys = [profile_key(c) for c in ids[start : start + _BATCH_GET_LIMIT]]
            for item in self.batch_get_items(keys):
                profile = from_item(item)
                found[profile.customer_id] = profile
        return found

    def scan(self, segment: int, total_segments: int) -> Iterator[Profile]:
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "Segment": segment,
            "TotalSegments": total_segments,
            "FilterExpression": "sk = :profile",
            "ExpressionAttributeValues": {":profile": {"S": PROFILE_SK}},
        }
        while True:
            response = self._call("scan", **request)
            self.stats.read_units += _units(response)
            yield from (from_item(item) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

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
        self._write(
            "update_item",
            TableName=self.table_name,
            Key=profile_key(customer_id),
            UpdateExpression="SET version = version + :one REMOVE outbox",
            ConditionExpression="version = :expected",
            ExpressionAttributeValues={":one": {"N": "1"}, ":expected": {"N": str(stored_version)}},
        )

    def place(self, placed: Sequence[Profile]) -> list[str]:
        """One conditional ``UpdateItem`` per profile, of its placement only (``placement_update``):
        the request carries a few hundred bytes to a few KB, never the whole item (its ledger,
        day buckets, products). DynamoDB still bills a write by the item's full size (the larger of
        before and after), as for a put. Returns the ids whose stored version had moved."""
        conflicted: list[str] = []
        for profile in placed:
            try:
                response = self._write("update_item", TableName=self.table_name, Key=profile_key(profile.customer_id),
                                       **placement_update(profile))  # fmt: skip
            except ConcurrentUpdate:
                conflicted.append(profile.customer_id)
                continue
            self.stats.write_units += _units(response)
        return conflicted

    def save(self, profile: Profile, retired: Sequence[Profile] = ()) -> None:
        """One conditional put; a transaction when retired ids change with the profile."""
        if not retired:
            response = self._write("put_item", TableName=self.table_name, **_conditional_put(profile))
            self.stats.write_units += _units(response)
            return
        actions = [{"Put": {"TableName": self.table_name, **_conditional_put(p)}} for p in (profile, *retired)]
        response = self._write("transact_write_items", TransactItems=actions)
        self.stats.write_units += _units(response)

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


def _conditional_put(profile: Profile) -> dict[str, Any]:
    """Put ``profile`` with its version bumped, only if the stored version is the one it was read at."""
    stored = profile.model_copy(update={"version": profile.version + 1})
    if profile.version == 0:  # never stored: two writers creating the same item must not both win
        return {"Item": to_item(stored), "ConditionExpression": "attribute_not_exists(pk)"}
    return {
        "Item": to_item(stored),
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

"""One DynamoDB table, as every adapter of it talks to it: each request counted with the capacity
DynamoDB reports (``StoreStats``), result pages followed, unprocessed batch keys retried, a lost
condition named ``ConcurrentUpdate`` and throttling ``TransientError``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from audience.adapters.aws import as_transient, client, error_code
from audience.domain.errors import ConcurrentUpdate, TransientError

BATCH_GET_LIMIT, BATCH_WRITE_LIMIT = 100, 25
BATCH_ATTEMPTS = 6
READS = frozenset({"get_item", "query", "scan", "batch_get_item"})


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


class Table:
    def __init__(self, name: str, stats: StoreStats | None = None) -> None:
        self.name = name
        self.stats = stats or StoreStats()

    def call(self, operation: str, **request: Any) -> dict[str, Any]:
        """One request, counted; throttling and server faults raised as ``TransientError``."""
        self.stats.requests += 1
        try:
            response: dict[str, Any] = getattr(client("dynamodb"), operation)(ReturnConsumedCapacity="TOTAL", **request)
        except ClientError as exc:
            raise as_transient(exc) from exc
        self.stats.retries += int(response.get("ResponseMetadata", {}).get("RetryAttempts", 0))
        consumed = response.get("ConsumedCapacity") or []
        units = sum(float(e.get("CapacityUnits", 0)) for e in (consumed if isinstance(consumed, list) else [consumed]))
        if operation in READS:
            self.stats.read_units += units
        else:
            self.stats.write_units += units
        return response

    def write(self, operation: str, **request: Any) -> dict[str, Any]:
        """A (conditional) write: ``ConcurrentUpdate`` when its condition failed, a transaction
        cancelled for another reason is ``TransientError``."""
        try:
            return self.call(operation, **request)
        except ClientError as exc:
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if error_code(exc) == "ConditionalCheckFailedException" or "ConditionalCheckFailed" in reasons:
                raise ConcurrentUpdate(f"an item changed or is gone ({error_code(exc)})") from exc
            if error_code(exc) == "TransactionCanceledException":
                raise TransientError(f"transaction cancelled: {reasons}") from exc
            raise

    def pages(self, operation: str, **request: Any) -> Iterator[dict[str, Any]]:
        """Every response of a ``query`` or ``scan``, following ``LastEvaluatedKey``."""
        while True:
            response = self.call(operation, TableName=self.name, **request)
            yield response
            if "LastEvaluatedKey" not in response:
                return
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def partition(self, pk: dict[str, Any], **options: Any) -> list[dict[str, Any]]:
        """Every item of partition ``pk`` (``options``: e.g. a projection, a consistent read)."""
        key = {"KeyConditionExpression": "pk = :pk", "ExpressionAttributeValues": {":pk": pk}}
        return [item for response in self.pages("query", **key, **options) for item in response.get("Items", [])]

    def batch_get(self, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The stored items of ``keys`` (consistent reads), a hundred to a request."""
        items: list[dict[str, Any]] = []
        for start in range(0, len(keys), BATCH_GET_LIMIT):
            request = {self.name: {"Keys": keys[start : start + BATCH_GET_LIMIT], "ConsistentRead": True}}
            for response in self._until_processed("batch_get_item", "UnprocessedKeys", request):
                items += response["Responses"].get(self.name, [])
        return items

    def delete(self, keys: list[dict[str, Any]]) -> None:
        """Delete ``keys``, 25 to a ``BatchWriteItem``."""
        for start in range(0, len(keys), BATCH_WRITE_LIMIT):
            request = {self.name: [{"DeleteRequest": {"Key": k}} for k in keys[start : start + BATCH_WRITE_LIMIT]]}
            list(self._until_processed("batch_write_item", "UnprocessedItems", request))

    def _until_processed(self, operation: str, unprocessed: str, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Each response of a batch request, sent again with what DynamoDB left unprocessed."""
        for attempt in range(BATCH_ATTEMPTS):
            response = self.call(operation, RequestItems=request)
            yield response
            request = response.get(unprocessed) or {}
            if not request:
                return
            self.stats.retries += 1
            time.sleep(0.05 * 2**attempt)
        raise TransientError(f"DynamoDB left items unprocessed after {BATCH_ATTEMPTS} attempts ({operation})")

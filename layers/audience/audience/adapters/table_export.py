"""The profile table's exports to S3 (``ExportTableToPointInTime``: reads no capacity), and the
profiles read back from an export's items."""

from __future__ import annotations

import base64
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from botocore.exceptions import ClientError

from audience.adapters.aws import as_transient, client
from audience.adapters.profile_items import assemble
from audience.domain.profile import Profile


class DynamoTableExports:
    """Full exports of the table (DynamoDB JSON, gzip) to the data bucket; needs point-in-time recovery."""

    def __init__(self, table_name: str, bucket: str) -> None:
        self.table_name, self.bucket = table_name, bucket

    def start(self, prefix: str) -> str:
        try:
            arn = client("dynamodb").describe_table(TableName=self.table_name)["Table"]["TableArn"]
            response = client("dynamodb").export_table_to_point_in_time(
                TableArn=arn, S3Bucket=self.bucket, S3Prefix=prefix.rstrip("/"), ExportFormat="DYNAMODB_JSON"
            )
        except ClientError as exc:
            raise as_transient(exc) from exc
        return str(response["ExportDescription"]["ExportArn"])

    def status(self, export: str) -> str:
        """``IN_PROGRESS``, ``COMPLETED`` or ``FAILED``."""
        try:
            return str(client("dynamodb").describe_export(ExportArn=export)["ExportDescription"]["ExportStatus"])
        except ClientError as exc:
            raise as_transient(exc) from exc


class ExportedProfiles:
    """The profiles of an export, for the jobs that only read (``scan``): every item of the
    export is read once (all scan segments share it) and a customer's items are put together as
    the table's reader does. Holds the export's items in memory while the job runs."""

    def __init__(self, items: Callable[[], Iterable[dict[str, Any]]]) -> None:
        self._items, self._lock = items, threading.Lock()
        self._partitions: dict[str, list[dict[str, Any]]] | None = None

    def scan(self, segment: int, total_segments: int) -> Iterator[Profile]:
        for pk, items in self._by_partition().items():
            if zlib.crc32(pk.encode()) % total_segments == segment and (assembled := assemble(items)) is not None:
                yield assembled[0]

    def _by_partition(self) -> dict[str, list[dict[str, Any]]]:
        with self._lock:
            if self._partitions is None:
                partitions: dict[str, list[dict[str, Any]]] = {}
                for exported in self._items():
                    item = {name: _client_value(value) for name, value in exported.items()}
                    pk = item["pk"]["S"]
                    if pk.startswith("CUSTOMER#"):
                        partitions.setdefault(pk, []).append(item)
                self._partitions = partitions
            return self._partitions


def _client_value(value: dict[str, Any]) -> dict[str, Any]:
    """An attribute as the export writes it (DynamoDB JSON: binaries in base64) as boto3's client
    returns it (binaries as bytes)."""
    ((kind, inner),) = value.items()
    if kind == "B":
        return {"B": base64.b64decode(inner)}
    if kind == "BS":
        return {"BS": [base64.b64decode(v) for v in inner]}
    if kind == "M":
        return {"M": {k: _client_value(v) for k, v in inner.items()}}
    if kind == "L":
        return {"L": [_client_value(v) for v in inner]}
    return value

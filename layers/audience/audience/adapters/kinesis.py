"""The event stream: validated messages onto Kinesis, keyed by customer."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

from audience.adapters.aws import as_transient, client
from audience.domain.errors import TransientError
from audience.domain.events import Message, message_to_json

_MAX_RECORDS_PER_CALL = 500  # PutRecords limit
_ATTEMPTS = 4


class KinesisEventSink:
    def __init__(self, stream_name: str) -> None:
        self.stream_name = stream_name

    def publish(self, messages: Sequence[Message]) -> None:
        records: list[dict[str, Any]] = [{"Data": message_to_json(m), "PartitionKey": m.customer_id} for m in messages]
        for start in range(0, len(records), _MAX_RECORDS_PER_CALL):
            self._put_all(records[start : start + _MAX_RECORDS_PER_CALL])

    def _put_all(self, records: list[dict[str, Any]]) -> None:
        """PutRecords can accept some records and refuse others; resend only the refused ones."""
        pending = records
        for attempt in range(_ATTEMPTS):
            try:
                response = client("kinesis").put_records(StreamName=self.stream_name, Records=pending)
            except ClientError as exc:
                raise as_transient(exc) from exc
            if not response.get("FailedRecordCount"):
                return
            pending = [r for r, result in zip(pending, response["Records"], strict=True) if "ErrorCode" in result]
            time.sleep(0.05 * 2**attempt)
        raise TransientError(f"Kinesis refused {len(pending)} record(s) after {_ATTEMPTS} attempts")

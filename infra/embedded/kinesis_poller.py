"""Lambda's Kinesis event source mapping, in process.

For each mapping of the deployed stack (its BatchSize, MaximumBatchingWindowInSeconds,
ParallelizationFactor, StartingPosition, retries, bisection and on-failure destination as the
template set them), one thread per shard reads records and hands each to one of the shard's
``ParallelizationFactor`` lanes by its partition key (so one key's records stay in order, in
one lane), and each lane invokes the function with Lambda's Kinesis event shape, with Lambda's
semantics:

- a lane gathers records until it holds ``BatchSize`` of them or the batching window has
  passed since its first one (with no window, whatever is there);

- a ``batchItemFailures`` response checkpoints before the lowest failed sequence number and
  re-delivers from there; a function error re-delivers the whole batch, split in two first
  when ``BisectBatchOnFunctionError`` is on (splitting does not use up a retry);
- after ``MaximumRetryAttempts`` the batch's description goes to the on-failure destination
  (SQS) and the shard moves on, so one bad record never blocks it.
"""

from __future__ import annotations

import base64
import json
import logging
import queue
import threading
import time
import uuid
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3

from embedded.deploy import DeployedStack
from embedded.runtime import FunctionError, LambdaRuntime
from embedded.workers import Workers

log = logging.getLogger(__name__)
IDLE_POLL_SECONDS = 0.1


@dataclass(frozen=True)
class KinesisMapping:
    function_arn: str
    stream_arn: str
    batch_size: int
    starting_position: str
    maximum_retry_attempts: int  # -1: until the record expires
    bisect_on_error: bool
    reports_item_failures: bool
    on_failure_destination: str | None
    batching_window: float = 0.0  # seconds
    parallelization: int = 1  # concurrent batches per shard


def mappings_from_stack(session: boto3.session.Session, stack: DeployedStack) -> list[KinesisMapping]:
    lambda_client = session.client("lambda")
    mappings = []
    for name in stack.functions.values():
        for m in lambda_client.list_event_source_mappings(FunctionName=name)["EventSourceMappings"]:
            if ":kinesis:" not in m["EventSourceArn"] or m.get("State", "Enabled") != "Enabled":
                continue
            mappings.append(
                KinesisMapping(
                    function_arn=m["FunctionArn"],
                    stream_arn=m["EventSourceArn"],
                    batch_size=int(m.get("BatchSize", 100)),
                    starting_position=m.get("StartingPosition", "LATEST"),
                    maximum_retry_attempts=int(m.get("MaximumRetryAttempts", -1)),
                    bisect_on_error=bool(m.get("BisectBatchOnFunctionError", False)),
                    reports_item_failures="ReportBatchItemFailures" in m.get("FunctionResponseTypes", []),
                    on_failure_destination=m.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination"),
                    batching_window=float(m.get("MaximumBatchingWindowInSeconds") or 0),
                    parallelization=int(m.get("ParallelizationFactor") or 1),
                )
            )
    return mappings


class KinesisPoller(Workers):
    def __init__(self, session: boto3.session.Session, runtime: LambdaRuntime, mappings: list[KinesisMapping]) -> None:
        super().__init__()
        self.session, self.runtime, self.mappings = session, runtime, mappings

    def start(self) -> None:
        kinesis = self.session.client("kinesis")
        for mapping in self.mappings:
            stream_name = mapping.stream_arn.split("/", 1)[1]
            for shard in kinesis.list_shards(StreamName=stream_name)["Shards"]:
                reader = ShardReader(self.session, self.runtime, mapping, stream_name, shard["ShardId"], self._stop)
                for number, lane in enumerate(reader.lanes):
                    self.spawn(f"kinesis-{shard['ShardId']}-{number}", lane.run)
                self.spawn(f"kinesis-{shard['ShardId']}", reader.run)


class ShardReader:
    def __init__(
        self,
        session: boto3.session.Session,
        runtime: LambdaRuntime,
        mapping: KinesisMapping,
        stream_name: str,
        shard_id: str,
        stop: threading.Event,
    ) -> None:
        self.kinesis: Any = session.client("kinesis")
        self.sqs: Any = session.client("sqs")
        self.runtime, self.mapping, self.stream_name, self.shard_id, self.stop = (
            runtime,
            mapping,
            stream_name,
            shard_id,
            stop,
        )
        self.lanes = [Lane(self) for _ in range(max(1, mapping.parallelization))]

    def run(self) -> None:
        iterator = self.kinesis.get_shard_iterator(
            StreamName=self.stream_name, ShardId=self.shard_id, ShardIteratorType=self.mapping.starting_position
        )["ShardIterator"]
        while not self.stop.is_set() and iterator:
            try:
                response = self.kinesis.get_records(ShardIterator=iterator, Limit=self.mapping.batch_size)
            except Exception:  # the local AWS went away (shutdown) or hiccuped: try again shortly
                log.exception("get_records failed on %s", self.shard_id)
                self.stop.wait(1)
                continue
            iterator = response.get("NextShardIterator")
            for record in response["Records"]:
                lane = self.lanes[zlib.crc32(record["PartitionKey"].encode()) % len(self.lanes)]
                lane.put(self._event_record(record))
            if not response["Records"]:
                self.stop.wait(IDLE_POLL_SECONDS)

    def deliver(self, batch: list[dict[str, Any]]) -> None:
        """Invoke until the batch succeeds, is split, or runs out of retries."""
        pending = [batch]
        while pending:
            records = pending.pop(0)
            for attempt in range(self._attempts()):
                if self.stop.is_set():
                    return  # the stack is stopping: nothing is given up on
                failed, function_error = self._invoke(records)
                if not failed:
                    break
                if function_error and self.mapping.bisect_on_error and len(records) > 1:
                    middle = len(records) // 2
                    pending[:0] = [records[:middle], records[middle:]]
                    break
                records = failed
                self.stop.wait(min(0.05 * 2**attempt, 2))
            else:
                self._send_to_destination(records, attempts=self._attempts())

    def _attempts(self) -> int:
        retries = self.mapping.maximum_retry_attempts
        return 10_000 if retries < 0 else retries + 1

    def _invoke(self, records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], bool]:
        """Returns the records to re-deliver (none on success) and whether the function raised."""
        try:
            response = self.runtime.invoke(self.mapping.function_arn, {"Records": records})
        except FunctionError as exc:  # (its traceback is in the function's log)
            log.warning("a batch of %d records failed: %s", len(records), exc)
            return records, True
        if not self.mapping.reports_item_failures or not isinstance(response, dict):
            return [], False
        failures = response.get("batchItemFailures") or []
        sequence_numbers = [r["kinesis"]["sequenceNumber"] for r in records]
        failed_ids = [f.get("itemIdentifier") for f in failures if isinstance(f, dict)]
        if len(failed_ids) != len(failures) or any(i not in sequence_numbers for i in failed_ids):
            return records, False  # Lambda treats an unreadable failure report as a failed batch
        if not failed_ids:
            return [], False
        checkpoint = min(sequence_numbers.index(i) for i in failed_ids)
        return records[checkpoint:], False

    def _send_to_destination(self, records: list[dict[str, Any]], attempts: int) -> None:
        destination = self.mapping.on_failure_destination
        log.error("discarding %d records of %s after %d attempts", len(records), self.shard_id, attempts)
        if not destination:
            return
        first, last = records[0]["kinesis"], records[-1]["kinesis"]
        invocation_record = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": self.mapping.function_arn,
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": attempts,
            },
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(),
            "KinesisBatchInfo": {
                "shardId": self.shard_id,
                "startSequenceNumber": first["sequenceNumber"],
                "endSequenceNumber": last["sequenceNumber"],
                "approximateArrivalOfFirstRecord": _arrival(first),
                "approximateArrivalOfLastRecord": _arrival(last),
                "batchSize": len(records),
                "streamArn": self.mapping.stream_arn,
            },
        }
        queue_url = self.sqs.get_queue_url(QueueName=destination.rsplit(":", 1)[1])["QueueUrl"]
        self.sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(invocation_record))

    def _event_record(self, record: dict[str, Any]) -> dict[str, Any]:
        region = self.mapping.stream_arn.split(":")[3]
        return {
            "kinesis": {
                "kinesisSchemaVersion": "1.0",
                "partitionKey": record["PartitionKey"],
                "sequenceNumber": record["SequenceNumber"],
                "data": base64.b64encode(record["Data"]).decode(),
                "approximateArrivalTimestamp": record["ApproximateArrivalTimestamp"].timestamp(),
            },
            "eventSource": "aws:kinesis",
            "eventVersion": "1.0",
            "eventID": f"{self.shard_id}:{record['SequenceNumber']}",
            "eventName": "aws:kinesis:record",
            "invokeIdentityArn": f"arn:aws:iam::{self.mapping.function_arn.split(':')[4]}:role/embedded",
            "awsRegion": region,
            "eventSourceARN": self.mapping.stream_arn,
        }


class Lane:
    """One of a shard's concurrent batches: gathers its records and delivers them in order."""

    def __init__(self, reader: ShardReader) -> None:
        self.reader, self.mapping = reader, reader.mapping
        self.records: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=2 * self.mapping.batch_size)

    def put(self, record: dict[str, Any]) -> None:
        while not self.reader.stop.is_set():  # a full lane holds the shard back (no reading ahead)
            try:
                self.records.put(record, timeout=IDLE_POLL_SECONDS)
                return
            except queue.Full:
                continue

    def run(self) -> None:
        while not self.reader.stop.is_set():
            batch = self.gather()
            if batch:
                self.reader.deliver(batch)

    def gather(self) -> list[dict[str, Any]]:
        """Up to BatchSize records: waits for the first, then until the batching window ends."""
        try:
            batch = [self.records.get(timeout=IDLE_POLL_SECONDS)]
        except queue.Empty:
            return []
        closes = time.monotonic() + self.mapping.batching_window
        while len(batch) < self.mapping.batch_size:
            try:
                batch.append(self.records.get(timeout=max(0.0, closes - time.monotonic())))
            except queue.Empty:
                break
        return batch


def _arrival(record: dict[str, Any]) -> str:
    return datetime.fromtimestamp(record["approximateArrivalTimestamp"], UTC).isoformat()

"""Lambda's Kinesis retry semantics, with a scripted function in place of the runtime."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from embedded.kinesis_poller import KinesisMapping, ShardReader
from embedded.runtime import FunctionError

STREAM = "arn:aws:kinesis:us-east-1:123456789012:stream/events"
QUEUE = "arn:aws:sqs:us-east-1:123456789012:dlq"


class FakeSqs:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def get_queue_url(self, QueueName: str) -> dict[str, str]:  # noqa: N803 (boto3's names)
        return {"QueueUrl": f"https://sqs/{QueueName}"}

    def send_message(self, QueueUrl: str, MessageBody: str) -> None:  # noqa: N803
        self.sent.append(json.loads(MessageBody))


class FakeSession:
    def __init__(self) -> None:
        self.sqs = FakeSqs()

    def client(self, name: str) -> Any:
        return self.sqs if name == "sqs" else object()


class ScriptedRuntime:
    """Answers each invocation with ``script(sequence numbers delivered)``; records every delivery."""

    def __init__(self, script: Callable[[list[str]], Any]) -> None:
        self.script, self.deliveries = script, []  # type: ignore[var-annotated]

    def invoke(self, reference: str, event: dict[str, Any]) -> Any:
        delivered = [r["kinesis"]["sequenceNumber"] for r in event["Records"]]
        self.deliveries.append(delivered)
        return self.script(delivered)


def reader(runtime: ScriptedRuntime, retries: int = 2, bisect: bool = True) -> tuple[ShardReader, FakeSqs]:
    session = FakeSession()
    mapping = KinesisMapping(
        "arn:aws:lambda:us-east-1:123456789012:function:f", STREAM, 10, "TRIM_HORIZON", retries, bisect, True, QUEUE
    )
    shard_reader = ShardReader(session, runtime, mapping, "events", "shardId-000000000000", threading.Event())  # type: ignore[arg-type]
    return shard_reader, session.sqs


def batch(*sequences: int) -> list[dict[str, Any]]:
    return [
        {
            "kinesis": {
                "sequenceNumber": str(s),
                "data": base64.b64encode(b"{}").decode(),
                "approximateArrivalTimestamp": 1795398496.0,
            }
        }
        for s in sequences
    ]


def failures(*sequences: str) -> dict[str, Any]:
    return {"batchItemFailures": [{"itemIdentifier": s} for s in sequences]}


def test_a_successful_batch_is_delivered_once() -> None:
    runtime = ScriptedRuntime(lambda _: failures())
    shard, dlq = reader(runtime)
    shard.deliver(batch(1, 2, 3))
    assert runtime.deliveries == [["1", "2", "3"]] and dlq.sent == []


def test_reported_failures_are_redelivered_from_the_lowest_failed_record() -> None:
    calls = iter([failures("3", "2"), failures()])
    runtime = ScriptedRuntime(lambda _: next(calls))
    shard, dlq = reader(runtime)
    shard.deliver(batch(1, 2, 3, 4))
    assert runtime.deliveries == [["1", "2", "3", "4"], ["2", "3", "4"]] and dlq.sent == []


def test_after_the_last_retry_the_batch_goes_to_the_on_failure_destination() -> None:
    runtime = ScriptedRuntime(lambda delivered: failures(delivered[-1]))
    shard, dlq = reader(runtime, retries=2)
    shard.deliver(batch(1, 2, 3))
    assert runtime.deliveries == [["1", "2", "3"], ["3"], ["3"]]
    [record] = dlq.sent
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    info = record["KinesisBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == ("3", "3", 1)
    assert info["streamArn"] == STREAM


def test_a_function_error_bisects_the_batch_until_the_bad_record_is_alone() -> None:
    def script(delivered: list[str]) -> Any:
        if "3" in delivered:
            raise FunctionError("boom")
        return failures()

    runtime = ScriptedRuntime(script)
    shard, dlq = reader(runtime, retries=1)
    shard.deliver(batch(1, 2, 3, 4))
    assert runtime.deliveries == [["1", "2", "3", "4"], ["1", "2"], ["3", "4"], ["3"], ["3"], ["4"]]
    assert [m["KinesisBatchInfo"]["startSequenceNumber"] for m in dlq.sent] == ["3"]


def test_without_bisection_a_function_error_retries_the_whole_batch() -> None:
    def script(delivered: list[str]) -> Any:
        raise FunctionError("boom")

    runtime = ScriptedRuntime(script)
    shard, dlq = reader(runtime, retries=1, bisect=False)
    shard.deliver(batch(1, 2))
    assert runtime.deliveries == [["1", "2"], ["1", "2"]]
    assert dlq.sent[0]["KinesisBatchInfo"]["batchSize"] == 2


@pytest.mark.parametrize("response", [failures("99"), {"batchItemFailures": [{"itemIdentifier": ""}]}])
def test_an_unreadable_failure_report_fails_the_whole_batch(response: dict[str, Any]) -> None:
    calls = iter([response, failures()])
    runtime = ScriptedRuntime(lambda _: next(calls))
    shard, _ = reader(runtime)
    shard.deliver(batch(1, 2))
    assert runtime.deliveries == [["1", "2"], ["1", "2"]]


class FakeKinesis:
    """A shard holding ``records`` (partition key, sequence number), served in pages of 100."""

    def __init__(self, records: list[tuple[str, int]]) -> None:
        self.records = [
            {"PartitionKey": key, "SequenceNumber": str(s), "Data": b"{}", "ApproximateArrivalTimestamp": ARRIVAL}
            for key, s in records
        ]

    def get_shard_iterator(self, **_: Any) -> dict[str, str]:
        return {"ShardIterator": "0"}

    def get_records(self, ShardIterator: str, Limit: int) -> dict[str, Any]:  # noqa: N803 (boto3's names)
        start = int(ShardIterator)
        return {
            "Records": self.records[start : start + 100],
            "NextShardIterator": str(min(start + 100, len(self.records))),
        }


ARRIVAL = datetime(2026, 12, 1, tzinfo=UTC)


def lanes_reader(runtime: Any, records: list[tuple[str, int]], parallelization: int, window: float = 0.0) -> Any:
    session = FakeSession()
    mapping = KinesisMapping(
        "arn:aws:lambda:us-east-1:123456789012:function:f", STREAM, 10, "TRIM_HORIZON", 2, True, True, QUEUE,
        batching_window=window, parallelization=parallelization,
    )  # fmt: skip
    stop = threading.Event()
    shard_reader = ShardReader(session, runtime, mapping, "events", "shardId-000000000000", stop)  # type: ignore[arg-type]
    shard_reader.kinesis = FakeKinesis(records)
    return shard_reader, stop


def run_until_delivered(shard_reader: Any, stop: threading.Event, runtime: Any, count: int) -> None:
    threads = [threading.Thread(target=lane.run) for lane in shard_reader.lanes]
    threads.append(threading.Thread(target=shard_reader.run))
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while sum(len(d) for d in runtime.deliveries) < count and time.monotonic() < deadline:
        stop.wait(0.05)
    stop.set()
    for thread in threads:
        thread.join()


def test_a_parallelization_factor_runs_batches_at_once_and_keeps_each_keys_order() -> None:
    records = [(f"customer-{s % 7}", s) for s in range(200)]
    running, most = [0], [0]
    lock = threading.Lock()

    def script(delivered: list[str]) -> Any:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1
        return failures()

    runtime = ScriptedRuntime(script)
    shard_reader, stop = lanes_reader(runtime, records, parallelization=3)
    run_until_delivered(shard_reader, stop, runtime, len(records))
    delivered = [int(s) for batch_ in runtime.deliveries for s in batch_]
    assert sorted(delivered) == list(range(200))  # every record once
    assert max(len(b) for b in runtime.deliveries) <= 10  # BatchSize
    assert most[0] > 1  # batches of one shard at once
    for key in range(7):  # each key's records in order
        mine = [s for s in delivered if s % 7 == key]
        assert mine == sorted(mine)


def test_the_batching_window_gathers_records_that_arrive_after_the_first() -> None:
    runtime = ScriptedRuntime(lambda _: failures())
    shard_reader, _ = lanes_reader(runtime, [("k", 1)], parallelization=1, window=0.5)
    lane = shard_reader.lanes[0]
    lane.put({"kinesis": {"sequenceNumber": "1"}})
    later = threading.Timer(0.2, lane.put, args=({"kinesis": {"sequenceNumber": "2"}},))
    later.start()
    assert [r["kinesis"]["sequenceNumber"] for r in lane.gather()] == ["1", "2"]
    lane.put({"kinesis": {"sequenceNumber": "3"}})
    started = time.monotonic()
    assert len(lane.gather()) == 1 and time.monotonic() - started >= 0.45

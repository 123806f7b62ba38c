"""Lambda's Kinesis retry semantics, with a scripted function in place of the runtime."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
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

"""Lambda's SQS event source mapping, in process.

For each SQS mapping of the deployed stack, pollers long-poll the queue and invoke the
function with Lambda's SQS event shape, with Lambda's semantics: as many pollers as the
function may run at once (its concurrency, or the mapping's ``ScalingConfig``; Lambda starts
five and scales up); each gathers up to ``BatchSize`` messages (ten per receive), waiting up
to ``MaximumBatchingWindowInSeconds`` for more once it has one; a successful batch is
deleted; with ``ReportBatchItemFailures`` only the reported messages stay; a function error
deletes nothing. What stays becomes visible again after the queue's visibility timeout, and the
queue's redrive policy moves a message received too often to its dead-letter queue (the local
AWS does that, as SQS does).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import boto3

from embedded.deploy import DeployedStack
from embedded.runtime import FunctionError, LambdaRuntime
from embedded.workers import Workers

log = logging.getLogger(__name__)
RECEIVE_LIMIT = 10  # SQS returns at most 10 messages per receive


@dataclass(frozen=True)
class SqsMapping:
    function_arn: str
    queue_arn: str
    batch_size: int
    reports_item_failures: bool
    batching_window: float = 0.0  # seconds
    maximum_concurrency: int | None = None  # ScalingConfig


def sqs_mappings_from_stack(session: boto3.session.Session, stack: DeployedStack) -> list[SqsMapping]:
    lambda_client = session.client("lambda")
    return [
        SqsMapping(
            function_arn=m["FunctionArn"],
            queue_arn=m["EventSourceArn"],
            batch_size=int(m.get("BatchSize", 10)),
            reports_item_failures="ReportBatchItemFailures" in m.get("FunctionResponseTypes", []),
            batching_window=float(m.get("MaximumBatchingWindowInSeconds") or 0),
            maximum_concurrency=m.get("ScalingConfig", {}).get("MaximumConcurrency"),
        )
        for name in stack.functions.values()
        for m in lambda_client.list_event_source_mappings(FunctionName=name)["EventSourceMappings"]
        if ":sqs:" in m["EventSourceArn"] and m.get("State", "Enabled") == "Enabled"
    ]


class SqsPoller(Workers):
    def __init__(self, session: boto3.session.Session, runtime: LambdaRuntime, mappings: list[SqsMapping]) -> None:
        super().__init__()
        self.session, self.runtime, self.mappings = session, runtime, mappings

    def start(self) -> None:
        for mapping in self.mappings:
            pollers = mapping.maximum_concurrency or self.runtime.function(mapping.function_arn).concurrency
            for number in range(pollers):
                reader = QueueReader(self.session, self.runtime, mapping, self._stop)
                self.spawn(f"sqs-{mapping.queue_arn.rsplit(':', 1)[1]}-{number}", reader.run)


class QueueReader:
    def __init__(
        self, session: boto3.session.Session, runtime: LambdaRuntime, mapping: SqsMapping, stop: threading.Event
    ) -> None:
        self.sqs: Any = session.client("sqs")
        self.runtime, self.mapping, self.stop = runtime, mapping, stop
        self.queue_url = self.sqs.get_queue_url(QueueName=mapping.queue_arn.rsplit(":", 1)[1])["QueueUrl"]

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                messages = self.gather()
            except Exception:  # the local AWS went away (shutdown) or hiccuped: try again shortly
                log.exception("receive_message failed on %s", self.mapping.queue_arn)
                self.stop.wait(1)
                continue
            if messages:
                self.deliver(messages)

    def gather(self) -> list[dict[str, Any]]:
        """Up to BatchSize messages: a long poll for the first, then more until the window ends."""
        messages = self._receive(self.mapping.batch_size, wait=1)
        closes = time.monotonic() + self.mapping.batching_window
        while messages and len(messages) < self.mapping.batch_size and time.monotonic() < closes:
            wait = max(0, min(20, int(closes - time.monotonic())))
            more = self._receive(self.mapping.batch_size - len(messages), wait)
            if not more and not wait:
                break
            messages += more
        return messages

    def _receive(self, up_to: int, wait: int) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=min(up_to, RECEIVE_LIMIT),
            WaitTimeSeconds=wait,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        return found

    def deliver(self, messages: list[dict[str, Any]]) -> None:
        """Invoke once; delete what succeeded."""
        records = [self._event_record(m) for m in messages]
        try:
            response = self.runtime.invoke(self.mapping.function_arn, {"Records": records})
        except FunctionError as exc:  # (its traceback is in the function's log)
            log.warning("%d messages of %s failed: %s", len(records), self.mapping.queue_arn, exc)
            return
        failed: set[str] = set()
        if self.mapping.reports_item_failures and isinstance(response, dict):
            reported = response.get("batchItemFailures") or []
            failed = {str(f.get("itemIdentifier")) for f in reported if isinstance(f, dict)}
            if failed - {m["MessageId"] for m in messages}:
                return  # Lambda treats an unreadable failure report as a failed batch
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )

    def _event_record(self, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": message.get("MessageAttributes", {}),
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.mapping.queue_arn,
            "awsRegion": self.mapping.queue_arn.split(":")[3],
        }

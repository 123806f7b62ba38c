"""Queues: the dead-letter queue (what can never succeed, with the reason, for an operator to
look at) and work queues (items for other invocations)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from audience.adapters.aws import as_transient, client


class SqsDeadLetters:
    def __init__(self, queue_url: str) -> None:
        self.queue_url = queue_url

    def send(self, reason: str, payload: Mapping[str, Any]) -> None:
        body = json.dumps({"reason": reason, "payload": payload}, default=str)
        try:
            client("sqs").send_message(
                QueueUrl=self.queue_url,
                MessageBody=body,
                MessageAttributes={"reason": {"DataType": "String", "StringValue": reason[:256]}},
            )
        except ClientError as exc:
            raise as_transient(exc) from exc


class SqsWorkQueue:
    def __init__(self, queue_url: str) -> None:
        self.queue_url = queue_url

    def send(self, item: Mapping[str, Any]) -> None:
        try:
            client("sqs").send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(item))
        except ClientError as exc:
            raise as_transient(exc) from exc

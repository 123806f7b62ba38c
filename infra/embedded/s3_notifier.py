"""S3 event notifications to Lambda, in process.

For each Lambda notification on the stack's buckets (as the template configured it), new or
rewritten objects whose key matches the prefix and suffix rules are delivered to the function
as an ``ObjectCreated:Put`` event, one record per invocation, as S3 does. Objects already in
the bucket when the stack starts are not announced (S3 notifies only new writes). Polling the
listing every half second stands in for S3's push.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

import boto3

from embedded.deploy import DeployedStack
from embedded.runtime import LambdaRuntime
from embedded.workers import Workers

log = logging.getLogger(__name__)
POLL_SECONDS = 0.5


@dataclass(frozen=True)
class Notification:
    bucket: str
    function_arn: str
    prefix: str
    suffix: str

    def matches(self, key: str) -> bool:
        return key.startswith(self.prefix) and key.endswith(self.suffix)


def notifications_from_stack(session: boto3.session.Session, stack: DeployedStack) -> list[Notification]:
    s3, found = session.client("s3"), []
    buckets = [physical for logical, physical in stack.resources.items() if stack.types[logical] == "AWS::S3::Bucket"]
    for bucket in buckets:
        configuration = s3.get_bucket_notification_configuration(Bucket=bucket)
        for entry in configuration.get("LambdaFunctionConfigurations", []):
            if not any(e.startswith("s3:ObjectCreated") for e in entry["Events"]):
                continue
            rules = {
                r["Name"].lower(): r["Value"] for r in entry.get("Filter", {}).get("Key", {}).get("FilterRules", [])
            }
            found.append(
                Notification(bucket, entry["LambdaFunctionArn"], rules.get("prefix", ""), rules.get("suffix", ""))
            )
    return found


class S3Notifier(Workers):
    def __init__(
        self, session: boto3.session.Session, runtime: LambdaRuntime, notifications: list[Notification]
    ) -> None:
        super().__init__()
        self.s3: Any = session.client("s3")
        self.runtime, self.notifications = runtime, notifications
        self._seen: dict[tuple[str, str], tuple[str, Any]] = {}  # (bucket, key) -> (ETag, LastModified)

    def start(self) -> None:
        for notification in self.notifications:  # what is there already was never "created" for us
            for item in self._listing(notification):
                self._seen[(notification.bucket, item["Key"])] = (item["ETag"], item["LastModified"])
        self.spawn("s3-notifier", self._run)

    def poll(self) -> None:
        """Deliver every new or rewritten object once (also callable directly, e.g. by tests)."""
        for notification in self.notifications:
            for item in self._listing(notification):
                version = (item["ETag"], item["LastModified"])  # S3 notifies every PUT, same content or not
                if self._seen.get((notification.bucket, item["Key"])) == version:
                    continue
                self._seen[(notification.bucket, item["Key"])] = version
                self.runtime.invoke_event(notification.function_arn, s3_event(notification.bucket, item))

    def _run(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            try:
                self.poll()
            except Exception:  # the local AWS went away (shutdown) or hiccuped: try again shortly
                log.exception("S3 notification poll failed")

    def _listing(self, notification: Notification) -> list[dict[str, Any]]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=notification.bucket, Prefix=notification.prefix
        )
        return [item for page in pages for item in page.get("Contents", []) if notification.matches(item["Key"])]


def s3_event(bucket: str, item: dict[str, Any]) -> dict[str, Any]:
    """The event S3 sends Lambda for one ``ObjectCreated:Put`` (keys URL-encoded, as S3 does)."""
    return {"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "embedded"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": uuid.uuid4().hex[:16].upper()},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "embedded",
            "bucket": {"name": bucket, "ownerIdentity": {"principalId": "embedded"}, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {"key": quote_plus(item["Key"], safe="/"), "size": item["Size"],
                       "eTag": item["ETag"].strip('"'), "sequencer": uuid.uuid4().hex[:18].upper()},
        },
    }]}  # fmt: skip

"""`make bench` section 8: how fresh a segment is.

Through the embedded stack (HTTP front, Kinesis poller, the real stream function, EventBridge
rule to an SQS queue): for each of ``EVENTS`` customers, one high-value order is POSTed to
``/v1/events``; we time until ``GET /v1/customers/{id}`` shows the "High Value" tier and until
the ``Audience Entered`` event for that customer is in the consumer's queue. Orders are sent one
at a time, so each figure is one customer's latency, not a queue's.

Locally the Kinesis poller reads a shard every 0.1 s when idle; deployed, Lambda polls each
shard about once per second and ``MaximumBatchingWindowInSeconds`` (1 in the template) can add
up to a second: read the local figure as the engine's own share of the latency.
"""

from __future__ import annotations

import io
import json
import statistics
import threading
import time
from typing import Any

import boto3

from embedded.demo import get, post
from embedded.stack import REGION, EmbeddedStack

EVENTS = 300
TARGET_P95_S = 1.0
PEERS = (
    ("Twilio Segment batch audiences", "every 8 h"),
    ("PostHog 'real-time' cohorts", "10-30 min"),
    ("PostHog cohorts", "every 24 h"),
)


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


class QueueWatcher:
    """Receives the consumer queue's messages and notes when each customer's tier event arrived."""

    def __init__(self, session: boto3.session.Session, url: str) -> None:
        self.sqs, self.url = session.client("sqs"), url
        self.arrived: dict[str, float] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            got = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            now = time.perf_counter()
            for message in got.get("Messages", []):
                event = json.loads(message["Body"])
                detail = event["detail"]
                if event["detail-type"] == "Audience Entered" and detail["kind"] == "tier":
                    self.arrived.setdefault(detail["customerId"], now)
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])


def consumer_queue(session: boto3.session.Session, bus: str) -> str:
    sqs, events = session.client("sqs"), session.client("events")
    url = sqs.create_queue(QueueName="freshness-consumer")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = {"source": ["audience-engine"], "detail-type": ["Audience Entered"]}
    events.put_rule(Name="freshness", EventBusName=bus, EventPattern=json.dumps(pattern))
    events.put_targets(Rule="freshness", EventBusName=bus, Targets=[{"Id": "queue", "Arn": arn}])
    return url


def measure(events: int = EVENTS) -> dict[str, Any]:
    """Seconds from POST to the tier visible through the API, and to the event in the queue."""
    with EmbeddedStack(aws_port=0, api_port=0, log=io.StringIO()) as stack:
        assert stack.api is not None
        session = boto3.session.Session(region_name=REGION)
        watcher = QueueWatcher(session, consumer_queue(session, stack.outputs["SegmentEventBusName"]))
        watcher.thread.start()
        visible, delivered, missing = [], [], 0
        for i in range(events):
            customer = f"fresh-{i:04d}"
            order = {"type": "track", "event": "Order Completed", "userId": customer, "messageId": f"m-{customer}",
                     "properties": {"order_id": f"o-{customer}", "total": 750.0, "currency": "USD"}}  # fmt: skip
            start = time.perf_counter()
            status, _ = post(f"{stack.api.url}/v1/events", order)
            assert status == 202
            while time.perf_counter() - start < 10:
                status, profile = get(f"{stack.api.url}/v1/customers/{customer}")
                if status == 200 and profile["tier"] is not None:
                    visible.append(time.perf_counter() - start)
                    break
                time.sleep(0.005)
            while customer not in watcher.arrived and time.perf_counter() - start < 10:
                time.sleep(0.005)
            if customer in watcher.arrived:
                delivered.append(watcher.arrived[customer] - start)
            else:
                missing += 1
        watcher.stop.set()
        watcher.thread.join(timeout=5)
    return {"events": events, "visible": visible, "delivered": delivered, "missing": missing}


def report(result: dict[str, Any]) -> None:
    print(f"   {'':<44} {'p50 (s)':>8} {'p95 (s)':>8} {'max (s)':>8} {'n':>5}")
    for label, values in (("segment visible through the API", result["visible"]),
                          ("Audience Entered in the consumer's queue", result["delivered"])):  # fmt: skip
        if values:
            p50, p95 = statistics.median(values), percentile(values, 95)
            print(f"   {label:<44} {p50:>8.3f} {p95:>8.3f} {max(values):>8.3f} {len(values):>5}")
    print(f"   events never delivered within 10 s: {result['missing']}   (target: p95 < {TARGET_P95_S:.0f} s)")
    print("   peers, as published: " + "; ".join(f"{name} {value}" for name, value in PEERS))


if __name__ == "__main__":
    report(measure())

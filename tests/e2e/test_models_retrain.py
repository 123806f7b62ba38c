"""GIVEN the embedded stack with a year of order history, WHEN the retrain function fires as its
schedule would, THEN a model is trained, stored, promoted and every customer is placed; a second
run on the same data promotes nothing and moves nobody."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from audience.adapters.privacy_table import DynamoModelRegistry
from audience.services.artifacts import LIVE_VALUE
from embedded.demo import get, order_history, post
from embedded.stack import EmbeddedStack
from tests.conftest import ROOT
from tests.e2e.test_bulk_import import wait_for_manifest

SCHEDULED = (ROOT / "tests" / "events" / "retrain_scheduled.json").read_text()


@pytest.fixture
def no_active_model_afterwards(aws: boto3.session.Session, embedded: EmbeddedStack) -> Iterator[None]:
    """Later tests in the shared stack measure the stream without segmentation: the model this
    test promotes is retired when it ends (the pointer item and the live value model removed)."""
    yield
    table = embedded.outputs["ProfilesTableName"]
    aws.client("dynamodb").delete_item(TableName=table, Key=DynamoModelRegistry.KEY)
    aws.client("s3").delete_object(Bucket=embedded.outputs["DataBucketName"], Key=LIVE_VALUE)  # the value model too
    time.sleep(1.5)  # ModelRefreshSeconds in the e2e stack: the stream has let the model go


@pytest.mark.usefixtures("no_active_model_afterwards")
def test_retraining_places_every_customer_and_a_second_run_on_the_same_data_changes_nothing(
    api: str, aws: boto3.session.Session, embedded: EmbeddedStack
) -> None:
    assert embedded.runtime is not None
    bucket, s3 = embedded.outputs["DataBucketName"], aws.client("s3")
    s3.put_object(Bucket=bucket, Key="imports/orders/e2e-history.csv", Body=order_history(customers=300).encode())
    assert wait_for_manifest(aws, bucket, "imports/orders/e2e-history.csv", 60)["reconciles"]

    queue = route_segment_events_to_a_queue(aws, embedded)
    first = embedded.runtime.invoke("RetrainFunction", json.loads(SCHEDULED))
    assert first["promoted"] and first["moved"] >= 300
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"models/{first['version']}/")["Contents"]}
    stored = ("model.joblib", "spec.json", "metrics.json", "value-spec.json", "value-metrics.json")
    recommender = ("recommender.json", "recommender-metrics.json")  # when the stack holds products (another test's)
    assert {f"models/{first['version']}/{n}" for n in stored} <= keys
    assert keys <= {f"models/{first['version']}/{n}" for n in (*stored, *recommender)}
    report = s3.get_object(Bucket=bucket, Key=first["report_key"])["Body"].read()
    assert b"worst refit" in report and b"data:image/png;base64" in report

    promoted = received(aws, queue, lambda d: d["customerId"] == "shop-0001")
    assert promoted and promoted[0]["detail"]["reason"] == f"model {first['version']}"
    aws.client("sqs").purge_queue(QueueUrl=queue)  # the promotion's hundreds of entries: read one, enough
    status, profile = get(f"{api}/v1/customers/shop-0001")
    assert status == 200 and profile["segments"]["modelVersion"] == first["version"]
    assert profile["lastSegmentChange"]["reason"] == f"model {first['version']}"
    assert profile["segments"]["rfm"] in {"Champions", "Loyal Customers", "Hibernating", "At Risk", "Can't Lose Them",
                                          "About to Sleep", "Need Attention", "Promising", "New Customers",
                                          "Potential Loyalists"}  # fmt: skip

    second = embedded.runtime.invoke("RetrainFunction", {"action": "retrain"})  # the same data again
    assert not second["promoted"] and second["moved"] == 0, second["reason"]

    # the first rescore may tier the model's top spenders (their percentiles came with the model);
    # on the same day a second finds nobody to move
    embedded.runtime.invoke("RetrainFunction", {"action": "rescore"})
    assert embedded.runtime.invoke("RetrainFunction", {"action": "rescore"})["moved"] == 0

    fanned = embedded.runtime.invoke("RetrainFunction", {"action": "retrain", "segments": 3})  # through SQS
    metrics_key, report_key = f"models/{fanned['run']}/metrics.json", f"reports/models/{fanned['run']}.html"
    deadline = time.monotonic() + 120  # the report is the train step's last write
    while time.monotonic() < deadline and "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix=report_key):
        time.sleep(0.5)
    decision = json.loads(s3.get_object(Bucket=bucket, Key=metrics_key)["Body"].read())["decision"]
    assert decision["active_before"] == first["version"]  # the fan-out compared with the active model
    active = fanned["run"] if decision["promoted"] else first["version"]  # fitted on a sample: may differ
    time.sleep(1.5)  # ModelRefreshSeconds in the e2e stack: the stream sees the active model
    parts = s3.list_objects_v2(Bucket=bucket, Prefix=f"work/models/{fanned['run']}/")["Contents"]
    assert len(parts) == 3  # one features file per scan segment

    # last, so every retrain above saw the same data: a live order is placed with the model
    order = {"type": "track", "userId": "scored-live", "event": "Order Completed", "properties": {"total": 640}}
    assert post(f"{api}/v1/events", order)[0] == 202  # the stream places it with the model just promoted
    deadline = time.monotonic() + 20
    while (live := get(f"{api}/v1/customers/scored-live"))[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert live[1]["segments"]["modelVersion"] == active
    assert live[1]["lastSegmentChange"]["reason"] == "profile updated" and live[1]["segments"]["rfm"] == "New Customers"
    # (its events may come in more than one receive: wait for the one this checks)
    entered = received(aws, queue, lambda d: (d["customerId"], d["segmentId"]) == ("scored-live", "rfm:new-customers"))
    assert {(e["detail-type"], e["detail"]["segmentId"]) for e in entered} == {
        ("Audience Entered", "rfm:new-customers")
    }
    assert entered[0]["detail"]["reason"] == "profile updated" and entered[0]["detail"]["idempotencyKey"]


def test_the_retrain_and_rescore_schedules_come_from_the_template(embedded: EmbeddedStack) -> None:
    assert embedded.scheduler is not None
    found = {(s.expression, s.input, s.function_arn.rsplit(":", 1)[-1]) for s in embedded.scheduler.schedules}
    retrain_function = embedded.runtime.function("RetrainFunction").name if embedded.runtime else ""
    assert ("rate(7 days)", '{"action": "retrain"}', retrain_function) in found
    assert ("rate(1 day)", '{"action": "rescore"}', retrain_function) in found


def route_segment_events_to_a_queue(
    aws: boto3.session.Session, embedded: EmbeddedStack, name: str = "segment-events-consumer"
) -> str:
    """What a downstream tool does: a rule on the segment bus that sends the events to its queue
    (a test of its own gets a queue of its own: ``name``)."""
    sqs, events = aws.client("sqs"), aws.client("events")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = embedded.outputs["SegmentEventBusName"]
    pattern = {"source": ["audience-engine"], "detail-type": ["Audience Entered", "Audience Exited"]}
    events.put_rule(Name=f"to-{name}", EventBusName=bus, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=f"to-{name}", EventBusName=bus, Targets=[{"Id": "queue", "Arn": arn}])
    return url


def received(aws: boto3.session.Session, queue: str, wanted: Any, timeout: float = 20) -> list[dict[str, Any]]:
    sqs, found = aws.client("sqs"), []
    deadline = time.monotonic() + timeout
    while not found and time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        ):
            event = json.loads(message["Body"])
            if wanted(event["detail"]):
                found.append(event)
    return found

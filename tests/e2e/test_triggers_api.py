"""GIVEN the embedded stack and trigger rules uploaded to the bucket, WHEN a customer places a
high-value order through the webhook, THEN they are in the "High Value" tier at once, the
profile says which rule put them there, and an ``Audience Entered`` event with that reason
reaches a consumer's queue; a replay sends no second event; a bad rules file is refused naming
the rule and field while the previous rules stay in force; the read API answers as API Gateway
would (403 without a key, 404 for the unknown, 400 for a bad cursor)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import boto3

from embedded.demo import get, post
from embedded.stack import EmbeddedStack
from tests.e2e.test_embedded_stack import wait_for
from tests.e2e.test_models_retrain import received, route_segment_events_to_a_queue

RULES = {
    "rules": [
        {"id": "e2e-big-order", "kind": "order-at-least", "amount": 300, "within_days": 30, "tier": "High Value"},
        {"id": "e2e-big-spend", "kind": "revenue-in-window-at-least", "amount": 2000, "days": 30},
    ]
}


def upload_config(
    aws: boto3.session.Session, embedded: EmbeddedStack, document: Any, key: str = "config/triggers.json"
) -> dict[str, Any]:
    """Upload a configuration document and wait for the config function's report on it."""
    s3, bucket = aws.client("s3"), embedded.outputs["DataBucketName"]
    before = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="reports/config/").get("Contents", [])}
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(document).encode())
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        listed = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="reports/config/").get("Contents", [])}
        if new := sorted(listed - before):
            return json.loads(s3.get_object(Bucket=bucket, Key=new[-1])["Body"].read())  # type: ignore[no-any-return]
        time.sleep(0.25)
    raise AssertionError("the config function wrote no report")


def order(customer: str, total: float, message_id: str) -> dict[str, Any]:
    properties = {"order_id": f"order-{message_id}", "total": total, "currency": "USD"}
    return {"type": "track", "event": "Order Completed", "userId": customer, "messageId": message_id,
            "properties": properties}  # fmt: skip


def test_a_high_value_order_moves_the_customer_and_the_event_says_why(
    api: str, aws: boto3.session.Session, embedded: EmbeddedStack
) -> None:
    report = upload_config(aws, embedded, RULES)
    assert report["accepted"] is True, report
    queue = route_segment_events_to_a_queue(aws, embedded, name="triggers-consumer")
    time.sleep(1.5)  # ModelRefreshSeconds in the e2e stack: the stream reads the new rules
    customer = f"vip-{uuid.uuid4().hex[:8]}"

    assert post(f"{api}/v1/events", order(customer, 450.0, f"{customer}-1"))[0] == 202

    status, profile = wait_for(
        lambda: get(f"{api}/v1/customers/{customer}"), lambda r: r[0] == 200 and r[1]["tier"] is not None
    )
    assert status == 200 and profile["tier"]["name"] == "High Value" and profile["tier"]["rule"] == "e2e-big-order"
    assert profile["lastSegmentChange"]["reason"] == "trigger:e2e-big-order"
    assert "tier:high-value" in profile["segmentIds"]
    [event] = received(aws, queue, lambda d: d["customerId"] == customer and d["kind"] == "tier", timeout=30)
    assert event["detail-type"] == "Audience Entered"
    assert (event["detail"]["segmentId"], event["detail"]["reason"]) == ("tier:high-value", "trigger:e2e-big-order")

    status, choice = get(f"{api}/v1/customers/{customer}/personalization")
    assert (status, choice["content"]["id"], choice["segmentId"]) == (200, "vip-rewards", "tier:high-value")
    assert choice["reason"] == "trigger:e2e-big-order"

    # the same order again (a client retry): nothing moves, no second event
    assert post(f"{api}/v1/events", order(customer, 450.0, f"{customer}-1"))[0] == 202
    assert received(aws, queue, lambda d: d["customerId"] == customer, timeout=4) == []


def test_a_bad_rules_file_is_refused_naming_rule_and_field_and_the_previous_stays(
    api: str, aws: boto3.session.Session, embedded: EmbeddedStack
) -> None:
    assert upload_config(aws, embedded, RULES)["accepted"] is True
    bad = {"rules": [{"id": "e2e-big-order", "kind": "order-at-least", "amount": "lots"}]}

    report = upload_config(aws, embedded, bad)

    assert report["accepted"] is False
    [error] = report["errors"]
    assert error["field"] == "rules[0] (id 'e2e-big-order').amount" and "decimal" in error["reason"].lower()
    live = aws.client("s3").get_object(Bucket=embedded.outputs["DataBucketName"], Key="live/triggers.json")
    assert json.loads(live["Body"].read()) == RULES
    status, listed = get(f"{api}/v1/segments")
    assert status == 200
    tier = next(s for s in listed["segments"] if s["segmentId"] == "tier:high-value")
    assert "e2e-big-order" in tier["definition"] and tier["modelVersion"] is None


def test_segment_members_page_with_an_opaque_cursor(
    api: str, aws: boto3.session.Session, embedded: EmbeddedStack
) -> None:
    assert upload_config(aws, embedded, RULES)["accepted"] is True
    time.sleep(1.5)
    run = uuid.uuid4().hex[:6]
    customers = [f"page-{run}-{i}" for i in range(3)]
    for customer in customers:
        assert post(f"{api}/v1/events", order(customer, 999.0, f"{customer}-1"))[0] == 202
    for customer in customers:
        wait_for(lambda c=customer: get(f"{api}/v1/customers/{c}"), lambda r: r[0] == 200 and r[1]["tier"])  # type: ignore[misc]

    members, cursor = [], None
    for _ in range(100):
        query = f"?limit=2&cursor={cursor}" if cursor else "?limit=2"
        status, page = get(f"{api}/v1/segments/tier:high-value/customers{query}")
        assert status == 200 and len(page["customers"]) <= 2
        members += page["customers"]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert set(customers) <= set(members) and len(members) == len(set(members)) and members == sorted(members)
    assert embedded.runtime is not None
    embedded.runtime.invoke("RetrainFunction", {"action": "measure"})  # sizes are the measure job's counts
    status, listed = get(f"{api}/v1/segments")
    assert next(s for s in listed["segments"] if s["segmentId"] == "tier:high-value")["size"] == len(members)


def test_the_read_api_answers_as_api_gateway_would(api: str) -> None:
    assert get(f"{api}/v1/segments", api_key="")[0] == 403
    assert get(f"{api}/v1/segments", api_key="wrong")[0] == 403
    assert get(f"{api}/v1/customers/nobody-{uuid.uuid4().hex}")[0] == 404
    assert get(f"{api}/v1/customers/nobody-{uuid.uuid4().hex}/personalization")[0] == 404
    assert get(f"{api}/v1/segments/tier:nobody/customers")[0] == 404
    status, body = get(f"{api}/v1/segments/tier:high-value/customers?cursor=not-a-cursor")
    assert status == 400 and body["errors"][0]["field"] == "cursor"
    status, body = get(f"{api}/v1/segments/tier:high-value/customers?limit=0")
    assert status == 400 and body["errors"][0]["field"] == "query.limit"

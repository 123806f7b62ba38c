"""GIVEN the embedded stack, WHEN a customer withdraws personalization consent through the API,
THEN the next event moves them without a segment event and the personalization endpoint answers
the non-personalized default; the consent change is timestamped with its source."""

from __future__ import annotations

import json
import time
import uuid

import boto3

from embedded.demo import get, keyed, post
from embedded.stack import EmbeddedStack
from tests.e2e.test_bulk_import import wait_for_manifest
from tests.e2e.test_embedded_stack import wait_for
from tests.e2e.test_models_retrain import received, route_segment_events_to_a_queue
from tests.e2e.test_triggers_api import RULES, order, upload_config


def test_withdrawn_personalization_consent_stops_events_and_personal_answers(
    api: str, aws: boto3.session.Session, embedded: EmbeddedStack
) -> None:
    # the rules a big order is placed by (another module on the worker's stack may leave others in force)
    assert upload_config(aws, embedded, RULES)["accepted"] is True
    time.sleep(1.5)  # ModelRefreshSeconds in the e2e stack: the stream reads the new rules
    queue = route_segment_events_to_a_queue(aws, embedded, name="privacy-consumer")
    customer = f"shy-{uuid.uuid4().hex[:8]}"
    assert post(f"{api}/v1/events", order(customer, 20.0, f"{customer}-1"))[0] == 202
    wait_for(lambda: get(f"{api}/v1/customers/{customer}"), lambda r: r[0] == 200)

    status, answer = keyed("PUT", f"{api}/v1/customers/{customer}/consent", {"personalization": False})
    assert status == 200 and answer["consent"]["personalization"]["granted"] is False
    assert answer["consent"]["personalization"]["source"] == "api" and answer["consent"]["personalization"]["at"]

    status, choice = get(f"{api}/v1/customers/{customer}/personalization")
    assert (status, choice["personalized"], choice["reason"]) == (200, False, "no personalization consent")
    assert post(f"{api}/v1/events", order(customer, 5000.0, f"{customer}-2"))[0] == 202  # a High Value order
    status, profile = wait_for(
        lambda: get(f"{api}/v1/customers/{customer}"), lambda r: r[0] == 200 and r[1]["tier"] is not None, timeout=60
    )
    assert profile["tier"]["name"] == "High Value"  # still placed
    time.sleep(1)
    assert received(aws, queue, lambda d: d["customerId"] == customer, timeout=3) == []  # but nothing published

    assert keyed("PUT", f"{api}/v1/customers/{customer}/consent", {"colour": True})[0] == 400
    assert keyed("PUT", f"{api}/v1/customers/{customer}/consent", {})[0] == 400
    assert keyed("PUT", f"{api}/v1/customers/nobody-{uuid.uuid4().hex}/consent", {"marketing": True})[0] == 404
    assert keyed("PUT", f"{api}/v1/customers/{customer}/consent", {"marketing": True}, api_key="")[0] == 403


def test_erasure_removes_the_customer_everywhere_and_later_events_are_dropped(
    api: str, aws: boto3.session.Session, embedded: EmbeddedStack
) -> None:
    user, anonymous = f"gone-{uuid.uuid4().hex[:8]}", f"anon-{uuid.uuid4().hex[:8]}"
    assert post(f"{api}/v1/events", {"type": "page", "anonymousId": anonymous})[0] == 202
    assert post(f"{api}/v1/events", {"type": "alias", "userId": user, "previousId": anonymous})[0] == 202
    assert post(f"{api}/v1/events", order(user, 42.0, f"{user}-1"))[0] == 202
    wait_for(lambda: get(f"{api}/v1/customers/{user}"), lambda r: r[0] == 200 and r[1]["rfm"]["orders"] == 1)

    s3, bucket = aws.client("s3"), embedded.outputs["DataBucketName"]
    rows = [
        "order_id,customer_id,date,total,currency",
        f"x-1,{user},2026-11-01,not-a-number,USD",
        "x-2,other,2026-11-01,oops,USD",
    ]
    export = "\n".join(rows) + "\n"
    s3.put_object(Bucket=bucket, Key=f"imports/orders/{user}.csv", Body=export.encode())
    manifest = wait_for_manifest(aws, bucket, f"imports/orders/{user}.csv", 30)
    rejects_key = f"rejects/{manifest['import_id']}.jsonl"
    assert user in s3.get_object(Bucket=bucket, Key=rejects_key)["Body"].read().decode()

    status, exported = get(f"{api}/v1/customers/{anonymous}/export")
    assert status == 200 and exported["profile"]["customerId"] == user and exported["profile"]["orders"] == 1
    assert anonymous in exported["profile"]["identities"]

    status, receipt = keyed("DELETE", f"{api}/v1/customers/{user}")
    assert status == 200 and receipt["removed"] == {"profile": 1, "redirects": 1} and receipt["identities"] == 2

    table = embedded.outputs["ProfilesTableName"]
    pages = aws.client("dynamodb").get_paginator("scan").paginate(TableName=table)
    items = [item for page in pages for item in page["Items"]]
    assert not [i for i in items if user in str(i) or anonymous in str(i)]  # nothing of the customer, by any id
    assert get(f"{api}/v1/customers/{user}/export")[0] == 404

    assert post(f"{api}/v1/events", order(user, 10.0, f"{user}-2"))[0] == 202  # accepted at the door, then dropped
    time.sleep(2)
    assert get(f"{api}/v1/customers/{user}")[0] == 404
    _, trail = wait_for(
        lambda: get(f"{api}/v1/customers/{user}/audit"), lambda r: "customer.scrubbed" in str(r[1]), timeout=30
    )
    assert [e["action"] for e in trail] == ["customer.exported", "customer.erased", "customer.scrubbed"]
    left = s3.get_object(Bucket=bucket, Key=rejects_key)["Body"].read().decode()
    assert user not in left and "other" in left  # only the erased customer's row is gone
    versions = s3.list_object_versions(Bucket=bucket, Prefix=rejects_key).get("Versions", [])
    assert len(versions) == 1  # no earlier version keeps the row
    assert all(user not in json.dumps(e) and anonymous not in json.dumps(e) for e in trail)

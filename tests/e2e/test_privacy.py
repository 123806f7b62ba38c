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
from tests.e2e.test_embedded_stack import wait_for
from tests.e2e.test_models_retrain import received, route_segment_events_to_a_queue
from tests.e2e.test_triggers_api import order


def test_withdrawn_personalization_consent_stops_events_and_personal_answers(
    api: str, aws: boto3.session.Session, embedded: EmbeddedStack
) -> None:
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
        lambda: get(f"{api}/v1/customers/{customer}"), lambda r: r[0] == 200 and r[1]["tier"] is not None
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
    status, trail = get(f"{api}/v1/customers/{user}/audit")
    assert status == 200 and [e["action"] for e in trail] == ["customer.exported", "customer.erased"]
    assert all(user not in json.dumps(e) and anonymous not in json.dumps(e) for e in trail)

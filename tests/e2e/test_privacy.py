"""GIVEN the embedded stack, WHEN a customer withdraws personalization consent through the API,
THEN the next event moves them without a segment event and the personalization endpoint answers
the non-personalized default; the consent change is timestamped with its source."""

from __future__ import annotations

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

"""GIVEN the embedded stack, WHEN clients use the HTTP API, THEN profiles follow within a second or so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from typing import Any

import boto3

from embedded.demo import expected_event_counts, get, post, sample_events, wait_for_profiles
from embedded.stack import EmbeddedStack
from tests.conftest import ROOT, load_event


def wait_for(fetch: Any, done: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def stream_length(aws: boto3.session.Session, embedded: EmbeddedStack) -> int:
    kinesis, name = aws.client("kinesis"), embedded.outputs["EventsStreamName"]
    total = 0
    for shard in kinesis.list_shards(StreamName=name)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        total += len(kinesis.get_records(ShardIterator=iterator, Limit=10_000)["Records"])
    return total


def test_the_webhook_needs_a_signature_with_the_local_secret(
    api: str, aws: boto3.session.Session, embedded: EmbeddedStack
) -> None:
    before = stream_length(aws, embedded)
    message = {"type": "page", "userId": f"e2e-{uuid.uuid4().hex[:8]}"}
    status, body = post(f"{api}/v1/events", message, secret="")
    assert status == 401 and "missing signature" in body["message"]
    assert post(f"{api}/v1/events", message, secret="not-the-secret")[0] == 401
    assert stream_length(aws, embedded) == before  # nothing written
    assert post(f"{api}/v1/events", message) == (202, {"accepted": 1})  # signed as Segment signs


def test_an_order_posted_to_the_webhook_shows_in_the_profile(api: str) -> None:
    customer = f"e2e-{uuid.uuid4().hex[:8]}"
    order = {
        "type": "track",
        "userId": customer,
        "event": "Order Completed",
        "timestamp": "2026-11-20T14:03:00Z",
        "properties": {"order_id": "o-1", "total": 99.5, "currency": "USD"},
    }

    sent = time.monotonic()
    assert post(f"{api}/v1/events", order) == (202, {"accepted": 1})
    status, profile = wait_for(lambda: get(f"{api}/v1/customers/{customer}"), lambda r: r[0] == 200)
    elapsed = time.monotonic() - sent

    assert status == 200, profile
    assert profile["rfm"]["orders"] == 1 and profile["rfm"]["revenue"] == 99.5
    assert profile["rfm"]["lastOrderAt"] == "2026-11-20T14:03:00Z"
    print(f"order visible in the profile {elapsed * 1000:.0f} ms after the POST")


def test_a_batch_of_many_customers_is_folded_exactly(api: str) -> None:
    events = sample_events(customers=15, seed=11)
    for start in range(0, len(events), 50):
        assert post(f"{api}/v1/events", {"batch": events[start : start + 50]})[0] == 202
    profiles = wait_for_profiles(api, expected_event_counts(events), timeout=30)
    orders = sum(1 for e in events if e.get("event") == "Order Completed")
    assert sum(p["rfm"]["orders"] for p in profiles) == orders
    assert all(p["identities"] == [p["customerId"].replace("cust", "anon"), p["customerId"]] for p in profiles)


def test_a_malformed_request_is_a_400_listing_the_bad_fields_and_writes_nothing(
    api: str, aws: boto3.session.Session, embedded: EmbeddedStack
) -> None:
    before = stream_length(aws, embedded)
    body = json.loads(load_event("ingest_invalid.json")["body"])

    status, response = post(f"{api}/v1/events", body)

    assert status == 400
    assert {e["field"] for e in response["errors"]} >= {"batch[0].properties.total", "batch[2].type"}
    assert stream_length(aws, embedded) == before


def test_a_record_that_cannot_be_read_goes_to_the_dead_letter_queue_and_the_others_are_kept(
    api: str, aws: boto3.session.Session, embedded: EmbeddedStack
) -> None:
    customer = f"e2e-{uuid.uuid4().hex[:8]}"
    kinesis = aws.client("kinesis")
    stream = embedded.outputs["EventsStreamName"]
    good = {"type": "page", "userId": customer, "name": "Home", "receivedAt": "2026-11-20T14:03:00Z"}
    kinesis.put_records(
        StreamName=stream,
        Records=[
            {"Data": json.dumps(good).encode(), "PartitionKey": customer},
            {"Data": b"\xff garbage", "PartitionKey": customer},
            {"Data": json.dumps({**good, "name": "Sale"}).encode(), "PartitionKey": customer},
        ],
    )

    status, profile = wait_for(lambda: get(f"{api}/v1/customers/{customer}"), lambda r: r[0] == 200)
    assert status == 200 and profile["eventCounts"] == {"page": 2}

    sqs = aws.client("sqs")
    messages = wait_for(
        lambda: sqs.receive_message(QueueUrl=embedded.outputs["DeadLetterQueueUrl"], MaxNumberOfMessages=10).get(
            "Messages", []
        ),
        bool,
    )
    reasons = [json.loads(m["Body"])["reason"] for m in messages]
    assert any("invalid" in r for r in reasons)


def test_unknown_customers_and_routes_answer_as_api_gateway_does(api: str) -> None:
    assert get(f"{api}/v1/customers/nobody-{uuid.uuid4().hex}")[0] == 404
    assert get(f"{api}/v1/nowhere") == (403, {"message": "Missing Authentication Token"})


def test_describe_stacks_on_the_local_endpoint_gives_the_outputs(
    aws: boto3.session.Session, embedded: EmbeddedStack
) -> None:
    [stack] = aws.client("cloudformation").describe_stacks(StackName="audience-engine")["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs == embedded.outputs
    assert aws.client("dynamodb").describe_table(TableName=outputs["ProfilesTableName"])["Table"]["TableStatus"]


def test_make_invoke_runs_one_handler_against_a_fresh_embedded_aws() -> None:
    """`python -m embedded invoke` is what `make invoke` runs; with nothing on the port it starts its own."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "embedded",
            "--aws-port",
            "0",  # nothing listens on port 0: it starts its own embedded AWS on a free port
            "invoke",
            "IngestFunction",
            "tests/events/ingest_order_completed.json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": f"{ROOT / 'layers' / 'audience'}:{ROOT / 'infra'}"},
    )
    assert result.returncode == 0, result.stderr
    response = json.loads(result.stdout)
    assert response["statusCode"] == 202 and json.loads(response["body"]) == {"accepted": 1}

"""Each handler, run as Lambda runs it, against the stack's real resources in moto."""

from __future__ import annotations

import base64
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from audience.domain.events import MAX_BATCH
from audience.domain.privacy import pseudonymised
from audience.domain.signatures import segment_signature, timed_signature
from audience.services.ingest import MAX_BODY_BYTES
from embedded.deploy import DeployedStack
from embedded.runtime import LambdaRuntime
from embedded.stack import LOCAL_WEBHOOK_SECRET
from tests.conftest import load_event


def stream_records(aws: boto3.session.Session, stack: DeployedStack) -> list[dict[str, Any]]:
    kinesis = aws.client("kinesis")
    name = stack.outputs["EventsStreamName"]
    records = []
    for shard in kinesis.list_shards(StreamName=name)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records += kinesis.get_records(ShardIterator=iterator, Limit=1000)["Records"]
    return records


def dead_letters(aws: boto3.session.Session, stack: DeployedStack) -> list[dict[str, Any]]:
    sqs = aws.client("sqs")
    messages = sqs.receive_message(QueueUrl=stack.outputs["DeadLetterQueueUrl"], MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


def test_ingest_writes_a_valid_batch_to_kinesis_keyed_by_customer(
    aws: boto3.session.Session, stack: DeployedStack, runtime: LambdaRuntime
) -> None:
    response = runtime.invoke("IngestFunction", load_event("ingest_batch.json"))

    assert response["statusCode"] == 202 and json.loads(response["body"]) == {"accepted": 3}
    records = stream_records(aws, stack)
    assert [r["PartitionKey"] for r in records] == ["anon-9f2", "cust-001", "cust-001"]
    first = json.loads(records[0]["Data"])
    assert first["type"] == "page" and first["receivedAt"] and first["context"]["library"]["name"] == "analytics-python"


def test_ingest_refuses_an_invalid_request_whole_and_writes_nothing(
    aws: boto3.session.Session, stack: DeployedStack, runtime: LambdaRuntime
) -> None:
    response = runtime.invoke("IngestFunction", load_event("ingest_invalid.json"))

    assert response["statusCode"] == 400
    body = json.loads(response["body"])
    assert {e["field"] for e in body["errors"]} == {
        "batch[0]",
        "batch[0].properties.total",
        "batch[0].properties.currency",
        "batch[1].timestamp",
        "batch[2].type",
    }
    assert stream_records(aws, stack) == []


def signed(event: dict[str, Any], body: str, secret: str = LOCAL_WEBHOOK_SECRET, **headers: str) -> dict[str, Any]:
    """``event`` with ``body``, signed Segment's way (or with the ``headers`` given instead)."""
    signature = headers or {"X-Signature": segment_signature(secret, body.encode())}
    plain = {k: v for k, v in event["headers"].items() if k.lower() not in ("x-signature", "x-audience-signature")}
    return {**event, "body": body, "headers": {**plain, **signature}}


def test_ingest_refuses_a_body_that_is_not_json(stack: DeployedStack, runtime: LambdaRuntime) -> None:
    event = signed(load_event("ingest_order_completed.json"), "{not json")
    response = runtime.invoke("IngestFunction", event)
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["errors"][0]["field"] == "body"


def test_unsigned_wrongly_signed_and_stale_requests_are_refused_and_write_nothing(
    aws: boto3.session.Session, stack: DeployedStack, runtime: LambdaRuntime
) -> None:
    event = load_event("ingest_order_completed.json")
    body = event["body"]
    stale = timed_signature(LOCAL_WEBHOOK_SECRET, body.encode(), datetime.now(UTC) - timedelta(minutes=10))
    for refused in (
        signed(event, body, **{"User-Agent": "curl"}),  # no signature at all
        signed(event, body, secret="another-secret"),
        signed(event, body + " ") | {"body": body},  # signed another body
        signed(event, body, **{"X-Audience-Signature": stale}),  # a replay of an old request
    ):
        response = runtime.invoke("IngestFunction", refused)
        assert response["statusCode"] == 401, response
        assert LOCAL_WEBHOOK_SECRET not in response["body"]
    assert stream_records(aws, stack) == []

    fresh = timed_signature(LOCAL_WEBHOOK_SECRET, body.encode(), datetime.now(UTC))
    assert runtime.invoke("IngestFunction", signed(event, body, **{"X-Audience-Signature": fresh}))["statusCode"] == 202
    assert runtime.invoke("IngestFunction", signed(event, body))["statusCode"] == 202  # Segment's way
    assert len(stream_records(aws, stack)) == 2


def test_during_a_rotation_both_secrets_are_accepted(
    aws: boto3.session.Session, stack: DeployedStack, runtime: LambdaRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_PARAMETERS_MAX_AGE", "0")  # read the secret on every request
    aws.client("secretsmanager").put_secret_value(SecretId=stack.outputs["WebhookSecretName"], SecretString="rotated")
    event = load_event("ingest_order_completed.json")
    for secret, status in (("rotated", 202), (LOCAL_WEBHOOK_SECRET, 202), ("never-issued", 401)):
        assert runtime.invoke("IngestFunction", signed(event, event["body"], secret=secret))["statusCode"] == status


def test_too_large_bodies_and_batches_are_refused_with_413(
    aws: boto3.session.Session, stack: DeployedStack, runtime: LambdaRuntime
) -> None:
    event = load_event("ingest_order_completed.json")
    message = json.loads(event["body"])
    batch = json.dumps({"batch": [message] * (MAX_BATCH + 1)})
    huge = json.dumps({**message, "properties": {**message["properties"], "note": "x" * MAX_BODY_BYTES}})
    for body, limit in ((batch, "at most 500 messages"), (huge, "bytes, the limit")):
        response = runtime.invoke("IngestFunction", signed(event, body))
        assert response["statusCode"] == 413 and limit in json.loads(response["body"])["message"]
    assert stream_records(aws, stack) == []


def test_the_stream_function_folds_events_and_dead_letters_what_it_cannot_read(
    aws: boto3.session.Session, stack: DeployedStack, runtime: LambdaRuntime
) -> None:
    response = runtime.invoke("StreamFunction", load_event("stream_batch.json"))

    assert response == {"batchItemFailures": []}
    profile = runtime.invoke("ProfilesApiFunction", load_event("profiles_api_get_customer.json"))
    assert profile["statusCode"] == 200
    body = json.loads(profile["body"])
    assert body["rfm"]["orders"] == 1 and body["rfm"]["revenue"] == 129.9 and body["currency"] == "USD"
    assert body["identities"] == ["anon-9f2", "cust-001"]
    assert body["topCategories"] == [{"category": "Shoes", "spend": 129.9}]
    assert body["traits"]["email"] == "ada@example.com"
    assert body["eventCounts"] == {"identify": 1, "track": 1}
    [dead] = dead_letters(aws, stack)
    assert "invalid" in dead["reason"] and dead["payload"]["data"] == "not a segment message"


def test_the_same_stream_batch_three_times_gives_identical_profiles(
    aws: boto3.session.Session, stack: DeployedStack, runtime: LambdaRuntime
) -> None:
    runtime.invoke("StreamFunction", load_event("stream_batch.json"))
    table = stack.outputs["ProfilesTableName"]
    key = {"pk": {"S": "CUSTOMER#cust-001"}, "sk": {"S": "PROFILE"}}
    before = aws.client("dynamodb").get_item(TableName=table, Key=key)["Item"]

    for _ in range(2):  # the same batch a second and a third time
        assert runtime.invoke("StreamFunction", load_event("stream_batch.json")) == {"batchItemFailures": []}

    assert aws.client("dynamodb").get_item(TableName=table, Key=key)["Item"] == before
    assert before["version"] == {"N": "1"}


def test_an_unknown_customer_is_a_404_with_a_clear_message(stack: DeployedStack, runtime: LambdaRuntime) -> None:
    response = runtime.invoke("ProfilesApiFunction", load_event("profiles_api_get_customer.json"))
    assert response["statusCode"] == 404
    assert json.loads(response["body"]) == {"code": "not_found", "message": "customer 'cust-001' not found"}


def test_handlers_log_structured_json_with_a_correlation_id(
    stack: DeployedStack, runtime: LambdaRuntime, function_logs: io.StringIO
) -> None:
    event = load_event("ingest_order_completed.json")
    runtime.invoke("IngestFunction", event)

    lines = [json.loads(line) for line in function_logs.getvalue().splitlines()]  # every line is JSON
    [accepted] = [line for line in lines if line.get("message") == "events accepted"]
    assert accepted["correlation_id"] == event["requestContext"]["requestId"]
    assert accepted["service"] == "ingest" and accepted["accepted"] == 1
    [metrics] = [line for line in lines if "_aws" in line]
    assert metrics["EventsAccepted"] == [1.0]
    assert "cust-001" not in function_logs.getvalue()  # no customer identifiers in logs


def test_the_kinesis_data_is_base64_as_lambda_delivers_it() -> None:
    record = load_event("stream_batch.json")["Records"][0]
    assert json.loads(base64.b64decode(record["kinesis"]["data"]))["type"] == "identify"


def test_contact_details_are_hashed_before_the_stream_and_never_logged(
    aws: boto3.session.Session, stack: DeployedStack, runtime: LambdaRuntime, function_logs: io.StringIO
) -> None:
    email, phone = "Ada.Lovelace@Example.com", "+44 20 7946 0958"
    traits = {"email": email, "phone": phone, "plan": "pro"}
    body = json.dumps({"type": "identify", "userId": "pii-1", "traits": traits})
    response = runtime.invoke("IngestFunction", signed(load_event("ingest_order_completed.json"), body))
    assert response["statusCode"] == 202

    [record] = stream_records(aws, stack)
    data = record["Data"].decode()
    sent = json.loads(data)
    assert sent["traits"] == {**pseudonymised({"email": email, "phone": phone}, "local-dev-pepper"), "plan": "pro"}
    assert email not in data and "7946" not in data
    sequence = record["SequenceNumber"]
    kinesis = {"data": base64.b64encode(record["Data"]).decode(), "sequenceNumber": sequence, "partitionKey": "pii-1"}
    event = {"Records": [{"kinesis": kinesis, "eventID": f"shardId-000000000000:{sequence}"}]}
    assert runtime.invoke("StreamFunction", event) == {"batchItemFailures": []}

    items = json.dumps(
        aws.client("dynamodb").scan(TableName=stack.outputs["ProfilesTableName"])["Items"], default=str
    ).lower()
    assert "pii-1" in items and email.lower() not in items and "7946" not in items
    logs = function_logs.getvalue().lower()
    # the phone in any spelling, not a 4-digit fragment a request id or timestamp may hold by chance
    assert email.lower() not in logs and not any(form in logs for form in ("7946 0958", "79460958", "7946-0958"))

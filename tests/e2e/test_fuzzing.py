"""GIVEN the published OpenAPI document, WHEN schemathesis (on hypothesis) sends generated
requests, valid and malformed, to every operation of the embedded stack, THEN no answer is a
5xx, every answer's body matches the schema documented for its status (the typed responses are
a contract), no error body echoes a secret, and no refused request writes to the stream.

The webhook's requests are unsigned (schemathesis writes the body): every one must be refused
before anything is written. ``FUZZ_EXAMPLES`` sets the examples per operation (``make fuzz``
runs more and prints the counts recorded in docs/security.md).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator

import boto3
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import response_schema_conformance

from embedded.api_front import LOCAL_API_KEY
from embedded.stack import LOCAL_WEBHOOK_SECRET, EmbeddedStack
from tests.conftest import ROOT

SCHEMA = schemathesis.openapi.from_path(ROOT / "docs" / "openapi.json")
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))
SECRETS = (LOCAL_WEBHOOK_SECRET, "local-dev-pepper", LOCAL_API_KEY)
STATUSES: Counter[tuple[str, int]] = Counter()


class StreamWatch:
    """Whether anything reached the events stream since ``mark()`` (LATEST iterators: cheap)."""

    def __init__(self, aws: boto3.session.Session, embedded: EmbeddedStack) -> None:
        self.kinesis, self.name = aws.client("kinesis"), embedded.outputs["EventsStreamName"]
        self.iterators: list[str] = []

    def mark(self) -> None:
        shards = self.kinesis.list_shards(StreamName=self.name)["Shards"]
        self.iterators = [
            self.kinesis.get_shard_iterator(StreamName=self.name, ShardId=s["ShardId"], ShardIteratorType="LATEST")[
                "ShardIterator"
            ]
            for s in shards
        ]

    def written(self) -> int:
        return sum(len(self.kinesis.get_records(ShardIterator=i, Limit=10_000)["Records"]) for i in self.iterators)


@pytest.fixture(scope="module")
def stream(aws: boto3.session.Session, embedded: EmbeddedStack) -> Iterator[StreamWatch]:
    yield StreamWatch(aws, embedded)
    print_statuses()


@SCHEMA.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_generated_requests_get_no_server_error_and_no_echoed_secret(
    case: schemathesis.Case, api: str, stream: StreamWatch
) -> None:
    writes = case.method.upper() != "GET"
    if writes:
        stream.mark()
    response = case.call(base_url=api, headers={"x-api-key": LOCAL_API_KEY}, timeout=30)
    STATUSES[(f"{case.method} {case.path}", response.status_code)] += 1
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text[:300]}"
    sent = f"{case.formatted_path} {case.query} {case.body}"  # a secret the client sent may come back (a 404's id)
    assert not any(secret in response.text and secret not in sent for secret in SECRETS)
    case.validate_response(response, checks=[response_schema_conformance])
    if case.path == "/v1/events":
        assert 400 <= response.status_code < 500  # unsigned (or no such method): refused whatever the body
    if writes and response.status_code >= 400:
        assert stream.written() == 0, f"refused {case.method} {case.formatted_path} wrote to the stream"


def print_statuses() -> None:
    """The counts by operation and status (``make fuzz`` shows them; docs/security.md records them)."""
    documented = {f"{verb.upper()} {path}" for path, ops in SCHEMA.raw_schema["paths"].items() for verb in ops}
    by_status = Counter[int]()
    for (_, status), count in STATUSES.items():
        by_status[status] += count
    print(f"\nfuzzing: {sum(STATUSES.values())} requests; by status: {dict(sorted(by_status.items()))}")
    for operation in sorted(documented):
        counts = {status: n for (op, status), n in sorted(STATUSES.items()) if op == operation}
        print(f"  {operation:<52} {counts}")
    others = Counter[int]()
    for (operation, status), count in STATUSES.items():
        if operation not in documented:
            others[status] += count
    print(f"  {'other methods on the documented paths':<52} {dict(others)}")

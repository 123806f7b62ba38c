"""End-to-end tier: the embedded stack (moto server, template, in-process handlers) over HTTP."""

from __future__ import annotations

import io
from collections.abc import Iterator

import boto3
import pytest

from embedded.stack import REGION, EmbeddedStack


@pytest.fixture(scope="package")
def function_logs() -> io.StringIO:
    return io.StringIO()


@pytest.fixture(scope="package")
def embedded(function_logs: io.StringIO) -> Iterator[EmbeddedStack]:
    """One stack for the session, on free ports so a running `make local` is left alone.
    Imports of more than 1,000 customers fan out (the Online Retail file: 5 chunks); the stream
    sees a change of the active model within a second, the webhook a rotated secret too."""
    parameters = {
        "ImportChunkCustomers": "1000",
        "ModelRefreshSeconds": "1",
        "MaxEventAgeDays": "20000",  # the CDNOW log replays orders of 1997 through the webhook
        "SecretsCacheSeconds": "1",
    }
    with EmbeddedStack(aws_port=0, api_port=0, log=function_logs, parameters=parameters) as stack:
        yield stack


@pytest.fixture(scope="package")
def api(embedded: EmbeddedStack) -> str:
    assert embedded.api is not None
    return embedded.api.url


@pytest.fixture(scope="package")
def aws(embedded: EmbeddedStack) -> boto3.session.Session:
    return boto3.session.Session(region_name=REGION)


FIRST = "test_real_data_import.py"  # the longest test: started first, it runs beside the others


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The Online Retail import runs first (its worker takes it while the other runs the rest):
    last, it kept one worker busy minutes after the other was done. The table it leaves (4,381
    large profiles) does not slow later tests: the embedded moto backs a transaction up by the
    items it updates, not by a copy of the table."""
    items.sort(key=lambda item: item.path.name != FIRST)


@pytest.fixture(autouse=True)
def _consumers_removed(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test's downstream consumer (a rule on the segment bus sending to its queue, see
    ``route_segment_events_to_a_queue``) goes when the test ends: left behind, its queue would
    collect every later test's segment events, and moto scans a queue's messages on each send."""
    yield
    if "embedded" not in request.fixturenames:
        return
    stack: EmbeddedStack = request.getfixturevalue("embedded")
    session = boto3.session.Session(region_name=REGION)
    events, sqs, bus = session.client("events"), session.client("sqs"), stack.outputs["SegmentEventBusName"]
    for rule in events.list_rules(EventBusName=bus, NamePrefix="to-").get("Rules", []):
        targets = events.list_targets_by_rule(Rule=rule["Name"], EventBusName=bus).get("Targets", [])
        events.remove_targets(Rule=rule["Name"], EventBusName=bus, Ids=[t["Id"] for t in targets])
        events.delete_rule(Name=rule["Name"], EventBusName=bus)
        for target in targets:
            sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=target["Arn"].rsplit(":", 1)[1])["QueueUrl"])

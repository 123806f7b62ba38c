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


LAST = "test_real_data_import.py"  # 4,381 large profiles and a retrain placing them: nothing may follow it


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The Online Retail import runs last in its worker (files otherwise run in name order, and a
    worker that steals work takes the queue's tail, this test with whatever precedes it): every
    later test on the same stack would merge identities in a big table (moto copies whole tables
    per TransactWriteItems) and wait behind its retrain."""
    items.sort(key=lambda item: item.path.name == LAST)

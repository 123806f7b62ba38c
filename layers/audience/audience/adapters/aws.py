"""boto3 clients, made lazily and cached per container.

boto3 reads ``AWS_ENDPOINT_URL`` (and ``AWS_ENDPOINT_URL_<SERVICE>``) itself, so the same code
talks to moto, LocalStack or AWS.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from audience.domain.errors import TransientError

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=3, read_timeout=10)

_TRANSIENT_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "LimitExceededException",
        "KMSThrottlingException",
    }
)


def client(service: str) -> Any:
    """The container's client for ``service``; a new one if the endpoint or region changed
    (tests and the embedded stack may point one process at several local AWS endpoints)."""
    endpoint = os.environ.get(f"AWS_ENDPOINT_URL_{service.upper()}") or os.environ.get("AWS_ENDPOINT_URL")
    return _client(service, endpoint, os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"))


@cache
def _client(service: str, endpoint: str | None, region: str | None) -> Any:
    return boto3.session.Session().client(service, config=_CONFIG)  # type: ignore[call-overload]


def reset_clients() -> None:
    """Forget every client (tests that start and stop AWS mocks)."""
    _client.cache_clear()


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def as_transient(exc: ClientError) -> Exception:
    """A transient domain error for throttling and server faults; the ClientError itself otherwise."""
    if error_code(exc) in _TRANSIENT_CODES:
        return TransientError(f"{error_code(exc)}: {exc}")
    return exc

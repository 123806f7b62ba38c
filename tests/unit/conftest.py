"""Unit tier: the domain and services with in-memory fakes. No AWS, no network."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _no_network(socket_disabled: None) -> Iterator[None]:
    yield

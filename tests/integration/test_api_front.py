"""The API front serves each request on its own: a slow function never delays another's, and a
client that goes away is one line in the log, never a traceback, and stops nothing."""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from embedded.api_front import ApiFront, Route


class SlowOrFast:
    """A runtime whose ``slow`` function takes two seconds and ``fast`` answers at once."""

    def invoke(self, reference: str, event: dict[str, Any]) -> dict[str, Any]:
        if reference.endswith("slow"):
            time.sleep(2)
        return {"statusCode": 200, "body": reference.rsplit(":", 1)[-1]}


def route(name: str) -> Route:
    arn = f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
    return Route("GET", f"/v1/{name}", arn, re.compile(f"/v1/{name}"))


@pytest.fixture
def front() -> Iterator[ApiFront]:
    api = ApiFront(SlowOrFast(), [route("slow"), route("fast")], "dev", port=0)  # type: ignore[arg-type]
    api.start()
    yield api
    api.stop()


def get(url: str) -> tuple[str, float]:
    started = time.monotonic()
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.read().decode(), time.monotonic() - started


def test_a_read_is_not_delayed_by_a_slow_request(front: ApiFront) -> None:
    slow = threading.Thread(target=get, args=(f"{front.url}/v1/slow",))
    slow.start()
    time.sleep(0.2)
    body, seconds = get(f"{front.url}/v1/fast")
    slow.join()
    assert body == "fast" and seconds < 1


def test_a_client_that_goes_away_is_one_line_and_the_front_serves_on(
    front: ApiFront, caplog: pytest.LogCaptureFixture
) -> None:
    host, port = front.server.server_address[:2]
    with caplog.at_level(logging.INFO, logger="embedded.api_front"):
        for _ in range(3):  # gone before the slow answer: the reply meets a closed socket
            client = socket.create_connection((str(host), port))
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            client.sendall(b"GET /v1/slow HTTP/1.1\r\nHost: x\r\n\r\n")
            client.close()  # (linger 0: a reset, as a client that times out)
        time.sleep(2.5)
    assert get(f"{front.url}/v1/fast")[0] == "fast"
    gone = [r for r in caplog.records if "gone" in r.getMessage()]
    assert gone and all(r.exc_info is None and "\n" not in r.getMessage() for r in caplog.records)

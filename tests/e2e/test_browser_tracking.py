"""GIVEN the embedded stack, whose source ``local`` allows pages on localhost (any port), WHEN a
page sends what analytics.js 2.0 and RudderStack's JS SDK send (text/plain JSON with the write
key inside, a batch, a beacon; each sent twice, as an SDK retries what it could not read), THEN
every message lands on the profile exactly once, each answer echoes the page's origin, a
preflight is answered with the headers it asked for, the SDKs' start-up documents point at this
API, and a page of an origin no source allows is refused with nothing written."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from typing import Any

from embedded.stack import LOCAL_WRITE_KEY
from tests.e2e.test_profile_engine import wait_until
from tests.e2e.test_sdks import customer

PAGE, ELSEWHERE = "http://localhost:5173", "https://evil.example"


def send(api: str, path: str, body: Any = None, method: str = "POST", origin: str | None = PAGE,
         **headers: str) -> tuple[int, dict[str, str], Any]:  # fmt: skip
    """A browser's request: the status, the headers (lower-cased) and the JSON body of the answer."""
    data = json.dumps(body).encode() if body is not None else None
    sent = {"Content-Type": "text/plain;charset=UTF-8", **({"Origin": origin} if origin else {}),
            **{name.replace("_", "-"): value for name, value in headers.items()}}  # fmt: skip
    request = urllib.request.Request(f"{api}{path}", data=data, method=method, headers=sent)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # the local stack may be busy folding
            status, answer_headers, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, answer_headers, raw = error.code, error.headers, error.read()
    return status, {k.lower(): v for k, v in answer_headers.items()}, json.loads(raw) if raw else None


def test_a_page_s_calls_and_batches_land_once_even_when_sent_twice(api: str) -> None:
    user, now = f"browser-{uuid.uuid4().hex[:8]}", datetime.now(UTC).isoformat()
    track = {"userId": user, "event": "Product Viewed", "messageId": f"{user}-t", "properties": {"sku": "A-1"},
             "timestamp": now, "sentAt": now, "writeKey": LOCAL_WRITE_KEY,
             "context": {"library": {"name": "analytics.js", "version": "next-1.84.3"}}}  # fmt: skip
    batch = {"writeKey": LOCAL_WRITE_KEY, "sentAt": now, "batch": [
        {"type": "track", "userId": user, "event": "Added", "messageId": f"{user}-b{n}", "timestamp": now}
        for n in range(3)]}  # fmt: skip

    for _ in range(2):  # the second time as a retry of what the SDK never saw answered
        for path, body in (("/v1/t", track), ("/v1/b", batch)):
            status, headers, answer = send(api, path, body)
            assert status == 200 and answer["success"] is True and answer["rejected"] == 0
            assert headers["access-control-allow-origin"] == PAGE
            assert "access-control-allow-credentials" not in headers
    page = {"userId": user, "name": "Home", "messageId": f"{user}-p", "writeKey": LOCAL_WRITE_KEY}
    assert send(api, "/v1/p", page)[0] == 200  # the same customer's lane: it folds after the retries

    profile = wait_until(lambda: (p := customer(api, user)) and p["eventCounts"].get("page") and p, 120)
    assert profile, "the page view never reached the profile"
    assert profile["eventCounts"]["track"] == 4  # one track and a batch of three, each once


def test_a_beacon_lands_once_with_its_key_in_the_query(api: str) -> None:
    user, now = f"beacon-{uuid.uuid4().hex[:8]}", datetime.now(UTC).isoformat()
    body = {"sentAt": now, "batch": [{"type": "page", "userId": user, "name": "Leaving", "messageId": f"{user}-1",
                                      "originalTimestamp": now, "channel": "web"}]}  # fmt: skip
    for _ in range(2):
        status, headers, _answer = send(api, f"/beacon/v1/batch?writeKey={LOCAL_WRITE_KEY}", body)
        assert status == 200 and headers["access-control-allow-origin"] == PAGE

    profile = wait_until(lambda: (p := customer(api, user)) and p["eventCounts"].get("page") and p, 120)
    assert profile and profile["eventCounts"]["page"] == 1


def test_a_preflight_is_answered_with_the_headers_the_page_asked_for(api: str) -> None:
    asked = "authorization,content-type,anonymousid,sentat"
    for path in ("/v1/t", "/v1/batch", f"/v1/projects/{LOCAL_WRITE_KEY}/settings", "/sourceConfig/"):
        status, headers, _ = send(api, path, method="OPTIONS", Access_Control_Request_Method="POST",
                                  Access_Control_Request_Headers=asked)  # fmt: skip
        assert status == 204, path
        assert headers["access-control-allow-origin"] == PAGE and headers["access-control-allow-headers"] == asked
        assert "POST" in headers["access-control-allow-methods"] and "access-control-allow-credentials" not in headers


def test_a_page_of_an_origin_no_source_allows_is_refused_and_nothing_written(api: str) -> None:
    user = f"refused-{uuid.uuid4().hex[:8]}"
    message = {"userId": user, "event": "Viewed", "messageId": f"{user}-1", "writeKey": LOCAL_WRITE_KEY}

    status, headers, answer = send(api, "/v1/t", message, origin=ELSEWHERE)
    preflight, preflight_headers, _ = send(api, "/v1/t", method="OPTIONS", origin=ELSEWHERE)

    assert status == 403 and ELSEWHERE in answer["message"] and "access-control-allow-origin" not in headers
    assert preflight == 403 and "access-control-allow-origin" not in preflight_headers
    server = {**message, "messageId": f"{user}-server"}  # a server (no Origin) with the same key is unaffected
    assert send(api, "/v1/track", server, origin=None, Content_Type="application/json")[0] == 200
    profile = wait_until(lambda: customer(api, user), 120)
    assert profile and profile["eventCounts"]["track"] == 1  # the server's message only


def test_the_sdks_start_up_documents_point_at_this_api(api: str) -> None:
    status, headers, settings = send(api, f"/v1/projects/{LOCAL_WRITE_KEY}/settings", method="GET")
    basic = "Basic " + base64.b64encode(f"{LOCAL_WRITE_KEY}:".encode()).decode()
    config_status, _, config = send(api, f"/sourceConfig/?p=npm&v=3.34.1&writeKey={LOCAL_WRITE_KEY}",
                                    method="GET", Authorization=basic)  # fmt: skip

    assert status == 200 and headers["cache-control"] == "public, max-age=300"
    assert headers["access-control-allow-origin"] == PAGE
    segment_io = settings["integrations"]["Segment.io"]
    assert segment_io == {**segment_io, "apiKey": LOCAL_WRITE_KEY, "protocol": "http",
                          "apiHost": f"{api.removeprefix('http://')}/v1"}  # fmt: skip
    assert config_status == 200 and config["source"]["enabled"] is True and config["source"]["destinations"] == []
    assert send(api, "/v1/projects/not-a-key/settings", method="GET")[0] == 401

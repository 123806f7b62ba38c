"""The origins a source's pages may send from: set and checked (``make source ORIGINS=``,
``make source-origins``), and what the embedded API front routes for the browser SDKs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from audience.domain.errors import InvalidInput, NotFound
from audience.domain.sources import checked_origins
from audience.services.sources import WriteKeys, issue_key, set_origins
from embedded.api_front import Route, _path_pattern, proxy_event
from sources import _origins
from tests.unit.fakes import MemorySources

NOW = datetime(2026, 12, 7, 7, 0, tzinfo=UTC)


def test_origins_are_kept_as_a_browser_sends_them_and_a_bad_one_is_named() -> None:
    assert checked_origins(["https://Shop.example.com/", "http://localhost:*", "https://shop.example.com"]) == [
        "https://shop.example.com",
        "http://localhost:*",
    ]
    with pytest.raises(InvalidInput) as refused:
        checked_origins(["https://ok.example", "shop.example.com", "https://x.example/path"])
    assert [e.reason.split(" is not")[0] for e in refused.value.errors] == ["'shop.example.com'",
                                                                            "'https://x.example/path'"]  # fmt: skip


def test_set_origins_replaces_them_and_write_keys_see_the_change() -> None:
    store = MemorySources()
    key, _ = issue_key("web", store, "pepper", NOW)

    assert set_origins("web", ["https://shop.example.com", "http://localhost:*"], store) == [
        "https://shop.example.com",
        "http://localhost:*",
    ]
    keys = WriteKeys(store, "pepper")
    assert keys.source(key, NOW).allows("http://localhost:5173")
    assert keys.allows("https://shop.example.com", NOW) and not keys.allows("https://evil.example", NOW)
    assert not keys.source(key, NOW).allows("https://shop.example.com:8443")  # a port is part of the origin

    assert set_origins("web", [], store) == []  # servers only
    with pytest.raises(InvalidInput):
        set_origins("web", ["ftp://shop.example.com"], store)
    with pytest.raises(NotFound):
        set_origins("nope", ["https://shop.example.com"], store)


def test_the_command_line_takes_origins_comma_or_space_separated() -> None:
    assert _origins(["https://a.example,http://localhost:*", "https://b.example https://c.example"]) == [
        "https://a.example", "http://localhost:*", "https://b.example", "https://c.example"]  # fmt: skip
    assert _origins([""]) == []


def test_the_api_front_routes_a_trailing_slash_and_hands_over_the_query_and_the_path_asked() -> None:
    route = Route(
        "GET", "/sourceConfig", "arn:aws:lambda:us-east-1:123456789012:function:f", _path_pattern("/sourceConfig")
    )
    settings = "/v1/projects/{writeKey}/settings"
    by_key = Route("OPTIONS", settings, route.function_arn, _path_pattern(settings))

    assert route.match("GET", "/sourceConfig/") == {} and route.match("GET", "/sourceConfig") == {}
    assert by_key.match("OPTIONS", "/v1/projects/local-dev-write-key/settings") == {"writeKey": "local-dev-write-key"}
    event = proxy_event("GET", "/sourceConfig/?p=npm&writeKey=k", {"Host": ["127.0.0.1:3000"]}, b"", route, {}, "Prod")
    assert event["queryStringParameters"] == {"p": "npm", "writeKey": "k"}
    assert event["requestContext"]["path"] == "/sourceConfig/"  # served at the root: no /<stage> in the URL

"""What browser SDKs send and fetch, through the ingest handler with its bundle built by the
composition root on the in-memory infrastructure: analytics.js 2.0's ``/v1/t|i|p|s|g|a`` and
``/v1/b`` (text/plain JSON with the write key inside), RudderStack's beacon and ``/sourceConfig``,
the settings document analytics.js starts from, and CORS per source (preflights, the origin
echoed on every answer, a page whose origin the key's source does not list refused)."""

from __future__ import annotations

import base64
import json
from copy import deepcopy
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import pytest

from audience.bootstrap import ingest
from audience.domain.sources import SourceRegistry, key_hash
from audience.domain.tracking import MAX_MESSAGE_BYTES
from audience.settings import IngestSettings
from tests.conftest import load_event
from tests.unit.fakes import MemoryInfrastructure
from tests.unit.handlers.test_handlers import COMMON, PEPPER, context, handler_module

WRITE_KEY, SERVER_KEY = "web-write-key", "backend-write-key"
PAGE, ELSEWHERE, OTHER_PAGE = "https://shop.example", "https://evil.example", "https://app.example"
NOW = datetime.now(UTC)


@pytest.fixture
def infra(monkeypatch: pytest.MonkeyPatch) -> MemoryInfrastructure:
    """Source ``web`` takes pages of the shop and of localhost (any port); ``backend`` only servers;
    ``ios`` pages of another origin."""
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "AudienceEngine")
    infra = MemoryInfrastructure(secrets={"pepper": [PEPPER]})
    registry = SourceRegistry().issued("web", key_hash(PEPPER, WRITE_KEY), NOW)
    registry = registry.issued("backend", key_hash(PEPPER, SERVER_KEY), NOW).issued("ios", key_hash(PEPPER, "k"), NOW)
    registry = registry.with_origins("web", [PAGE, "http://localhost:*"]).with_origins("ios", [OTHER_PAGE])
    infra.source_registry.registry = registry
    return infra


@pytest.fixture
def app(infra: MemoryInfrastructure) -> ModuleType:
    settings = IngestSettings.from_env({**COMMON, "EVENTS_STREAM": "events"})
    return handler_module("ingest", lambda: ingest.build(settings, infra))


def request(path: str, body: Any = None, origin: str | None = PAGE, method: str = "POST",
            query: dict[str, str] | None = None, **headers: str) -> dict[str, Any]:  # fmt: skip
    """API Gateway's proxy event of a browser's request (bodies arrive base64: BinaryMediaTypes */*)."""
    event: dict[str, Any] = deepcopy(load_event("ingest_order_completed.json"))
    sent = {"Content-Type": "text/plain;charset=UTF-8", "Host": "abc123.execute-api.us-east-1.amazonaws.com",
            "X-Forwarded-Proto": "https", **({"Origin": origin} if origin else {}),
            **{name.replace("_", "-"): value for name, value in headers.items()}}  # fmt: skip
    raw = (body if isinstance(body, str) else json.dumps(body)).encode() if body is not None else b""
    resource = "/v1/projects/{writeKey}/settings" if path.startswith("/v1/projects/") else path
    event.update(
        resource=resource, path=path, httpMethod=method, headers=sent,
        multiValueHeaders={name: [value] for name, value in sent.items()},
        queryStringParameters=query,
        multiValueQueryStringParameters={k: [v] for k, v in query.items()} if query else None,
        body=base64.b64encode(raw).decode() if raw else None, isBase64Encoded=bool(raw),
        requestContext={**event["requestContext"], "resourcePath": resource, "httpMethod": method,
                        "path": f"/Prod{path}", "stage": "Prod"},
    )  # fmt: skip
    return event


def headers_of(answer: dict[str, Any]) -> dict[str, str]:
    single = {name.lower(): str(value) for name, value in (answer.get("headers") or {}).items()}
    multi = {
        name.lower(): ", ".join(map(str, values)) for name, values in (answer.get("multiValueHeaders") or {}).items()
    }
    return {**single, **multi}


def message(n: int = 1, **fields: Any) -> dict[str, Any]:
    """A track call as analytics.js 2.0 posts it: the message, the write key, sentAt, _metadata."""
    return {"type": "track", "event": "Product Viewed", "anonymousId": "anon-1", "messageId": f"ajs-next-{n}",
            "properties": {"sku": "A-1"}, "timestamp": NOW.isoformat(), "sentAt": NOW.isoformat(),
            "context": {"library": {"name": "analytics.js", "version": "next-1.84.3"}, "userAgent": "Mozilla/5.0"},
            "_metadata": {"bundled": ["Segment.io"], "unbundled": [], "bundledIds": []},
            "writeKey": WRITE_KEY, **fields}  # fmt: skip


def test_each_analytics_js_call_lands_as_its_type_with_the_origin_echoed(
    app: ModuleType, infra: MemoryInfrastructure
) -> None:
    calls: dict[str, dict[str, Any]] = {
        "t": {"event": "Viewed"}, "i": {"userId": "u1", "traits": {"plan": "gold"}}, "p": {"name": "Home"},
        "s": {"name": "Cart"}, "g": {"userId": "u1", "groupId": "g1"}, "a": {"userId": "u1", "previousId": "anon-1"},
    }  # fmt: skip
    for n, (initial, fields) in enumerate(calls.items()):
        body = {k: v for k, v in message(n).items() if k not in ("type", "event")} | fields
        answer = app.handler(request(f"/v1/{initial}", body), context())

        assert answer["statusCode"] == 200, answer["body"]
        assert json.loads(answer["body"]) == {"success": True, "accepted": 1, "rejected": 0, "errors": []}
        assert headers_of(answer)["access-control-allow-origin"] == PAGE
        assert "access-control-allow-credentials" not in headers_of(answer)
    assert [m.type for m in infra.sink.messages] == ["track", "identify", "page", "screen", "group", "alias"]
    assert [m.message_id for m in infra.sink.messages] == [f"ajs-next-{n}" for n in range(6)]


def test_the_write_key_may_come_as_http_basic_instead_of_in_the_body(
    app: ModuleType, infra: MemoryInfrastructure
) -> None:
    body = {k: v for k, v in message().items() if k != "writeKey"}
    basic = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()

    answer = app.handler(request("/v1/t", body, Authorization=basic), context())

    assert answer["statusCode"] == 200 and len(infra.sink.messages) == 1


def test_a_batch_keeps_its_valid_messages_and_reports_the_others(app: ModuleType, infra: MemoryInfrastructure) -> None:
    batch = [message(1), {"type": "track", "anonymousId": "anon-1"}, message(3)]  # the second has no event
    answer = app.handler(
        request("/v1/b", {"writeKey": WRITE_KEY, "batch": batch, "sentAt": NOW.isoformat()}), context()
    )

    body = json.loads(answer["body"])
    assert answer["statusCode"] == 200 and (body["accepted"], body["rejected"]) == (2, 1)
    assert body["errors"][0]["field"].startswith("batch[1]")
    assert [m.message_id for m in infra.sink.messages] == ["ajs-next-1", "ajs-next-3"]
    assert infra.dead.sent and "batch[1]" in infra.dead.sent[0][0]


def test_a_message_over_32_kb_is_refused_on_its_own_with_its_reason(
    app: ModuleType, infra: MemoryInfrastructure
) -> None:
    big = message(2, properties={"blob": "x" * MAX_MESSAGE_BYTES})
    answer = app.handler(request("/v1/b", {"writeKey": WRITE_KEY, "batch": [message(1), big]}), context())

    body = json.loads(answer["body"])
    assert (body["accepted"], body["rejected"]) == (1, 1)
    assert body["errors"] == [{"field": "batch[1]", "reason": "a message is at most 32 KB"}]
    assert headers_of(answer)["access-control-allow-origin"] == PAGE


def test_a_beacon_carries_its_key_in_the_query(app: ModuleType, infra: MemoryInfrastructure) -> None:
    rudder = {"type": "page", "anonymousId": "anon-9", "messageId": "rs-1", "name": "Home",
              "originalTimestamp": NOW.isoformat(), "channel": "web"}  # fmt: skip
    event = request("/beacon/v1/batch", {"batch": [rudder], "sentAt": NOW.isoformat()}, query={"writeKey": WRITE_KEY})

    answer = app.handler(event, context())

    assert answer["statusCode"] == 200 and [m.message_id for m in infra.sink.messages] == ["rs-1"]
    missing = request("/beacon/v1/batch", {"batch": [rudder]}, query={"writeKey": "nope"})
    assert app.handler(missing, context())["statusCode"] == 401


def test_a_page_whose_origin_the_keys_source_does_not_list_is_refused_and_counted(
    app: ModuleType, infra: MemoryInfrastructure, capsys: pytest.CaptureFixture[str]
) -> None:
    unknown = app.handler(request("/v1/t", message(), origin=ELSEWHERE), context())
    another_sources = app.handler(request("/v1/t", message(), origin=OTHER_PAGE), context())
    servers_only = app.handler(request("/v1/t", message(writeKey=SERVER_KEY)), context())

    for answer in (unknown, another_sources, servers_only):
        assert answer["statusCode"] == 403
        assert json.loads(answer["body"])["code"] == "forbidden"
    assert ELSEWHERE in json.loads(unknown["body"])["message"]
    assert "access-control-allow-origin" not in headers_of(unknown)  # no source knows that origin
    assert headers_of(another_sources)["access-control-allow-origin"] == OTHER_PAGE  # the page may read why
    assert infra.sink.messages == []
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    counted = [metric.get("OriginRefused", 0) for metric in emitted]  # (a list once added twice in a flush)
    assert sum(sum(c) if isinstance(c, list) else c for c in counted) == 3


def test_a_server_without_an_origin_is_unaffected(app: ModuleType, infra: MemoryInfrastructure) -> None:
    answer = app.handler(request("/v1/batch", {"writeKey": SERVER_KEY, "batch": [message()]}, origin=None), context())

    assert answer["statusCode"] == 200 and len(infra.sink.messages) == 1
    assert "access-control-allow-origin" not in headers_of(answer)


def test_errors_echo_the_origin_too(app: ModuleType) -> None:
    """A browser reports an answer without the origin as a network failure, and the SDK retries it."""
    unknown_key = app.handler(request("/v1/t", message(writeKey="nope")), context())
    not_json = app.handler(request("/v1/t", "{not json"), context())
    from_localhost = app.handler(request("/v1/t", "{not json", origin="http://localhost:5173"), context())

    assert [a["statusCode"] for a in (unknown_key, not_json, from_localhost)] == [401, 400, 400]
    assert headers_of(unknown_key)["access-control-allow-origin"] == PAGE
    assert headers_of(not_json)["access-control-allow-origin"] == PAGE
    assert headers_of(from_localhost)["access-control-allow-origin"] == "http://localhost:5173"
    assert "origin" in headers_of(not_json)["vary"].lower()


@pytest.mark.parametrize("path", ["/v1/t", "/v1/b", "/v1/batch", "/v1/track", "/beacon/v1/batch",
                                  f"/v1/projects/{WRITE_KEY}/settings", "/sourceConfig"])  # fmt: skip
def test_a_preflight_is_answered_for_an_origin_some_source_allows_echoing_the_headers_asked(
    app: ModuleType, path: str
) -> None:
    asked = "authorization,content-type,anonymousid,sentat,x-retry-count"
    answer = app.handler(request(path, method="OPTIONS", Access_Control_Request_Method="POST",
                                 Access_Control_Request_Headers=asked), context())  # fmt: skip

    headers = headers_of(answer)
    assert answer["statusCode"] == 204 and not answer.get("body")
    assert headers["access-control-allow-origin"] == PAGE
    assert headers["access-control-allow-headers"] == asked
    assert "POST" in headers["access-control-allow-methods"] and int(headers["access-control-max-age"]) > 0
    assert "access-control-allow-credentials" not in headers

    refused = app.handler(request(path, method="OPTIONS", origin=ELSEWHERE), context())
    assert refused["statusCode"] == 403 and "access-control-allow-origin" not in headers_of(refused)


def test_the_settings_document_points_analytics_js_at_this_api(app: ModuleType) -> None:
    answer = app.handler(request(f"/v1/projects/{WRITE_KEY}/settings", method="GET"), context())

    assert answer["statusCode"] == 200
    settings = json.loads(answer["body"])
    assert settings["integrations"] == {"Segment.io": {
        "apiKey": WRITE_KEY, "apiHost": "abc123.execute-api.us-east-1.amazonaws.com/Prod/v1", "protocol": "https",
        "addBundledMetadata": True, "unbundledIntegrations": []}}  # fmt: skip
    assert settings["metrics"] == {"sampleRate": 0}  # nothing reported to Segment
    assert settings["remotePlugins"] == [] and settings["enabledMiddleware"] == {}
    headers = headers_of(answer)
    assert headers["cache-control"] == "public, max-age=300"
    assert headers["access-control-allow-origin"] == PAGE and "origin" in headers["vary"].lower()


def test_the_settings_document_follows_the_host_and_scheme_the_page_used(app: ModuleType) -> None:
    event = request(f"/v1/projects/{WRITE_KEY}/settings", method="GET", origin="http://localhost:8080")
    event["headers"] = {"Host": "127.0.0.1:3000", "Origin": "http://localhost:8080"}  # the embedded stack: no proxy
    event["requestContext"]["path"] = event["path"]

    segment_io = json.loads(app.handler(event, context())["body"])["integrations"]["Segment.io"]

    assert (segment_io["apiHost"], segment_io["protocol"]) == ("127.0.0.1:3000/v1", "http")


def test_the_settings_of_an_unknown_key_are_401_and_of_another_origin_403(app: ModuleType) -> None:
    unknown = app.handler(request("/v1/projects/nope/settings", method="GET"), context())
    elsewhere = app.handler(request(f"/v1/projects/{WRITE_KEY}/settings", method="GET", origin=OTHER_PAGE), context())

    assert unknown["statusCode"] == 401 and "cache-control" not in headers_of(unknown)
    assert elsewhere["statusCode"] == 403


def test_rudderstacks_source_config_names_an_enabled_source_without_destinations(app: ModuleType) -> None:
    basic = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    event = request("/sourceConfig/", method="GET", query={"p": "npm", "v": "3.34.1", "writeKey": WRITE_KEY},
                    Authorization=basic)  # fmt: skip

    answer = app.handler(event, context())

    assert answer["statusCode"] == 200, answer["body"]
    source = json.loads(answer["body"])["source"]
    assert (source["id"], source["name"], source["writeKey"], source["enabled"]) == ("web", "web", WRITE_KEY, True)
    assert source["destinations"] == [] and source["config"]["statsCollection"]["errors"]["enabled"] is False
    assert headers_of(answer)["access-control-allow-origin"] == PAGE
    no_key = app.handler(request("/sourceConfig", method="GET"), context())
    assert no_key["statusCode"] == 401

"""GIVEN the embedded stack, a source ``shop-e2e`` whose pages live at https://shop.example and a
customer who browsed anonymously, then identified and placed a large order, WHEN a page asks
``GET /v1/web/personalization`` over HTTP with the source's write key and the visitor's anonymous
id, THEN it gets what the server route chooses for the customer, reduced to what to show (no
id, trait or contact detail), cacheable for a few seconds per visitor, with CORS for its origin
alone; an unknown visitor gets the default content; and the write key reads no profile through
any route (API Gateway's x-api-key check, which the embedded front enforces)."""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.error import HTTPError
from urllib.parse import quote, urlencode
from urllib.request import Request, urlopen

import boto3
import pytest

from audience.adapters.sources import DynamoSources
from audience.domain.sources import key_hash
from audience.services.sources import issue_key
from embedded.demo import get, post
from embedded.stack import EmbeddedStack
from tests.e2e.test_triggers_api import RULES, order, upload_config

PAGE, OTHER_PAGE, STRANGER = "https://shop.example", "https://blog.example", "https://evil.example"
ROUTE = "/v1/web/personalization"
PRIVATE = ("email", "phone", "traits", "customerId", "identities", "reason", "segmentId", "rfm", "tier")


def ask(method: str, url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    """One request as a browser's fetch sends it: status, headers (lower case) and JSON body."""
    try:
        with urlopen(Request(url, headers=headers or {}, method=method), timeout=30) as response:
            status, sent, raw = response.status, dict(response.headers), response.read()
    except HTTPError as error:
        status, sent, raw = error.code, dict(error.headers), error.read()
    return status, {k.lower(): v for k, v in sent.items()}, json.loads(raw) if raw else None


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def web_sources(session: boto3.session.Session, stack: EmbeddedStack, origins: dict[str, list[str]]) -> dict[str, str]:
    """A source per name, each with a new write key and allowing exactly its origins: the keys.
    (Through the registry's adapter, as ``make source`` does; the read API sees them within
    ModelRefreshSeconds.)"""
    secrets, store = session.client("secretsmanager"), DynamoSources(stack.outputs["ProfilesTableName"])
    pepper = secrets.get_secret_value(SecretId=stack.outputs["PiiPepperName"])["SecretString"]
    now = datetime.now(UTC)
    keys = {name: issue_key(name, store, pepper, now, f"{name}-{uuid.uuid4().hex}")[0] for name in origins}
    registry = store.load()
    sources = {name: s.model_copy(update={"allowed_origins": origins.get(name, s.allowed_origins)})
               for name, s in registry.sources.items()}  # fmt: skip
    store.save(registry.model_copy(update={"sources": sources}))
    assert all(store.load().source_of(key_hash(pepper, key)) for key in keys.values())
    return keys


@pytest.fixture(scope="module")
def write_key(aws: boto3.session.Session, embedded: EmbeddedStack) -> str:
    """The write key of a source for pages at ``PAGE``; another source allows ``OTHER_PAGE`` (an
    origin some source allows, but not the key's)."""
    keys = web_sources(aws, embedded, {"shop-e2e": [PAGE], "blog-e2e": [OTHER_PAGE]})
    time.sleep(1.5)  # the read API rereads the registry every ModelRefreshSeconds (1 s here)
    return keys["shop-e2e"]


@pytest.fixture(scope="module")
def visitor(api: str, aws: boto3.session.Session, embedded: EmbeddedStack) -> tuple[str, str]:
    """(anonymous id, user id) of a customer who browsed, then identified and ordered: the
    anonymous profile is merged into the user's and kept as a redirect, and the big order places
    them in a tier by the rules this module uploads (another module on the worker's stack may have
    left others in force)."""
    assert upload_config(aws, embedded, RULES)["accepted"] is True
    time.sleep(1.5)  # ModelRefreshSeconds in the e2e stack: the stream reads the new rules
    anonymous, user = f"anon-{uuid.uuid4().hex[:10]}", f"web-{uuid.uuid4().hex[:10]}"
    page = {"type": "page", "anonymousId": anonymous, "messageId": f"{anonymous}-p", "name": "Home"}
    assert post(f"{api}/v1/events", page)[0] == 202
    assert wait(lambda: get(f"{api}/v1/customers/{anonymous}")[0] == 200)
    identify = {"type": "identify", "userId": user, "anonymousId": anonymous, "messageId": f"{user}-i",
                "traits": {"email": "grace@example.com", "phone": "+1 555 0100", "plan": "platinum"}}  # fmt: skip
    assert post(f"{api}/v1/events", {"batch": [identify, order(user, 2500.0, f"{user}-o")]})[0] == 202

    def merged_and_placed() -> bool:
        status, profile = get(f"{api}/v1/customers/{anonymous}")  # the redirect followed
        return status == 200 and profile["customerId"] == user and profile["tier"] is not None

    assert wait(merged_and_placed, 90), get(f"{api}/v1/customers/{anonymous}")
    return anonymous, user


def wait(done: Any, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_a_page_gets_what_the_server_route_chooses_and_nothing_about_the_customer(
    api: str, write_key: str, visitor: tuple[str, str]
) -> None:
    anonymous, user = visitor
    _, server = get(f"{api}/v1/customers/{user}/personalization")
    _, segment = get(f"{api}/v1/segments/{quote(server['segmentId'], safe='')}")

    status, sent, body = ask("GET", f"{api}{ROUTE}?anonymousId={anonymous}", {"Origin": PAGE, **basic(write_key)})

    assert status == 200, body
    assert body == {"personalized": server["personalized"], "content": server["content"],
                    "segment": segment["name"], "experiment": server["experiment"]}  # fmt: skip
    assert body["personalized"] is True and body["segment"]
    text = json.dumps(body)
    assert user not in text and anonymous not in text and "grace" not in text and "platinum" not in text
    assert not set(body) & set(PRIVATE)
    assert sent["cache-control"] == "private, max-age=5"
    assert sent["access-control-allow-origin"] == PAGE and "access-control-allow-credentials" not in sent
    # the key in the query (no preflight: a simple GET), and the user id
    query = urlencode({"userId": user, "writeKey": write_key})
    assert ask("GET", f"{api}{ROUTE}?{query}", {"Origin": PAGE})[2] == body


def test_an_unknown_visitor_gets_the_default_content(api: str, write_key: str, visitor: tuple[str, str]) -> None:
    unknown = f"{api}{ROUTE}?anonymousId=never-{uuid.uuid4().hex}"
    status, _, body = ask("GET", unknown, {"Origin": PAGE, **basic(write_key)})

    assert status == 200
    assert body["personalized"] is False and body["segment"] is None and body["experiment"] is None
    assert body["content"]["id"]


def test_cors_is_the_sources_a_preflight_for_its_origins_and_a_refusal_for_the_others(
    api: str, write_key: str, visitor: tuple[str, str]
) -> None:
    asked = {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}
    status, sent, _ = ask("OPTIONS", f"{api}{ROUTE}", {"Origin": PAGE, **asked})
    assert status == 204 and sent["access-control-allow-origin"] == PAGE
    assert sent["access-control-allow-headers"] == "authorization" and "GET" in sent["access-control-allow-methods"]
    status, sent, _ = ask("OPTIONS", f"{api}{ROUTE}", {"Origin": STRANGER, **asked})
    assert status == 403 and "access-control-allow-origin" not in sent

    url = f"{api}{ROUTE}?anonymousId={visitor[0]}"
    status, sent, body = ask("GET", url, {"Origin": OTHER_PAGE, **basic(write_key)})  # another source's page
    assert status == 403 and body["code"] == "forbidden" and "content" not in body
    assert sent["access-control-allow-origin"] == OTHER_PAGE  # (it may read why)
    status, sent, _ = ask("GET", url, {"Origin": STRANGER, **basic(write_key)})
    assert status == 403 and "access-control-allow-origin" not in sent
    status, sent, body = ask("GET", url, {"Origin": PAGE, **basic("not-a-key")})
    assert status == 401 and sent["access-control-allow-origin"] == PAGE and "content" not in body


def test_a_write_key_reads_no_profile_through_any_route(api: str, write_key: str, visitor: tuple[str, str]) -> None:
    _, user = visitor
    for path in ("", "/personalization", "/export", "/audit", "/explain"):
        url = f"{api}/v1/customers/{user}{path}"
        for headers, query in (({"x-api-key": write_key}, ""), (basic(write_key), ""), ({}, f"?writeKey={write_key}")):
            status, _, body = ask("GET", url + query, headers)
            assert status == 403, (path, headers, query)
            assert user not in json.dumps(body)
    # nor is the read API's key a write key
    status, _, _ = ask("GET", f"{api}{ROUTE}?userId={user}", {"x-api-key": "local-dev-key"})
    assert status == 401

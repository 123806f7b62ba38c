"""In-page personalization (``GET /v1/web/personalization``) through the read API's handler, its
bundle built by the composition root on the in-memory infrastructure: what a page learns with a
source's write key (only what to show), CORS per source, and the exposure it records."""

from __future__ import annotations

import base64
import json
from copy import deepcopy
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest

from audience.bootstrap import profiles_api
from audience.domain.profile import Profile, Stamped
from audience.domain.segments import Tier
from audience.domain.sources import SourceRegistry, key_hash
from audience.settings import ProfilesApiSettings
from tests.conftest import load_event
from tests.unit.fakes import MemoryInfrastructure
from tests.unit.handlers.test_handlers import COMMON, PEPPER, context, handler_module

WRITE_KEY, OTHER_KEY = "web-write-key", "ios-write-key"
PAGE, ELSEWHERE = "https://shop.example", "https://evil.example"
NOW = datetime.now(UTC)
VIP_TITLE = "Your VIP rewards: early access and free express shipping"  # the shipped mapping's
DEFAULT = {"id": "bestsellers", "kind": "content", "title": "This week's bestsellers"}
CONTACT = {"email": "ada@example.com", "phone": "+44 20 7946 0000", "firstName": "Ada"}


@pytest.fixture
def infra(monkeypatch: pytest.MonkeyPatch) -> MemoryInfrastructure:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "AudienceEngine")
    infra = MemoryInfrastructure(secrets={"pepper": [PEPPER]})
    registry = SourceRegistry()
    registry = registry.issued("web", key_hash(PEPPER, WRITE_KEY), NOW).issued("ios", key_hash(PEPPER, OTHER_KEY), NOW)
    web = registry.sources["web"].model_copy(update={"allowed_origins": [PAGE, "http://localhost:*"]})
    other = registry.sources["ios"].model_copy(update={"allowed_origins": ["https://app.example"]})
    infra.source_registry.registry = registry.model_copy(update={"sources": {"web": web, "ios": other}})
    # a known customer in the High Value tier, with contact details and traits a page must never see,
    # whose anonymous id was merged into them (a redirect)
    high_value = Profile(
        customer_id="user-42", known=True, identities=["user-42", "anon-7"],
        traits={name: Stamped(value, NOW) for name, value in {**CONTACT, "plan": "gold"}.items()},
        tier=Tier(name="High Value", rule="high-value-order", since=NOW),
    )  # fmt: skip
    infra.table.save(high_value, [Profile(customer_id="anon-7", merged_into="user-42")])
    return infra


@pytest.fixture
def api(infra: MemoryInfrastructure) -> ModuleType:
    settings = ProfilesApiSettings.from_env(COMMON)
    return handler_module("profiles_api", lambda: profiles_api.build(settings, infra))


def request(query: dict[str, str] | None, origin: str | None = PAGE, key: str | None = WRITE_KEY,
            method: str = "GET", **headers: str) -> dict[str, Any]:  # fmt: skip
    """The proxy event of a page's request (the write key as HTTP Basic, as analytics.js sends it)."""
    event = deepcopy(load_event("profiles_api_get_customer.json"))
    sent = {"User-Agent": "Mozilla/5.0", **headers}
    if origin:
        sent["Origin"] = origin
    if key:
        sent["Authorization"] = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    path = "/v1/web/personalization"
    context = {**event["requestContext"], "resourcePath": path, "httpMethod": method, "path": f"/dev{path}"}
    event.update(resource=path, path=path, httpMethod=method, headers=sent, pathParameters=None,
                 multiValueHeaders={k: [v] for k, v in sent.items()}, queryStringParameters=query,
                 multiValueQueryStringParameters={k: [v] for k, v in query.items()} if query else None,
                 requestContext=context)  # fmt: skip
    return event


def headers_of(answer: dict[str, Any]) -> dict[str, str]:
    merged = {k: v[-1] for k, v in (answer.get("multiValueHeaders") or {}).items()}
    return {k.lower(): v for k, v in {**merged, **(answer.get("headers") or {})}.items()}


def numbers(value: float | list[float]) -> list[float]:
    """An EMF metric's values (a list once it was added more than once)."""
    return value if isinstance(value, list) else [value]


def test_a_page_learns_what_to_show_its_visitor_and_nothing_about_them(api: ModuleType) -> None:
    answer = api.handler(request({"anonymousId": "anon-7"}), context())

    assert answer["statusCode"] == 200
    body = json.loads(answer["body"])
    assert body == {
        "personalized": True,
        "content": {"id": "vip-rewards", "kind": "offer", "title": VIP_TITLE},
        "segment": "High Value",  # the segment's name, not its definition or the reason the customer is in it
        "experiment": None,
    }
    text = answer["body"]
    for leaked in ("user-42", "anon-7", "gold", "high-value-order", *CONTACT.values()):
        assert leaked not in text, leaked  # no customer id (not even the one asked), trait, rule or contact detail
    sent = headers_of(answer)
    assert sent["cache-control"] == "private, max-age=5"
    assert sent["access-control-allow-origin"] == PAGE and "origin" in sent["vary"].lower()
    assert "access-control-allow-credentials" not in sent


def test_the_write_key_may_come_in_the_query_and_a_user_id_must_be_the_anonymous_visitor(
    api: ModuleType, infra: MemoryInfrastructure
) -> None:
    """The anonymous id proves the visitor (only their browser holds it); a user id is guessable,
    so it is checked against it and never finds a customer on its own."""
    infra.table.save(Profile(customer_id="anon-9", known=False))  # another browser's visitor
    both = api.handler(request({"userId": "user-42", "anonymousId": "anon-7", "writeKey": WRITE_KEY}, key=None),
                       context())  # fmt: skip
    assert both["statusCode"] == 200 and json.loads(both["body"])["segment"] == "High Value"
    before = infra.table.get("anon-9")
    for guessed in ({"userId": "user-42", "anonymousId": "anon-9"}, {"userId": "user-42", "anonymousId": "never-seen"}):
        answer = api.handler(request(guessed), context())
        assert answer["statusCode"] == 200, guessed
        assert json.loads(answer["body"]) == {"personalized": False, "content": DEFAULT, "segment": None,
                                              "experiment": None}, guessed  # fmt: skip
    assert infra.table.get("anon-9") == before  # nothing recorded for the browser that guessed
    alone = api.handler(request({"userId": "user-42"}), context())
    assert alone["statusCode"] == 400 and "anonymousId" in alone["body"]


def test_an_unknown_visitor_gets_the_default_content_not_a_404(api: ModuleType, infra: MemoryInfrastructure) -> None:
    unknown = api.handler(request({"anonymousId": "never-seen"}), context())
    infra.table.save(Profile(customer_id="nobody-special", known=True))  # known, in no segment
    plain = api.handler(request({"anonymousId": "nobody-special"}), context())

    assert unknown["statusCode"] == plain["statusCode"] == 200
    shown = {"personalized": False, "content": DEFAULT, "segment": None, "experiment": None}
    assert json.loads(unknown["body"]) == json.loads(plain["body"]) == shown  # the route does not tell who is known
    assert "never-seen" not in unknown["body"] and "nobody-special" not in plain["body"]


def test_a_bad_key_is_401_a_missing_id_400_both_with_the_origin_echoed(api: ModuleType) -> None:
    for key in ("wrong-key", None):
        refused = api.handler(request({"anonymousId": "anon-7"}, key=key), context())
        assert refused["statusCode"] == 401, key
        assert "user-42" not in refused["body"] and "vip-rewards" not in refused["body"]
        assert headers_of(refused)["access-control-allow-origin"] == PAGE  # the page can read why
    missing = api.handler(request(None), context())
    assert missing["statusCode"] == 400 and headers_of(missing)["access-control-allow-origin"] == PAGE
    too_long = api.handler(request({"anonymousId": "x" * 769}), context())
    assert too_long["statusCode"] == 400 and headers_of(too_long)["access-control-allow-origin"] == PAGE


def test_an_origin_the_keys_source_does_not_allow_is_refused_and_counted(
    api: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    # another source allows this origin (a preflight passes), this key's source does not
    borrowed = api.handler(request({"anonymousId": "anon-7"}, origin="https://app.example"), context())
    assert borrowed["statusCode"] == 403 and "vip-rewards" not in borrowed["body"]
    assert json.loads(borrowed["body"])["code"] == "forbidden"
    assert headers_of(borrowed)["access-control-allow-origin"] == "https://app.example"  # it may read the 403
    # no source allows this one: refused, and nothing tells its browser to let the page read the answer
    stranger = api.handler(request({"anonymousId": "anon-7"}, origin=ELSEWHERE), context())
    assert stranger["statusCode"] == 403 and "access-control-allow-origin" not in headers_of(stranger)
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert sum(sum(numbers(m.get("OriginRefused", 0))) for m in metrics) == 2
    # a server (no Origin) is not a page: the key alone decides
    assert api.handler(request({"anonymousId": "anon-7"}, origin=None), context())["statusCode"] == 200


def test_a_preflight_is_answered_for_an_origin_some_source_allows(api: ModuleType) -> None:
    asked = {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}
    for origin in (PAGE, "http://localhost:5173", "https://app.example"):
        answer = api.handler(request(None, origin=origin, key=None, method="OPTIONS", **asked), context())
        sent = headers_of(answer)
        assert answer["statusCode"] == 204, origin
        assert sent["access-control-allow-origin"] == origin and "GET" in sent["access-control-allow-methods"]
        assert sent["access-control-allow-headers"] == "authorization"
        assert "access-control-allow-credentials" not in sent
    refused = api.handler(request(None, origin=ELSEWHERE, key=None, method="OPTIONS", **asked), context())
    assert refused["statusCode"] == 403 and "access-control-allow-origin" not in headers_of(refused)


def test_the_experiment_variant_is_shown_and_its_exposure_recorded_as_the_server_route_records_it(
    api: ModuleType, infra: MemoryInfrastructure
) -> None:
    offer = {"id": "free-shipping", "kind": "offer", "title": "Free shipping"}
    variants = [{"id": "control", "weight": 1e-9}, {"id": "offer", "weight": 1, "content": offer}]  # offer for all
    experiment = {"id": "vip-shipping", "control": "control", "segments": ["tier:high-value"], "windowDays": 14,
                  "start": (NOW - timedelta(hours=1)).isoformat(), "end": (NOW + timedelta(days=7)).isoformat(),
                  "variants": variants}  # fmt: skip
    infra.objects.put_text("live/experiments.json", json.dumps({"holdout": 0, "experiments": [experiment]}))

    body = json.loads(api.handler(request({"anonymousId": "anon-7"}), context())["body"])
    again = json.loads(api.handler(request({"anonymousId": "anon-7"}), context())["body"])

    assert body == again
    assert body["experiment"] == {"id": "vip-shipping", "variant": "offer"} and body["content"] == offer
    exposure = infra.table.items["user-42"].exposures["vip-shipping"]  # on the canonical profile, once
    assert exposure.variant == "offer"
    server = deepcopy(load_event("profiles_api_get_customer.json"))
    server.update(path="/v1/customers/user-42/personalization", resource="/v1/customers/{customerId}/personalization",
                  pathParameters={"customerId": "user-42"})  # fmt: skip
    assert json.loads(api.handler(server, context())["body"])["experiment"] == body["experiment"]
    assert infra.table.items["user-42"].exposures["vip-shipping"] == exposure  # not recorded twice


def test_a_visitor_who_refused_personalization_gets_the_default(api: ModuleType, infra: MemoryInfrastructure) -> None:
    profile = infra.table.items["user-42"]
    infra.table.save(profile.consented({"personalization": False}, NOW, "api"))

    body = json.loads(api.handler(request({"anonymousId": "anon-7"}), context())["body"])

    assert body["personalized"] is False and body["segment"] is None and body["content"]["id"] == "bestsellers"

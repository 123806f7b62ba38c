"""GIVEN a shop page served from another origin than the API, loading the real browser SDKs
(Segment's analytics-next and RudderStack's JS SDK v3, the pinned npm packages bundled by
`make browser-sdks`, nothing from a CDN) pointed at the embedded stack, WHEN a visitor browses,
signs in, views a product, orders, joins an account and is aliased, THEN every call lands on the
right profile exactly once, also when the first attempt of every message fails (a 500, or an
answer lost after the API applied it: the SDK retries and the API deduplicates by messageId);
scrolling and the time on the page become the profile's engagement; the page shows what the
personalization route chooses; a page on an origin the source does not allow sends nothing that
lands; and the write key reads no profile.

The requests each test saw (``Wire``) are in its assertion messages: what the SDK sent, what it got.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import expect

from embedded.stack import LOCAL_API_KEY, LOCAL_WRITE_KEY
from tests.browser.conftest import SDKS, TIMEOUT_MS, Shop, Wire, flaky_api
from tests.e2e.test_profile_engine import wait_until

FOLD_SECONDS = 120  # the embedded stack folds one invocation at a time, beside the other tiers
SETTLE_SECONDS = 3  # after a profile is complete: long enough for a duplicate behind it to fold
BASIC = "Basic " + base64.b64encode(f"{LOCAL_WRITE_KEY}:".encode()).decode()


def get(api: str, path: str, headers: dict[str, str]) -> tuple[int, Any]:
    request = urllib.request.Request(api + path, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return int(response.status), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def customer(api: str, customer_id: str) -> dict[str, Any] | None:
    status, body = get(api, f"/v1/customers/{urllib.request.quote(customer_id, safe='')}", {"x-api-key": LOCAL_API_KEY})
    if status == 404:
        return None
    assert status == 200, (status, body)
    return dict(body)


@dataclass
class ShopTab:
    page: Any
    wire: Wire

    def run(self, body: str, *args: Any) -> Any:
        """``body`` (JavaScript) once the page's SDK is loaded, with ``c`` its client and ``a`` the arguments."""
        return self.page.evaluate(f"async (a) => {{ const c = await shop.ready; {body} }}", list(args))

    def acknowledged(self) -> set[str]:
        """The messageIds of the page's requests that got a 2xx answer, as the page saw them."""
        answered = "shop.wire.filter((e) => e.status >= 200 && e.status < 300).flatMap((e) => e.messageIds)"
        return set(self.page.evaluate(answered))

    def sent(self) -> set[str]:
        return set(self.page.evaluate("shop.wire.flatMap((e) => e.messageIds)"))

    def report(self, base: str) -> str:
        seen = self.page.evaluate("shop.wire")
        return self.wire.report(base) + "\nas the page saw them:\n" + "\n".join(map(str, seen))

    def ready(self, seconds: float = 20) -> str:
        """'loaded', or why the SDK did not load within ``seconds``."""
        return str(self.page.evaluate("""(ms) => Promise.race([
            shop.ready.then(() => 'loaded', (e) => 'failed: ' + e.message),
            new Promise((resolve) => setTimeout(() => resolve('not loaded after ' + ms + ' ms'), ms))])""",
            seconds * 1000))  # fmt: skip


@pytest.fixture
def tabs(browser: Any) -> Iterator[Callable[[str], ShopTab]]:
    """Opens the shop in a fresh browser context (no cookies, no storage) per call."""
    contexts = []

    def open_tab(url: str) -> ShopTab:
        context = browser.new_context(viewport={"width": 1024, "height": 700})
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        wire = Wire(page)
        page.goto(url)
        return ShopTab(page, wire)

    yield open_tab
    for context in contexts:
        context.close()


def browse_sign_in_order_join_alias(tab: ShopTab, user: str) -> None:
    """The visitor's calls, each awaited as the SDK answers it (queued, not necessarily delivered)."""
    shoe = {"product_id": "sku-trail", "sku": "sku-trail", "name": "Trail shoe", "category": "Shoes", "price": 89.5}
    socks = {"product_id": "sku-socks", "sku": "sku-socks", "name": "Wool socks", "category": "Socks", "price": 15.25}
    order = {"order_id": f"{user}-o1", "total": 120.0, "revenue": 120.0, "currency": "USD",
             "products": [{**shoe, "quantity": 1}, {**socks, "quantity": 2}]}  # fmt: skip
    tab.run(
        """const [user, shoe, order] = a;
        await c.page('Shoes', 'Trail shoe', {category: 'Shoes'});
        await c.track('Product Viewed', {...shoe, products: [shoe]});
        await c.identify(user, {plan: 'pro', email: 'ada@example.com'});
        await c.track('Order Completed', order);
        await c.group('acme', {name: 'Acme', employees: 42});
        await c.alias(user, user + '-crm');""",
        user,
        shoe,
        order,
    )


CALLS = 6  # page, Product Viewed, identify, Order Completed, group, alias


@pytest.mark.parametrize("fault", [None, "error", "lost"], ids=["delivered", "first-attempt-500", "first-answer-lost"])
@pytest.mark.parametrize("sdk", SDKS)
def test_every_call_of_the_page_lands_on_the_profile_once(
    shop: Shop, tabs: Callable[[str], ShopTab], sdk: str, fault: str | None
) -> None:
    """With a fault, the SDK sends to a proxy that fails the first attempt of each message (see
    ``FlakyApi``; with a route of Playwright's instead, Chromium's preflights would be answered by
    Playwright, not the API). Without, the page talks to the API directly, preflights included."""
    user = f"web-{sdk}-{fault or 'ok'}-{uuid.uuid4().hex[:6]}"
    with contextlib.ExitStack() as stack:
        proxy = stack.enter_context(flaky_api(shop.api, fault)) if fault else None
        sent_to = proxy.url if proxy else shop.api
        tab = tabs(shop.page(sdk, api=sent_to))
        assert tab.ready() == "loaded", tab.wire.report()
        anonymous = tab.run("return c.anonymousId();")
        browse_sign_in_order_join_alias(tab, user)

        delivered = wait_until(lambda: len(tab.acknowledged()) >= CALLS and tab.acknowledged(), 90)
        assert delivered and delivered == tab.sent() and len(delivered) == CALLS, tab.report(sent_to)
        if proxy:  # every message was attempted twice at least: the first failed, a retry of the SDK's made it
            retried = set(proxy.attempts) == delivered and min(proxy.attempts.values()) >= 2
            assert retried, (proxy.attempts, tab.report(sent_to))
            assert any(proxy.retry_headers), proxy.retry_headers  # X-Retry-Count / Rsa-Retry-Attempt: the SDK's own

        def complete() -> dict[str, Any] | None:
            profile = customer(shop.api, user)
            counts = profile["eventCounts"] if profile else {}
            every = all(counts.get(t) for t in ("page", "identify", "track", "group", "alias"))
            return profile if every and counts.get("track", 0) >= 2 and profile["rfm"]["orders"] else None  # type: ignore[index]

        if not wait_until(complete, FOLD_SECONDS):
            seen = customer(shop.api, user) or {}
            shown = {k: seen.get(k) for k in ("customerId", "identities", "eventCounts", "trackCounts", "rfm")}
            pytest.fail(f"not every call folded: {json.dumps(shown, default=str)}\n{tab.report(sent_to)}")
        time.sleep(SETTLE_SECONDS)
        profile = customer(shop.api, user)
        assert profile is not None
        report = f"{json.dumps(profile, indent=1)[:3000]}\n{tab.report(sent_to)}"
        counts = {t: profile["eventCounts"].get(t) for t in ("page", "identify", "track", "group", "alias")}
        assert counts == {"page": 1, "identify": 1, "track": 2, "group": 1, "alias": 1}, report
        assert profile["trackCounts"].get("Product Viewed") == 1, report
        assert profile["trackCounts"].get("Order Completed") == 1, report
        assert profile["rfm"]["orders"] == 1 and profile["rfm"]["revenue"] == 120.0, report
        spend = {c["category"]: c["spend"] for c in profile["topCategories"]}
        assert spend == {"Shoes": 89.5, "Socks": 30.5}, report  # the order's products, each line once
        assert [g["groupId"] for g in profile["groups"]] == ["acme"], report
        assert profile["traits"]["plan"] == "pro" and profile["traits"]["email"].startswith("hmac-sha256:"), report
        for other in (anonymous, f"{user}-crm"):  # the anonymous visitor and the aliased id are this customer
            assert (customer(shop.api, other) or {}).get("customerId") == profile["customerId"], (other, report)


def engagement(profile: dict[str, Any]) -> dict[str, Any]:
    """The engagement figures of a profile (GET /v1/customers/{id}: ``engagement``)."""
    return dict(profile["engagement"])


@pytest.mark.parametrize("sdk", SDKS)
def test_scrolling_and_time_on_the_page_become_engagement_on_the_profile(
    shop: Shop, tabs: Callable[[str], ShopTab], sdk: str
) -> None:
    """The page tracks each scroll depth (25-100 %) once as "Scroll Depth Reached" {percent} and,
    when the visitor follows a link, "Time On Page" {seconds}; RudderStack in beacon mode reports the time itself
    ("Page Unloaded" {timeOnPage} in ms, its autoTrack.pageLifecycle), through sendBeacon to
    /beacon/v1/batch. The visitor reads for three seconds, scrolls to the end, follows the link to a second page."""
    user = f"reader-{sdk}-{uuid.uuid4().hex[:6]}"
    query = {"beacon": "1"} if sdk == "rudderstack" else {}
    tab = tabs(shop.page(sdk, **query))
    assert tab.ready() == "loaded", tab.wire.report()
    tab.run("await c.identify(a[0]); await c.page('Guides', 'Trail running');", user)
    for _ in range(12):
        tab.page.mouse.wheel(0, 500)
        tab.page.wait_for_timeout(120)
    tab.page.wait_for_timeout(3000)
    with tab.page.expect_navigation():  # leaving by a link: "Time On Page" (or RudderStack's "Page Unloaded")
        tab.page.get_by_role("link", name="Next guide").click()
    assert tab.ready() == "loaded", tab.wire.report()
    tab.run("await c.page('Guides', 'Trail shoes compared');")

    def engaged() -> dict[str, Any] | None:
        profile = customer(shop.api, user)
        if not profile or profile["eventCounts"].get("page", 0) < 2:
            return None
        figures = engagement(profile)
        return profile if figures.get("maxScrollDepth") == 100 and (figures.get("secondsOnSite") or 0) >= 3 else None

    profile = wait_until(engaged, FOLD_SECONDS)
    last = customer(shop.api, user)
    assert profile, (last and {k: last.get(k) for k in ("engagement", "eventCounts", "trackCounts")},
                     tab.wire.report(shop.api))  # fmt: skip
    figures = engagement(profile)
    assert figures["pageViews"] == 2, figures
    assert 3 <= figures["secondsOnSite"] < 30, figures  # the reading time, counted once
    depth_events = profile["trackCounts"].get("Scroll Depth Reached")
    assert depth_events == 4, profile["trackCounts"]  # 25, 50, 75 and 100 %, each once


def web_personalization(api: str, **visitor: str) -> tuple[int, Any]:
    return get(api, f"/v1/web/personalization?{urllib.parse.urlencode(visitor)}", {"Authorization": BASIC})


@pytest.mark.parametrize("sdk", SDKS)
def test_the_page_shows_the_content_the_personalization_route_chooses(
    shop: Shop, tabs: Callable[[str], ShopTab], sdk: str
) -> None:
    """An unknown visitor sees the default content; once signed in as a customer of the demo's
    data (identify merged the anonymous id into them), what the server route (read key) chooses
    for that customer. The page asks with the
    write key, from its own origin (CORS), and learns nothing beyond what to show."""
    tab = tabs(shop.page(sdk))
    assert tab.ready() == "loaded", tab.wire.report()
    anonymous = tab.run("return c.anonymousId();")
    offer = tab.page.locator("#offer")

    shown = tab.page.evaluate("shop.showOffer()")
    status, expected = web_personalization(shop.api, anonymousId=anonymous)
    assert status == 200 and shown == expected, (shown, expected, tab.wire.report(shop.api))
    assert shown["personalized"] is False
    expect(offer).to_have_text(expected["content"]["title"])

    chosen = {}
    for n in range(1, 31):  # the first demo customer something personal is chosen for
        customer_id = f"shop-{n:04d}"
        status, chosen = get(shop.api, f"/v1/customers/{customer_id}/personalization", {"x-api-key": LOCAL_API_KEY})
        if status == 200 and chosen["personalized"]:
            break
    assert chosen.get("personalized"), chosen
    tab.run("await c.identify(a[0]);", customer_id)
    # the anonymous id is the visitor's proof: shown for the customer once identify merged it into them
    merged = wait_until(lambda: (customer(shop.api, anonymous) or {}).get("customerId") == customer_id, FOLD_SECONDS)
    assert merged, (customer(shop.api, anonymous), tab.wire.report(shop.api))
    shown = tab.page.evaluate("shop.showOffer()")
    report = f"{shown}\n{chosen}\n{tab.wire.report(shop.api)}"
    assert shown and shown["personalized"] is True and shown["content"] == chosen["content"], report
    assert set(shown) <= {"personalized", "content", "segment", "experiment"}, report  # no id, traits or reason
    expect(offer).to_have_text(chosen["content"]["title"])
    asked = [e for e in tab.wire.to(shop.api) if "/v1/web/personalization" in e["url"] and e["method"] == "GET"]
    assert asked and all(e.get("allowOrigin") == shop.allowed for e in asked), report


def test_the_write_key_reads_no_profile(shop: Shop, tabs: Callable[[str], ShopTab]) -> None:
    """The write key sits in every page: as HTTP Basic, as x-api-key or in the query, no read
    route answers it, from a script or from a page."""
    for headers, query in (({"Authorization": BASIC}, ""), ({"x-api-key": LOCAL_WRITE_KEY}, ""),
                           ({}, f"?writeKey={LOCAL_WRITE_KEY}")):  # fmt: skip
        status, body = get(shop.api, f"/v1/customers/shop-0001{query}", headers)
        assert status == 403, (headers, query, status, body)
    tab = tabs(shop.page("segment"))
    seen = tab.page.evaluate(
        """async ([api, key]) => {
            const results = [];
            for (const headers of [{Authorization: 'Basic ' + btoa(key + ':')}, {'x-api-key': key}]) {
                try {
                    const response = await fetch(api + '/v1/customers/shop-0001', {headers});
                    results.push(response.status + ' ' + (await response.text()).slice(0, 80));
                } catch (error) { results.push('refused: ' + error.message); }
            }
            return results;
        }""",
        [shop.api, LOCAL_WRITE_KEY],
    )
    assert not any(r.startswith("200") for r in seen), (seen, tab.wire.report(shop.api))
    assert not any("shop-0001" in r for r in seen), seen


RAW_SENDS = """async ([api, key, user]) => {
    // What a page can send without any SDK and without a preflight: text/plain bodies (no-cors
    // fetches, whose answers the page cannot read) and a beacon.
    const message = (type, extra) => JSON.stringify({type, userId: user, writeKey: key,
        messageId: type + '-' + user + '-' + Math.random(), ...extra});
    const post = (path, body) => fetch(api + path, {method: 'POST', mode: 'no-cors', body,
        headers: {'Content-Type': 'text/plain'}}).then(() => 'sent', (e) => 'refused: ' + e.message);
    return [
        await post('/v1/t', message('track', {event: 'Product Viewed'})),
        await post('/v1/i', message('identify', {traits: {plan: 'pro'}})),
        await post('/v1/b', JSON.stringify({writeKey: key, batch: [JSON.parse(message('page', {name: 'Home'}))]})),
        await post('/v1/track', message('track', {event: 'Cart Viewed'})),
        await post('/v1/batch', JSON.stringify({writeKey: key, batch: [JSON.parse(message('page', {name: 'Cart'}))]})),
        navigator.sendBeacon(api + '/beacon/v1/batch?writeKey=' + key,
            new Blob([JSON.stringify({batch: [JSON.parse(message('track', {event: 'Cart Viewed'}))]})],
                     {type: 'text/plain'})) ? 'queued' : 'not queued',
    ];
}"""


@pytest.mark.parametrize("sdk", SDKS)
def test_a_page_on_an_origin_the_source_does_not_allow_sends_nothing_that_lands(
    shop: Shop, tabs: Callable[[str], ShopTab], sdk: str
) -> None:
    """From http://127.0.0.2:<port> (no source allows it): the SDK gets no settings or source
    configuration it may read, so it cannot send; and what a page sends without a preflight
    (text/plain to each tracking route, a beacon) is refused by the API, not folded. The same
    requests from an allowed origin land (the control, which also bounds the wait)."""
    refused_user, control_user = (f"{kind}-{sdk}-{uuid.uuid4().hex[:6]}" for kind in ("refused", "control"))
    refused = tabs(shop.page(sdk, origin=shop.refused))
    loaded = refused.ready(seconds=10)
    if loaded == "loaded":
        browse_sign_in_order_join_alias(refused, refused_user)
    raw = refused.page.evaluate(RAW_SENDS, [shop.api, LOCAL_WRITE_KEY, refused_user])

    control = tabs(shop.page(sdk))
    control_raw = control.page.evaluate(RAW_SENDS, [shop.api, LOCAL_WRITE_KEY, control_user])
    landed = wait_until(lambda: (p := customer(shop.api, control_user)) and p["eventCounts"].get("page") and p,
                        FOLD_SECONDS)  # fmt: skip
    assert landed, (control_raw, control.wire.report(shop.api))
    time.sleep(SETTLE_SECONDS)

    report = f"SDK: {loaded}; raw sends: {raw}\n{refused.wire.report(shop.api)}"
    assert customer(shop.api, refused_user) is None, report
    allowed_origin = [e for e in refused.wire.to(shop.api) if e.get("allowOrigin")]
    assert allowed_origin == [], report  # no answer let the page read it

"""The demo: a small shop's day of Segment events through the real API, then the profiles; then a
year of order history imported from an export, a segmentation model trained on it, and its report."""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

from audience.adapters.aws import client
from audience.domain.signatures import segment_signature
from embedded.api_front import LOCAL_API_KEY
from embedded.stack import LOCAL_WEBHOOK_SECRET, EmbeddedStack

REPORTS = Path(__file__).resolve().parents[2] / ".local" / "reports"

CURRENCIES = ["USD", "USD", "USD", "EUR", "GBP"]
PAGES = ["Home", "New Arrivals", "Sale", "Product", "Cart"]
COUNTRIES = ["US", "GB", "DE", "FR", "NL"]
CATEGORIES = ["Shoes", "Dresses", "Accessories", "Home", "Beauty"]
PRODUCTS_PER_CATEGORY = 6
# (share of customers, days since the last order, orders, order value): the shop's kinds of buyer
BUYERS = [(0.2, 6, 14, 110), (0.35, 330, 1, 30), (0.3, 40, 5, 55), (0.15, 180, 3, 600)]


def sample_events(customers: int = 25, seed: int = 7) -> list[dict[str, Any]]:
    """Deterministic Segment Spec messages: anonymous browsing, then identify, then shopping."""
    rng = random.Random(seed)  # noqa: S311 (sample data, not secrets)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    events: list[dict[str, Any]] = []
    for n in range(1, customers + 1):
        user, anonymous = f"cust-{n:03d}", f"anon-{n:03d}"
        moment = start + timedelta(hours=rng.randint(0, 24 * 20))
        device = {"type": rng.choice(["mobile", "mobile", "desktop", "tablet"])}

        def at() -> str:
            nonlocal moment
            moment += timedelta(minutes=rng.randint(1, 600))
            return moment.isoformat().replace("+00:00", "Z")

        for _ in range(rng.randint(1, 3)):  # browsing before signing in
            events.append(
                {
                    "type": "page",
                    "anonymousId": anonymous,
                    "name": rng.choice(PAGES),
                    "timestamp": at(),
                    "context": {"device": device, "locale": "en-US"},
                }
            )
        events.append(
            {
                "type": "identify",
                "userId": user,
                "anonymousId": anonymous,
                "timestamp": at(),
                "traits": {
                    "email": f"{user}@example.com",
                    "firstName": f"Customer {n}",
                    "country": rng.choice(COUNTRIES),
                },
            }
        )
        for _ in range(rng.randint(0, 4)):
            events.append(
                {
                    "type": "track",
                    "userId": user,
                    "event": "Product Viewed",
                    "timestamp": at(),
                    "properties": {"product_id": f"sku-{rng.randint(1, 40)}", "price": rng.randint(5, 120)},
                    "context": {"device": device},
                }
            )
        for order in range(rng.choice([0, 0, 1, 1, 2, 3, 5])):
            total = round(rng.uniform(12, 240), 2)
            events.append(
                {
                    "type": "track",
                    "userId": user,
                    "event": "Order Completed",
                    "timestamp": at(),
                    "properties": {
                        "order_id": f"{user}-o{order}",
                        "total": total,
                        "currency": rng.choice(CURRENCIES),
                        "products": [{"category": rng.choice(CATEGORIES), "price": total}],
                    },
                }
            )
    return events


def expected_event_counts(events: list[dict[str, Any]]) -> Counter[str]:
    """How many events each sample customer's profile should count once identities merge."""
    return Counter(e.get("userId") or e["anonymousId"].replace("anon-", "cust-") for e in events)


def post(url: str, body: Any, secret: str | None = None) -> tuple[int, Any]:
    """POST JSON signed as Segment signs webhooks (``X-Signature``: hex HMAC-SHA1 of the body)
    with the local secret, or ``secret`` ("" sends no signature)."""
    data = json.dumps(body).encode()
    key = os.environ.get("WEBHOOK_SECRET") or LOCAL_WEBHOOK_SECRET if secret is None else secret
    headers = {"Content-Type": "application/json"}
    if key:
        headers["X-Signature"] = segment_signature(key, data)
    return _send(Request(url, data=data, headers=headers, method="POST"))


def get(url: str, api_key: str | None = None) -> tuple[int, Any]:
    """GET with the read API's key (the local one unless ``api_key`` says otherwise; "" sends none)."""
    return keyed("GET", url, api_key=api_key)


def keyed(method: str, url: str, body: Any = None, api_key: str | None = None) -> tuple[int, Any]:
    """A request to a keyed route (the local key unless ``api_key`` says otherwise; "" sends none)."""
    key = os.environ.get("API_KEY") or LOCAL_API_KEY if api_key is None else api_key
    headers = {"x-api-key": key} if key else {}
    data = None if body is None else json.dumps(body).encode()
    if data is not None:
        headers["Content-Type"] = "application/json"
    return _send(Request(url, data=data, headers=headers, method=method))


def _send(request: Request, attempts: int = 8) -> tuple[int, Any]:
    """As the SDKs send: a network failure, a timeout, a 429 or a 5xx is retried with backoff
    (the stack deduplicates by message id), anything else answered as it came."""
    for attempt in range(attempts):
        try:
            with urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null")
        except HTTPError as error:
            status, body = error.code, json.loads(error.read() or b"null")
            if status not in RETRIED_STATUSES or attempt == attempts - 1:
                return status, body
        except (URLError, OSError) as error:
            if attempt == attempts - 1:
                raise ConnectionError(f"{request.get_method()} {request.full_url}: {error}") from error
        time.sleep(min(0.25 * 2**attempt, 8))
    raise AssertionError("unreachable")


RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})


def order_history(customers: int = 400, seed: int = 11, now: datetime | None = None) -> str:
    """A year of orders of ``customers`` shop customers, as an export in the default layout."""
    rng = random.Random(seed)  # noqa: S311 (sample data, not secrets)
    now = now or datetime.now(UTC)
    rows = ["order_id,customer_id,date,total,currency,category,product_id,product"]
    for n in range(customers):
        _, recency, orders, value = rng.choices(BUYERS, weights=[b[0] for b in BUYERS])[0]
        last = now - timedelta(days=recency * rng.lognormvariate(0, 0.2))
        taste = rng.choice(CATEGORIES)  # most of a customer's orders are in one category: something to learn
        for k in range(max(1, round(orders * rng.lognormvariate(0, 0.2)))):
            when = last - timedelta(days=k * rng.uniform(5, 25))
            total = round(value * rng.lognormvariate(0, 0.2), 2)
            category = taste if rng.random() < 0.8 else rng.choice(CATEGORIES)
            product = rng.randrange(PRODUCTS_PER_CATEGORY)
            code, name = f"{category[:3].lower()}-{product}", f"{category} item {product}"
            rows.append(f"shop-{n:04d}-{k},shop-{n:04d},{when:%Y-%m-%d %H:%M},{total},USD,{category},{code},{name}")
    return "\n".join(rows) + "\n"


def run(stack: EmbeddedStack, batch_size: int = 100) -> None:
    assert stack.api is not None and stack.runtime is not None
    api = stack.api.url
    events = sample_events()
    started = time.monotonic()
    for i in range(0, len(events), batch_size):
        status, body = post(f"{api}/v1/events", {"batch": events[i : i + batch_size]})
        assert status == 202, (status, body)
    print(f"sent {len(events)} events in {(len(events) - 1) // batch_size + 1} batches to {api}/v1/events")

    status, body = post(
        f"{api}/v1/events", {"batch": [{"type": "track", "event": "Order Completed", "properties": {"total": "lots"}}]}
    )
    print(f"a malformed batch is refused whole: {status} {json.dumps(body)}")

    profiles = wait_for_profiles(api, expected_event_counts(events))
    print(f"{len(profiles)} profiles up to date {time.monotonic() - started:.2f}s after the first POST\n")
    print(render(profiles))
    train_on_history(stack)
    run_experiment(stack)


def train_on_history(stack: EmbeddedStack) -> None:
    """Import a year of orders through the bucket, retrain as the schedule would, show the model."""
    assert stack.runtime is not None and stack.s3 is not None
    s3, bucket = client("s3"), stack.outputs["DataBucketName"]
    s3.put_object(Bucket=bucket, Key="imports/orders/demo-history.csv", Body=order_history().encode())
    stack.s3.poll()  # deliver the notification now
    manifest = wait_for_manifest(s3, bucket)
    print(f"\nimported imports/orders/demo-history.csv: {manifest['rows_read']} rows, {manifest['orders']} orders,"
          f" {manifest['customers_created']} customers (reconciles: {manifest['reconciles']})")  # fmt: skip
    outcome = stack.runtime.invoke("RetrainFunction", {"action": "retrain"})
    spec = json.loads(s3.get_object(Bucket=bucket, Key=f"models/{outcome['version']}/spec.json")["Body"].read())
    metrics = outcome["metrics"]
    print(f"model {outcome['version']}: {metrics['kind']}, k={metrics['k']}, silhouette {metrics['silhouette']:.2f},"
          f" stability {metrics['stability']:.2f}; promoted: {outcome['promoted']} ({outcome['reason']});"
          f" {outcome['moved']} customers placed")  # fmt: skip
    for name, size, description in zip(spec["clusters"]["names"], metrics["sizes"], spec["clusters"]["descriptions"],
                                       strict=True):  # fmt: skip
        print(f"  {size / max(metrics['rows'], 1):>6.1%}  {name}: {description}")
    customer = "shop-0001"
    told = get(f"{stack.api.url}/v1/customers/{customer}/explain")[1] if stack.api else None
    if told and told.get("rfm"):  # (an API that read "no model" a moment ago may still say so)
        nearest = ", ".join(f"{s['name']} {s['distance']:.2f}" for s in told["scores"][:3])
        print(f"why {customer} is in {told['segment']}: RFM cell {told['rfm']['cell']}; distances {nearest}")
    api = stack.api.url if stack.api else None
    for customer in ("shop-0001", "shop-0002", "shop-0003") if api else ():
        status, found = get(f"{api}/v1/customers/{customer}/recommendations?n=3")
        if status == 200:
            items = "; ".join(f"{i['name'] or i['productId']} ({i['reason']})" for i in found["items"])
            print(f"recommended for {customer} ({'personalized' if found['personalized'] else 'popular'}): {items}")
    report = REPORTS / f"{outcome['version']}.html"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_bytes(s3.get_object(Bucket=bucket, Key=outcome["report_key"])["Body"].read())
    print(f"report: {report} (s3://{bucket}/{outcome['report_key']})")


def run_experiment(stack: EmbeddedStack, customers: int = 300, seed: int = 5) -> None:
    """A small experiment: half the shop's customers are offered free shipping; those who see it
    order more often (0.35 against 0.25, simulated); the measure job reports the lift."""
    assert stack.api is not None and stack.runtime is not None and stack.s3 is not None
    api, now, rng = stack.api.url, datetime.now(UTC), random.Random(seed)  # noqa: S311 (sample data)
    variants = [{"id": "control", "weight": 1},
                {"id": "offer", "weight": 1, "content": {"id": "free-shipping", "kind": "offer"}}]  # fmt: skip
    start, end = (now - timedelta(minutes=1)).isoformat(), (now + timedelta(days=30)).isoformat()
    experiment = {"id": "demo-offer", "control": "control", "variants": variants, "start": start, "end": end}
    document = {"holdout": 0.0, "experiments": [experiment]}
    client("s3").put_object(Bucket=stack.outputs["DataBucketName"], Key="config/experiments.json",
                            Body=json.dumps(document).encode())  # fmt: skip
    stack.s3.poll()  # the config function puts it in force
    orders = []
    for n in range(customers):
        customer = f"shop-{n:04d}"
        status, choice = get(f"{api}/v1/customers/{customer}/personalization")
        if status != 200 or choice.get("experiment") is None:
            continue
        if rng.random() < (0.35 if choice["experiment"]["variant"] == "offer" else 0.25):
            orders.append({"type": "track", "event": "Order Completed", "userId": customer,
                           "properties": {"order_id": f"demo-offer-{n}", "total": 60, "currency": "USD"}})  # fmt: skip
    for i in range(0, len(orders), 100):
        post(f"{api}/v1/events", {"batch": orders[i : i + 100]})
    time.sleep(3)  # the stream folds the orders into the exposures
    stack.runtime.invoke("RetrainFunction", {"action": "measure"})
    status, found = get(f"{api}/v1/experiments/demo-offer/results")
    if status != 200:
        print(f"experiment results not available: {status} {found}")
        return
    print(f"\nexperiment demo-offer ({found['sampleRatio']['counts']} exposed; sample ratio p ="
          f" {found['sampleRatio']['pValue']:.2f}):")  # fmt: skip
    for variant, row in found["variants"].items():
        line = (
            f"  {variant:<8} conversion {row['conversion']:.1%}, revenue per customer {row['revenuePerCustomer']:.2f}"
        )
        if "conversionLift" in row:
            lift = row["conversionLift"]
            line += (f"; lift {lift['absolute']:+.1%} (95% CI {lift['low']:+.1%} to {lift['high']:+.1%},"
                     f" p = {lift['pValue']:.3f})")  # fmt: skip
        print(line)
    report = REPORTS / "experiment-demo-offer.html"
    bucket = stack.outputs["DataBucketName"]
    report.write_bytes(client("s3").get_object(Bucket=bucket, Key="reports/experiments/demo-offer.html")["Body"].read())
    print(f"report: {report}")


def wait_for_manifest(s3: Any, bucket: str, timeout: float = 120) -> dict[str, Any]:
    """The import's manifest, once its last worker (an SQS poller's invocation) has written it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = s3.list_objects_v2(Bucket=bucket, Prefix="reports/imports/").get("Contents", [])
        for item in listed:
            if item["Key"].endswith(".json"):
                return dict(json.loads(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()))
        time.sleep(0.2)
    raise TimeoutError(f"no import manifest under s3://{bucket}/reports/imports/ after {timeout:.0f}s")


def wait_for_profiles(api: str, expected: Counter[str], timeout: float = 60) -> list[dict[str, Any]]:
    """Poll the read API until every customer's profile has seen all of its events."""
    deadline = time.monotonic() + timeout
    pending, done = set(expected), {}
    while pending and time.monotonic() < deadline:
        for customer in sorted(pending):
            status, profile = get(f"{api}/v1/customers/{customer}")
            if status == 200 and sum(profile["eventCounts"].values()) == expected[customer]:
                done[customer] = profile
        pending -= set(done)
        if pending:
            time.sleep(0.2)
    if pending:
        raise TimeoutError(f"{len(pending)} profiles not up to date after {timeout:.0f}s: {sorted(pending)[:5]}")
    return [done[c] for c in sorted(done)]


def render(profiles: list[dict[str, Any]]) -> str:
    header = (
        f"{'customer':<9} {'email':<22} {'ids':>3} {'events':>6} {'orders':>6} {'revenue':>9} "
        f"{'30 days':>9} {'device':<8} {'top category':<12}"
    )
    rows = [header, "-" * len(header)]
    for p in sorted(profiles, key=lambda p: (-p["rfm"]["revenue"], p["customerId"])):
        top = p["topCategories"][0]["category"] if p["topCategories"] else "-"
        rows.append(
            f"{p['customerId']:<9} {p['traits'].get('email', ''):<22} {len(p['identities']):>3} "
            f"{sum(p['eventCounts'].values()):>6} {p['rfm']['orders']:>6} {p['rfm']['revenue']:>9.2f} "
            f"{p['windows']['30d']['revenue']:>9.2f} {p['context'].get('deviceType', '-'):<8} {top:<12}"
        )
    return "\n".join(rows) + f"\n(money in {profiles[0]['currency'] if profiles else ''})"

"""`make bench` section 16: what in-page personalization costs, beside the profile read.

Through the embedded stack (HTTP front, the real read-API function): ``CUSTOMERS`` customers
identify with an anonymous id and order (so each anonymous id is a redirect to its customer, as
on a shop whose visitors log in), then ``REQUESTS`` requests for
``GET /v1/web/personalization?anonymousId=`` (write key as HTTP Basic, from an allowed Origin:
the redirect followed, the key and origin checked, the choice made) and as many for
``GET /v1/customers/{id}`` (the floor: one profile read and its view), interleaved over random
customers, one at a time, after a few unmeasured requests of each (the containers' cold starts).
"""

from __future__ import annotations

import base64
import io
import random
import statistics
import time
from urllib.request import Request, urlopen

import boto3

from embedded.demo import get, post
from embedded.stack import EmbeddedStack
from tests.e2e.test_triggers_api import order
from tests.e2e.test_web_personalization import web_sources

REQUESTS = 400
CUSTOMERS = 200
WARM_UP = 10
PAGE = "http://localhost:8080"


def customers(api: str) -> list[tuple[str, str]]:
    """(anonymous id, user id) of ``CUSTOMERS`` customers who identified and ordered, once folded."""
    rng, pairs = random.Random(5), [(f"anon-bench-{n:04d}", f"user-bench-{n:04d}") for n in range(CUSTOMERS)]
    messages = []
    for anonymous, user in pairs:
        messages.append({"type": "identify", "userId": user, "anonymousId": anonymous, "messageId": f"{user}-i",
                         "traits": {"email": f"{user}@example.com"}})  # fmt: skip
        messages.append(order(user, rng.choice([40.0, 120.0, 800.0]), f"{user}-o"))
    for start in range(0, len(messages), 100):
        assert post(f"{api}/v1/events", {"batch": messages[start : start + 100]})[0] == 202
    deadline = time.monotonic() + 120
    for anonymous, user in pairs:
        while get(f"{api}/v1/customers/{anonymous}")[1].get("customerId") != user:
            assert time.monotonic() < deadline, f"{user} not folded in time"
            time.sleep(0.1)
    return pairs


def fetch(url: str, headers: dict[str, str]) -> int:
    with urlopen(Request(url, headers=headers), timeout=30) as response:
        response.read()
        return int(response.status)


def measure(requests: int = REQUESTS) -> dict[str, list[float]]:
    with EmbeddedStack(aws_port=0, api_port=0, log=io.StringIO(), parameters={"ModelRefreshSeconds": "1"}) as stack:
        assert stack.api is not None
        api = stack.api.url
        key = web_sources(boto3.session.Session(), stack, {"bench-web": [PAGE]})["bench-web"]
        time.sleep(1.5)  # the read API rereads the source registry every ModelRefreshSeconds
        pairs, rng = customers(api), random.Random(3)
        web = {"Origin": PAGE, "Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}
        read = {"x-api-key": "local-dev-key"}
        timings: dict[str, list[float]] = {"web": [], "profile": []}
        for n in range(WARM_UP + requests):
            anonymous, user = pairs[rng.randrange(len(pairs))]
            for name, url, headers in (("web", f"{api}/v1/web/personalization?anonymousId={anonymous}", web),
                                       ("profile", f"{api}/v1/customers/{user}", read)):  # fmt: skip
                started = time.perf_counter()
                status = fetch(url, headers)
                elapsed = time.perf_counter() - started
                assert status == 200, (name, status)
                if n >= WARM_UP:
                    timings[name].append(elapsed)
    return timings


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def report(timings: dict[str, list[float]]) -> None:
    routes = {"web": "GET /v1/web/personalization?anonymousId=", "profile": "GET /v1/customers/{id}"}
    for name, values in timings.items():
        p50, p95 = percentile(values, 50) * 1000, percentile(values, 95) * 1000
        print(f"   {routes[name]:<41} p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  n={len(values)}")
    ratio = percentile(timings["web"], 95) / percentile(timings["profile"], 95)
    median = percentile(timings["web"], 50) / percentile(timings["profile"], 50)
    print(f"   in-page personalization's p95 / the profile's p95: {ratio:.2f}x (target: <= 2x); p50: {median:.2f}x")


if __name__ == "__main__":
    report(measure())

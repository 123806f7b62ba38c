"""`make bench` section 13: what a recommendation costs through the read API.

Through the embedded stack (HTTP front, the real read-API function): a year of sample orders
naming products is imported and retrained on, then ``REQUESTS`` requests for
``GET /v1/customers/{id}/recommendations`` and as many for ``GET /v1/customers/{id}`` (the floor:
one profile read and its view), interleaved over random customers, one at a time.
"""

from __future__ import annotations

import io
import random
import statistics
import time

import boto3

from embedded.demo import get, order_history
from embedded.stack import EmbeddedStack
from tests.e2e.test_bulk_import import wait_for_manifest

REQUESTS = 1_000
CUSTOMERS = 400


def measure(requests: int = REQUESTS) -> dict[str, list[float]]:
    with EmbeddedStack(aws_port=0, api_port=0, log=io.StringIO(), parameters={"ModelRefreshSeconds": "1"}) as stack:
        assert stack.runtime is not None and stack.api is not None
        bucket, key = stack.outputs["DataBucketName"], "imports/orders/bench-recommendations.csv"
        session = boto3.session.Session()
        session.client("s3").put_object(Bucket=bucket, Key=key, Body=order_history(CUSTOMERS).encode())
        assert wait_for_manifest(session, bucket, key, 120)["reconciles"]
        fitted = stack.runtime.invoke("RetrainFunction", {"action": "retrain"})
        assert fitted["recommender"] and fitted["recommender"]["promoted"], fitted["recommender"]
        api, rng = stack.api.url, random.Random(3)
        timings: dict[str, list[float]] = {"recommendations": [], "profile": []}
        for _ in range(requests):
            customer = f"shop-{rng.randrange(CUSTOMERS):04d}"
            for name, path in (("recommendations", "/recommendations?n=10"), ("profile", "")):
                started = time.perf_counter()
                status, _ = get(f"{api}/v1/customers/{customer}{path}")
                timings[name].append(time.perf_counter() - started)
                assert status == 200, (name, status)
    return timings


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def report(timings: dict[str, list[float]]) -> None:
    floor = percentile(timings["profile"], 95)
    for name, values in timings.items():
        route = f"GET /v1/customers/{{id}}{'/recommendations' if name == 'recommendations' else ''}"
        p50, p95 = percentile(values, 50) * 1000, percentile(values, 95) * 1000
        print(f"   {route:<41} p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  n={len(values)}")
    ratio = percentile(timings["recommendations"], 95) / floor
    print(f"   recommendations' p95 / the profile's p95: {ratio:.2f}x (target: <= 2x)")


if __name__ == "__main__":
    report(measure())

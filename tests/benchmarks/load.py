"""Local load through the embedded stack: 16 clients post batches of 20 events to the tracking
API (``POST /v1/batch`` with the local write key) until 10,000 are sent; then the time until
every event is folded into the profiles.

Run alone: ``python -m tests.benchmarks.load [events] [clients]``.
"""

from __future__ import annotations

import base64
import io
import json
import statistics
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime
from typing import Any

import boto3

from audience.adapters.profile_items import PROFILE_SK
from embedded.stack import LOCAL_WRITE_KEY, REGION, EmbeddedStack

CUSTOMERS = 1_000
BATCH = 20


def _post(url: str, batch: list[dict[str, Any]]) -> float:
    body = json.dumps({"batch": batch}).encode()
    headers = {"Content-Type": "application/json",
               "Authorization": "Basic " + base64.b64encode(f"{LOCAL_WRITE_KEY}:".encode()).decode()}  # fmt: skip
    started = time.perf_counter()
    with urllib.request.urlopen(urllib.request.Request(url, body, headers, method="POST"), timeout=120) as answer:
        assert json.loads(answer.read())["rejected"] == 0
    return time.perf_counter() - started


def _folded(stack: EmbeddedStack) -> int:
    """Track events counted over every profile (a scan, as the test suite's helpers do)."""
    dynamodb, total = boto3.session.Session(region_name=REGION).client("dynamodb"), 0
    for page in dynamodb.get_paginator("scan").paginate(TableName=stack.outputs["ProfilesTableName"]):
        for item in page["Items"]:
            if item["sk"]["S"] == PROFILE_SK and "trackCounts" in item:
                total += int(item["trackCounts"]["M"].get("Load Test", {"N": "0"})["N"])
    return total


def measure(events: int = 10_000, clients: int = 16, isolated: bool = True) -> dict[str, float]:
    """``isolated=False``: every handler in the test process, one invocation at a time (the
    embedded runtime before issue 22), the baseline in the same run."""
    with EmbeddedStack(aws_port=0, api_port=0, log=io.StringIO(), isolated=isolated) as stack:
        assert stack.api is not None
        url, latencies, lock = f"{stack.api.url}/v1/batch", list[float](), threading.Lock()
        requests = events // BATCH
        stamp = datetime.now(UTC).isoformat()

        def client(number: int) -> None:
            for n in range(number, requests, clients):
                batch = [{"type": "track", "userId": f"load-{(n * BATCH + i) % CUSTOMERS}", "event": "Load Test",
                          "messageId": f"load-{n}-{i}", "timestamp": stamp} for i in range(BATCH)]  # fmt: skip
                took = _post(url, batch)
                with lock:
                    latencies.append(took)

        started, cpu = time.perf_counter(), time.process_time()
        threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        sent = time.perf_counter() - started
        while _folded(stack) < requests * BATCH:
            time.sleep(1)
        folded = time.perf_counter() - started
        # This process holds moto, the API front, the pollers and the clients (and, in process,
        # the handlers): its CPU seconds per second show whether it is the limit (1.0 = one core).
        busy = (time.process_time() - cpu) / folded
    ordered = sorted(latencies)
    return {
        "events": requests * BATCH,
        "accepted_per_s": requests * BATCH / sent,
        "p50": statistics.median(ordered),
        "p95": ordered[int(0.95 * (len(ordered) - 1))],
        "folded_s": folded,
        "folded_per_s": requests * BATCH / folded,
        "stack_process_cores": busy,
    }


def report(run: dict[str, float], name: str = "") -> None:
    print(
        f"   {name}{run['events']:,.0f} events in batches of {BATCH} from 16 clients:"
        f" {run['accepted_per_s']:,.0f} accepted/s;"
        f" request p50 {run['p50']:.2f} s, p95 {run['p95']:.2f} s\n   every event folded into its profile"
        f" after {run['folded_s']:.0f} s ({run['folded_per_s']:,.0f} events/s); the stack's own process"
        f" (moto, API front, pollers, clients) busy {run['stack_process_cores']:.2f} cores"
    )


if __name__ == "__main__":
    report(measure(*(int(a) for a in sys.argv[1:3])))

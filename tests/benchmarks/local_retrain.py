"""`make bench` section 11: retraining through the local stack, as `make local` + `make retrain` do.

The retrain function runs in its container against the embedded moto server: it scans the
profiles table (4 parallel segments), trains, stores, and writes every customer it places (a
batched read per 100, an ``UpdateItem`` of the placement attributes and an outbox clear each,
the batch's segment events ten to a ``PutEvents``). Two populations: Online Retail II
imported through the bucket (large profiles: a ledger of every order), and synthetic profiles
written straight into the table. Beside each, in the same run, the same service code on the same
profiles held in memory: what the local AWS costs on top of the engine.
"""

from __future__ import annotations

import io
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import boto3

from audience.adapters.aws import client
from audience.adapters.dynamodb import DynamoProfileRepository
from audience.adapters.profile_items import to_item
from audience.domain.profile import Profile
from audience.segmentation.drift import PromotionPolicy
from embedded.demo import get
from embedded.stack import EmbeddedStack
from tests.e2e.test_bulk_import import wait_for_manifest
from tests.real_data import RETAIL, imported_profiles
from tests.synthetic import draw
from tests.unit.fakes import MemoryBucket, MemoryProfiles, MemoryRegistry
from tests.unit.jobs import retraining

SYNTHETIC = 100_000  # (issue 15 placed ~40 customers a second through moto: 100,000 took ~45 min)


def measure(synthetic: int = SYNTHETIC) -> list[dict[str, Any]]:
    runs = []
    if RETAIL.exists():
        runs.append(_through_stack("Online Retail II, imported through the bucket", None))
        runs[-1]["memory_s"] = _in_memory(imported_profiles(), datetime.now(UTC))
    profiles = [p for p, _ in draw(synthetic, seed=11)]
    runs.append(_through_stack(f"{synthetic:,} synthetic profiles, written to the table", profiles))
    runs[-1]["memory_s"] = _in_memory(profiles, datetime.now(UTC))
    return runs


def _through_stack(name: str, profiles: list[Profile] | None) -> dict[str, Any]:
    with EmbeddedStack(aws_port=0, api_port=0, log=io.StringIO()) as stack:
        assert stack.runtime is not None and stack.api is not None
        table, bucket = stack.outputs["ProfilesTableName"], stack.outputs["DataBucketName"]
        if profiles is None:
            _import_retail(bucket)
        else:
            _write(table, profiles)
        repository = DynamoProfileRepository(table)
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=4) as pool:
            scanned = sum(pool.map(lambda s: sum(1 for _ in repository.scan(s, 4)), range(4)))
        scan_s = time.perf_counter() - started
        assert stack.moto is not None
        local_aws = stack.moto.dynamodb
        local_aws.requests.clear()
        local_aws.seconds.clear()
        readers = _Reads(stack.api.url, [p.customer_id for p in repository.scan(0, 64)][:200])
        idle = readers.p95_of(300)
        readers.start()
        started = time.perf_counter()
        outcome = stack.runtime.invoke("RetrainFunction", {"action": "retrain"})  # as the schedule sends it
        retrain_s = time.perf_counter() - started
        during = readers.stop()
        moto = {op: (n, local_aws.seconds[op]) for op, n in local_aws.requests.items()}
    return {"name": name, "customers": scanned, "scan_s": scan_s, "retrain_s": retrain_s, "moved": outcome["moved"],
            "promoted": outcome["promoted"], "k": outcome["metrics"]["k"], "moto": moto, "read_p95_idle": idle,
            "read_p95_during": during}  # fmt: skip


class _Reads:
    """``GET /v1/customers/{id}`` one after another: its p95 on an idle stack, then during a retrain."""

    def __init__(self, api: str, customers: list[str]) -> None:
        self.api, self.customers, self.latencies = api, customers, list[float]()
        self._stop, self._thread = threading.Event(), threading.Thread(target=self._run)

    def _get(self, n: int) -> float:
        started = time.perf_counter()
        status, _ = get(f"{self.api}/v1/customers/{urllib.parse.quote(self.customers[n % len(self.customers)])}")
        assert status == 200, status
        return time.perf_counter() - started

    def p95_of(self, n: int) -> float:
        return _p95([self._get(i) for i in range(n)])

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            self.latencies.append(self._get(n))
            n += 1

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return _p95(self.latencies)


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[int(0.95 * (len(ordered) - 1))] if ordered else float("nan")


def _import_retail(bucket: str) -> None:
    key = "imports/orders/online-retail/2009-2010.csv.gz"
    client("s3").put_object(Bucket=bucket, Key=key, Body=RETAIL.read_bytes())
    assert wait_for_manifest(boto3.session.Session(), bucket, key, 900)["reconciles"]


def _write(table: str, profiles: list[Profile]) -> None:
    def put(start: int) -> None:
        requests = [{"PutRequest": {"Item": to_item(p.model_copy(update={"version": 1}))}}
                    for p in profiles[start : start + 25]]  # fmt: skip
        while requests:
            response = client("dynamodb").batch_write_item(RequestItems={table: requests})
            requests = response.get("UnprocessedItems", {}).get(table, [])

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(put, range(0, len(profiles), 25)))


def _in_memory(profiles: list[Profile], now: datetime) -> float:
    memory = MemoryProfiles()
    memory.items = {p.customer_id: p.model_copy(update={"version": 1}) for p in profiles}
    started = time.perf_counter()
    retraining(memory, MemoryBucket(), MemoryRegistry(), PromotionPolicy()).retrain(now)
    return time.perf_counter() - started


def report(runs: list[dict[str, Any]]) -> None:
    for run in runs:
        print(
            f"   {run['name']}: {run['customers']:,} customers\n"
            f"     scan {run['customers'] / run['scan_s']:,.0f} profiles/s; retrain {run['retrain_s']:.0f} s"
            f" ({run['customers'] / run['retrain_s']:,.0f} customers/s, {run['moved']:,} placed, k = {run['k']},"
            f" promoted: {run['promoted']}); the same service in memory, same run: {run['memory_s']:.0f} s"
        )
        ratio = run["read_p95_during"] / run["read_p95_idle"]
        print(f"     GET /v1/customers/{{id}} p95 {1000 * run['read_p95_during']:.0f} ms during the retrain,"
              f" {1000 * run['read_p95_idle']:.0f} ms on the idle stack: {ratio:.1f}x (target: <= 3x)")  # fmt: skip
        busy = sum(seconds for _, seconds in run["moto"].values())
        busiest = sorted(run["moto"].items(), key=lambda kv: -kv[1][1])[:3]
        served = ", ".join(f"{op} {n:,} x {1000 * s / max(n, 1):.1f} ms" for op, (n, s) in busiest)
        print(f"     moto busy serving DynamoDB {busy:.0f} s of the retrain's {run['retrain_s']:.0f} s: {served}")

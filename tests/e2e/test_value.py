"""GIVEN the embedded stack with a year of order history and a value model fitted by the retrain
function, WHEN a known customer places an order, THEN their predictions change within a second
(the stream rescored them in the same write); a ``churn-risk-at-least`` rule puts a buyer in its
tier with the rule id as the reason; ``GET /v1/models/value`` and ``/v1/models/segments`` serve
the models in force, ``/explain`` agrees with a customer's stored place; a
backtest (``asOf``, ``calibrationEnd``) is stored and reported but not put in force."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from audience.adapters.privacy_table import DynamoModelRegistry
from audience.services.artifacts import LIVE_VALUE
from embedded.demo import get, order_history, post
from embedded.stack import EmbeddedStack
from tests.e2e.test_bulk_import import wait_for_manifest
from tests.e2e.test_embedded_stack import wait_for
from tests.e2e.test_triggers_api import order, upload_config


@pytest.fixture
def no_models_afterwards(aws: boto3.session.Session, embedded: EmbeddedStack) -> Iterator[None]:
    yield
    aws.client("dynamodb").delete_item(TableName=embedded.outputs["ProfilesTableName"], Key=DynamoModelRegistry.KEY)
    aws.client("s3").delete_object(Bucket=embedded.outputs["DataBucketName"], Key=LIVE_VALUE)
    time.sleep(1.5)  # ModelRefreshSeconds in the e2e stack


@pytest.mark.usefixtures("no_models_afterwards")
def test_an_order_rescores_the_customer_and_a_churn_rule_tiers_with_its_id(
    api: str, aws: boto3.session.Session, embedded: EmbeddedStack
) -> None:
    assert embedded.runtime is not None
    bucket, s3 = embedded.outputs["DataBucketName"], aws.client("s3")
    s3.put_object(Bucket=bucket, Key="imports/orders/e2e-value.csv", Body=order_history(customers=300).encode())
    assert wait_for_manifest(aws, bucket, "imports/orders/e2e-value.csv", 60)["reconciles"]

    fitted = embedded.runtime.invoke("RetrainFunction", {"action": "retrain"})
    assert fitted["value"] is not None and fitted["value"]["buyers"] >= 300, fitted
    status, model = get(f"{api}/v1/models/value")
    assert status == 200 and model["version"] == fitted["value"]["version"]
    assert model["purchaseModel"]["timeUnit"] == "day" and model["churn"]["chosen"] in ("trees", "btyd")
    report = s3.get_object(Bucket=bucket, Key=fitted["report_key"])["Body"].read()
    assert b"Value: lifetime value, probability alive, churn risk" in report and b"Holdout" in report

    in_force = fitted["promoted"]
    if not in_force and get(f"{api}/v1/models/segments")[0] == 404:
        # the gate refused this stack's mix of customers and no earlier test left a model in force:
        # put this one in force, as an operator would (the segment assertions below need one)
        embedded.runtime.invoke("RetrainFunction", {"action": "activate", "version": fitted["version"],
                                                    "reason": "e2e: the gate refused the stack's mix"})  # fmt: skip
        in_force = True

    # (not in force: an earlier test's model on this stack serves; an API container may hold its
    # answer for ModelRefreshSeconds)
    def served(found: tuple[int, dict[str, Any]]) -> bool:
        return found[0] == 200 and (found[1]["version"] == fitted["version"]) == in_force

    status, segments = wait_for(lambda: get(f"{api}/v1/models/segments"), served, 5)
    assert status == 200, f"no active model; the retrain: promoted {fitted['promoted']}, {fitted['reason']}"
    assert (segments["version"] == fitted["version"]) == in_force, (segments["version"], fitted["version"], in_force)
    assert get(f"{api}/v1/models/segments/{fitted['version']}")[1]["active"] == in_force
    assert (
        segments["k"] + 1 == len(segments["segments"])
        and segments["stability"]["worst"] <= segments["stability"]["mean"]
    )
    assert (
        sum(s["size"] for s in segments["segments"]) == segments["rows"]
        and segments["segments"][-1]["name"] == "Not Yet Buyers"
    )
    assert abs(sum(s["revenueShare"] for s in segments["segments"]) - 1) < 0.01 and segments["choice"].startswith(
        "k = "
    )
    assert all(
        s["description"].startswith(("Typically", "No order yet.")) and s["id"].startswith("learned:")
        for s in segments["segments"]
    )
    assert get(f"{api}/v1/models/segments/{segments['version']}")[1] == segments
    assert get(f"{api}/v1/models/segments/20000101T000000Z-000000")[0] == 404
    assert get(f"{api}/v1/models/segments/not%20a%20version")[0] == 400

    status, before = get(f"{api}/v1/customers/shop-0001")
    assert status == 200 and before["predictions"] is not None  # (modelVersion: the model that last changed them)
    time.sleep(1.5)  # ModelRefreshSeconds: the stream reads the new value model
    warm = f"warm-{uuid.uuid4().hex[:8]}"  # run alone, the stream function has not started yet: start it
    assert post(f"{api}/v1/events", order(warm, 5.0, warm))[0] == 202
    wait_for(lambda: get(f"{api}/v1/customers/{warm}")[0], lambda status: status == 200)
    latencies = []
    for n in range(3):
        sent = time.monotonic()
        assert post(f"{api}/v1/events", order("shop-0001", 180.0 + n, f"value-{uuid.uuid4().hex[:8]}"))[0] == 202
        after = wait_for(lambda: get(f"{api}/v1/customers/shop-0001")[1],
                         lambda p, was=before["predictions"]["asOf"]: p["predictions"]["asOf"] != was)  # fmt: skip
        latencies.append(time.monotonic() - sent)
        assert after["predictions"]["asOf"] != before["predictions"]["asOf"], "the order did not rescore the customer"
        assert after["rfm"]["orders"] == before["rfm"]["orders"] + 1
        predicted = after["predictions"]  # the intervals, computed by the stream in the same write
        for name in ("expectedOrders90d", "clv12m"):
            (low_95, high_95), (low_80, high_80) = predicted[f"{name}P95"], predicted[f"{name}P80"]
            assert low_95 <= low_80 <= high_80 <= high_95, predicted
        before = after
    print(f"predictions changed {', '.join(f'{s:.2f}' for s in latencies)} s after each order was sent")

    # shop-0002 has not changed since the retrain placed it: the explanation agrees with its place
    # (shop-0001's orders may wait out SegmentMinDwellMinutes before its segment follows)
    placed = get(f"{api}/v1/customers/shop-0002")[1]
    status, told = get(f"{api}/v1/customers/shop-0002/explain")
    assert status == 200 and told["segment"] == told["storedSegment"] == placed["segments"]["name"]
    assert told["scores"][0]["name"] == told["segment"] and told["rfm"]["cell"] == placed["segments"]["rfm"]
    assert told["predictions"] == {k: v for k, v in placed["predictions"].items() if k != "churnDrivers"}
    assert [f["name"] for f in told["features"]][:3] == ["recency_days", "frequency", "monetary"]
    assert told["moves"][-1]["reason"].startswith("model ")  # (the model that last moved it: maybe an earlier test's)

    rules = {"rules": [{"id": "e2e-churn-watch", "kind": "churn-risk-at-least", "risk": 1e-6, "tier": "Watch"}]}
    assert upload_config(aws, embedded, rules)["accepted"]
    time.sleep(1.5)  # the stream reads the new rules
    customer = f"value-{uuid.uuid4().hex[:8]}"
    assert post(f"{api}/v1/events", order(customer, 60.0, f"{customer}-1"))[0] == 202
    tiered = wait_for(lambda: get(f"{api}/v1/customers/{customer}"),
                      lambda r: r[0] == 200 and r[1]["tier"] is not None, timeout=30)[1]  # fmt: skip
    assert tiered["tier"] is not None, tiered["predictions"]["churnRisk"]  # (30 s: CI runs two workers)
    assert tiered["tier"]["rule"] == "e2e-churn-watch" and tiered["tier"]["name"] == "Watch"
    assert tiered["lastSegmentChange"]["reason"] == "trigger:e2e-churn-watch"
    assert (
        tiered["predictions"]["churnRisk"] >= 1e-6
    )  # (what the model says of a new buyer depends on the stack's data)

    as_of = datetime.now(UTC)
    calibration_end = (as_of - timedelta(days=120)).date().isoformat()
    backtest = embedded.runtime.invoke(
        "RetrainFunction", {"action": "retrain", "asOf": as_of.isoformat(), "calibrationEnd": calibration_end}
    )
    assert backtest["holdout"]["days"] == 120 and backtest["version"] != model["version"]
    assert get(f"{api}/v1/models/value")[1]["version"] == model["version"]  # a backtest is not put in force
    assert "Contents" in s3.list_objects_v2(Bucket=bucket, Prefix=backtest["report"])
    assert json.loads(s3.get_object(Bucket=bucket, Key=f"models/{backtest['version']}/value-metrics.json")["Body"]
                      .read())["calibrationEnd"] == calibration_end  # fmt: skip

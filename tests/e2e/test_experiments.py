"""GIVEN the embedded stack and an experiment document put in force through the bucket, WHEN 800
customers ask for their personalization over HTTP (the first answer records their exposure) and
those shown the offer order more often (30% against 20%, simulated with a fixed seed), THEN the
measure job's results (``GET /v1/experiments/{id}/results``) find the lift, its interval covers
the truth, and the sample ratio is fine (with the always-valid sequence, the decision, which
figures to read and the planning beside); a second experiment whose offer arm loses 40% of its
exposures is flagged as a sample-ratio mismatch (measured fanned out over the work queue); each
segment's KPIs are served by ``GET /v1/segments/{id}`` as the same job stored them, and each
experiment has its HTML report."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import boto3
import pytest

from audience.domain.documents import parse_document
from audience.domain.experiments import Experiments
from embedded.demo import get, post
from embedded.stack import EmbeddedStack
from tests.e2e.test_triggers_api import order, upload_config

CUSTOMERS = 800
RATES = {"control": 0.20, "offer": 0.30}


def experiment(experiment_id: str) -> dict[str, Any]:
    now, offer = datetime.now(UTC), {"id": "free-shipping", "kind": "offer"}
    return {"id": experiment_id, "control": "control", "windowDays": 14,
            "start": (now - timedelta(minutes=5)).isoformat(), "end": (now + timedelta(days=30)).isoformat(),
            "variants": [{"id": "control", "weight": 1}, {"id": "offer", "weight": 1, "content": offer}]}  # fmt: skip


@pytest.fixture
def no_experiments_afterwards(aws: boto3.session.Session, embedded: EmbeddedStack) -> Iterator[None]:
    yield
    upload_config(aws, embedded, {"holdout": 0, "experiments": []}, "config/experiments.json")


def expose(api: str, customers: list[str]) -> dict[str, str]:
    """Ask for each customer's personalization (retrying one whose profile is not folded yet)."""
    variants: dict[str, str] = {}
    deadline = time.monotonic() + 60
    while len(variants) < len(customers) and time.monotonic() < deadline:
        for customer in customers:
            if customer not in variants:
                status, choice = get(f"{api}/v1/customers/{customer}/personalization")
                if status == 200 and choice.get("experiment"):
                    variants[customer] = choice["experiment"]["variant"]
    assert len(variants) == len(customers), f"{len(customers) - len(variants)} customers never got a variant"
    return variants


def measured(embedded: EmbeddedStack, api: str, experiment_id: str, exposed: int, converted: int,
             segments: int | None = None) -> dict[str, Any]:  # fmt: skip
    """Run the measure job (``segments``: fanned out through the work queue) until its results
    count every exposure and every simulated order the stream has folded in."""
    assert embedded.runtime is not None
    deadline, found = time.monotonic() + 60, {}
    while time.monotonic() < deadline:
        embedded.runtime.invoke(
            "RetrainFunction", {"action": "measure", **({"segments": segments} if segments else {})}
        )
        time.sleep(0.5 if segments is None else 2)  # (fanned out: the work queue's poller runs the parts)
        status, found = get(f"{api}/v1/experiments/{experiment_id}/results")
        if status == 200 and sum(found["sampleRatio"]["counts"].values()) == exposed and \
                sum(row["converted"] for row in found["variants"].values()) >= converted:  # fmt: skip
            break
    return found  # type: ignore[return-value]


@pytest.mark.usefixtures("no_experiments_afterwards")
def test_a_simulated_experiment_through_the_stack_finds_the_known_lift_and_a_skew_is_flagged(
    api: str, aws: boto3.session.Session, embedded: EmbeddedStack
) -> None:
    customers = [f"exp-{n:04d}" for n in range(CUSTOMERS)]
    for start in range(0, CUSTOMERS, 100):
        batch = [{"type": "identify", "userId": c, "traits": {"plan": "trial"}} for c in customers[start : start + 100]]
        assert post(f"{api}/v1/events", {"batch": batch})[0] == 202
    document = {"holdout": 0, "experiments": [experiment("lift-check")]}
    assert upload_config(aws, embedded, document, "config/experiments.json")["accepted"]

    status, listed = get(f"{api}/v1/experiments")
    assert status == 200 and [(e["id"], e["status"]) for e in listed["experiments"]] == [("lift-check", "running")]
    variants, rng = expose(api, customers), random.Random(17)
    assert expose(api, customers[:50]) == {c: variants[c] for c in customers[:50]}  # the same variant again
    published = parse_document(Experiments, json.dumps(document)).experiments[0]
    assert all(published.variant(c).id == v for c, v in variants.items())  # anyone can recompute it
    buyers = [c for c in customers if rng.random() < RATES[variants[c]]]
    orders = [order(c, 40.0, f"lift-check-{c}") for c in buyers]
    for start in range(0, len(orders), 100):
        assert post(f"{api}/v1/events", {"batch": orders[start : start + 100]})[0] == 202

    found = measured(embedded, api, "lift-check", CUSTOMERS, len(buyers))
    offer, lift = found["variants"]["offer"], found["variants"]["offer"]["conversionLift"]
    print(f"lift-check: {found['sampleRatio']['counts']}, conversion {found['variants']['control']['conversion']:.3f}"
          f" vs {offer['conversion']:.3f}, lift {lift['absolute']:+.3f} [{lift['low']:+.3f}, {lift['high']:+.3f}],"
          f" p = {lift['pValue']:.2g}")  # fmt: skip
    assert sum(found["sampleRatio"]["counts"].values()) == CUSTOMERS and not found["sampleRatio"]["mismatch"]
    assert sum(row["converted"] for row in found["variants"].values()) == len(buyers)
    assert lift["significant"] and lift["low"] <= 0.10 <= lift["high"]
    # read daily: the always-valid sequence (wider), the decision and which figures to read
    assert lift["sequentialLow"] < lift["low"] and lift["high"] < lift["sequentialHigh"]
    assert lift["adjusted"]["method"] == "holm" and found["reading"]["use"] == "alwaysValid"
    assert found["decision"]["action"] in ("keepRunning", "shipWinner", "stop") and found["decision"]["reason"]
    assert "daysSoFar" in found["planning"] and "refundsGuardrail" in offer and "revenueLiftCupac" in offer
    assert offer["revenueLift"]["low"] <= 0.10 * 40 <= offer["revenueLift"]["high"]

    # a broken exposure path: 40% of the offer arm's answers never reach the customer (nor the log)
    skewed = {"holdout": 0, "experiments": [experiment("skew-check")]}
    assert upload_config(aws, embedded, skewed, "config/experiments.json")["accepted"]
    check = parse_document(Experiments, json.dumps(skewed)).experiments[0]
    shown = expose(api, [c for i, c in enumerate(customers) if check.variant(c).id == "control" or i % 10 < 6])
    flagged = measured(embedded, api, "skew-check", len(shown), 0, segments=3)["sampleRatio"]  # fanned out
    assert flagged["mismatch"] and flagged["pValue"] < 0.001, flagged

    s3, bucket = aws.client("s3"), embedded.outputs["DataBucketName"]
    for experiment_id in (
        "lift-check",
        "skew-check",
    ):  # (a fanned-out run's last part writes the report after the results)
        key, deadline = f"reports/experiments/{experiment_id}.html", time.monotonic() + 30
        while "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix=key) and time.monotonic() < deadline:
            time.sleep(0.5)
        page = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        assert page.count("<img") == 3 and f"Experiment {experiment_id}" in page
    stored = json.loads(s3.get_object(Bucket=bucket, Key="models/segment-kpis.json")["Body"].read())
    status, listed = get(f"{api}/v1/segments")
    assert status == 200
    for segment in listed["segments"]:
        status, shown = get(f"{api}/v1/segments/{quote(segment['segmentId'], safe='')}")
        assert status == 200 and shown["size"] == segment["size"], shown
        kpis = stored["segments"].get(segment["segmentId"])
        assert shown["kpis"] == ({**kpis, "asOf": shown["kpis"]["asOf"]} if kpis else None)
    assert get(f"{api}/v1/segments/learned%3Anobody")[0] == 404

"""GIVEN the embedded stack, WHEN an export lands in imports/orders/, THEN profiles follow."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3

from embedded.demo import get
from embedded.stack import EmbeddedStack
from tests.conftest import ROOT

SAMPLE = ROOT / "tests" / "data" / "online_retail_sample.csv"


def manifests(aws: boto3.session.Session, bucket: str) -> dict[str, dict[str, Any]]:
    s3 = aws.client("s3")
    listing = s3.list_objects_v2(Bucket=bucket, Prefix="reports/imports/").get("Contents", [])
    return {o["Key"]: json.loads(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()) for o in listing}


def wait_for_manifest(aws: boto3.session.Session, bucket: str, key: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [m for m in manifests(aws, bucket).values() if m["key"] == key]
        if found:
            return found[0]
        time.sleep(0.5)
    raise AssertionError(f"no manifest for {key} after {timeout:.0f}s")


def test_a_dropped_export_is_imported_and_visible_through_the_api(
    api: str, aws: boto3.session.Session, embedded: EmbeddedStack
) -> None:
    bucket, key = embedded.outputs["DataBucketName"], "imports/orders/online-retail/e2e-sample.csv"
    aws.client("s3").put_object(Bucket=bucket, Key=key, Body=SAMPLE.read_bytes())
    manifest = wait_for_manifest(aws, bucket, key, 20)
    assert manifest["reconciles"] and manifest["rows_read"] == 8
    status, profile = get(f"{api}/v1/customers/13078")
    assert status == 200 and profile["rfm"]["orders"] == 1 and profile["context"] == {"preferredHour": 9}

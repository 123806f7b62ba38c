"""GIVEN the embedded stack, WHEN an export lands in imports/orders/, THEN profiles follow."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from embedded.demo import get
from embedded.stack import EmbeddedStack
from tests.conftest import ROOT
from tests.e2e.test_profile_engine import profiles_table

SAMPLE = ROOT / "tests" / "data" / "online_retail_sample.csv"
RETAIL = ROOT.parent / "shared" / "data" / "online_retail" / "online_retail_II_2009-2010.csv.gz"


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


@pytest.mark.skipif(not RETAIL.exists(), reason="needs ../shared/data/online_retail (not part of a user's clone)")
def test_online_retail_ii_imports_reconciles_and_a_re_upload_changes_nothing(
    aws: boto3.session.Session, embedded: EmbeddedStack
) -> None:
    bucket, key = embedded.outputs["DataBucketName"], "imports/orders/online-retail/2009-2010.csv.gz"
    s3 = aws.client("s3")
    s3.put_object(Bucket=bucket, Key=key, Body=Path(RETAIL).read_bytes())
    manifest = wait_for_manifest(aws, bucket, key, 600)

    assert manifest["rows_read"] == 525_461 and manifest["duplicates"] == 6_865
    assert manifest["rows_read"] == manifest["loaded"] + manifest["rejected"] + manifest["duplicates"]
    assert manifest["orders"] == 19_213  # the invoices of the clean subset (shared/data/README.md)
    profiles = {k: p for k, p in profiles_table(aws, embedded).items() if k.isdigit() and len(k) == 5}
    assert sum(p.orders for p in profiles.values()) == 19_213
    assert sum(p.refunds for p in profiles.values()) == manifest["refunds"]

    before = {k: p.version for k, p in profiles.items()}
    s3.put_object(Bucket=bucket, Key=key, Body=Path(RETAIL).read_bytes())  # S3 notifies this PUT too
    assert embedded.s3 is not None
    embedded.s3.poll()  # deliver it now rather than in half a second
    after = {k: p.version for k, p in profiles_table(aws, embedded).items() if k in before}
    assert after == before and len(manifests(aws, bucket)) >= 1

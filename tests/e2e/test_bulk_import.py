"""GIVEN the embedded stack, WHEN an export lands in imports/, THEN profiles follow."""

from __future__ import annotations

import gzip
import json
import time
from typing import Any

import boto3

from audience.domain.privacy import pseudonymised
from embedded.demo import get
from embedded.stack import EmbeddedStack
from tests.conftest import ROOT

SAMPLE = ROOT / "tests" / "data" / "online_retail_sample.csv"


def manifests(aws: boto3.session.Session, bucket: str) -> dict[str, dict[str, Any]]:
    s3 = aws.client("s3")
    listing = s3.list_objects_v2(Bucket=bucket, Prefix="reports/imports/").get("Contents", [])
    keys = [o["Key"] for o in listing if o["Key"].endswith(".json")]
    return {k: json.loads(s3.get_object(Bucket=bucket, Key=k)["Body"].read()) for k in keys}


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


def test_a_crm_export_merges_the_same_person_into_one_profile(
    api: str, aws: boto3.session.Session, embedded: EmbeddedStack
) -> None:
    bucket, key = embedded.outputs["DataBucketName"], "imports/customers/e2e-crm.jsonl.gz"
    rows = [
        {"customer_id": "crm-1", "email": "Grace@Example.com", "first_name": "Grace", "last_name": "Hopper",
         "phone": "+1 202 555 0143", "country": "United States", "signup_date": "2019-05-01", "tier": "gold"},
        {"customer_id": "crm-2", "email": "grace.h@example.com", "first_name": "Grace", "last_name": "Hoper",
         "phone": "(202) 555-0143", "country": "US", "consent_marketing": "no"},
        {"customer_id": "crm-3", "email": "not an email", "first_name": "Alan", "last_name": "Turing"},
        {"email": "no-id@example.com"},
    ]  # fmt: skip
    body = gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode())
    aws.client("s3").put_object(Bucket=bucket, Key=key, Body=body)
    manifest = wait_for_manifest(aws, bucket, key, 20)
    assert manifest["reconciles"] and (manifest["loaded"], manifest["rejected"]) == (3, 1)
    assert manifest["records_merged"] == 1 and manifest["fields_cleared"] == {"email not valid": 1}
    assert manifest["customers_created"] == 2

    status, grace = get(f"{api}/v1/customers/crm-2")  # the merged record's id finds the survivor
    assert status == 200 and grace["customerId"] == "crm-1" and "crm-2" in grace["identities"]
    hashed = pseudonymised({"email": "grace@example.com", "phone": "+12025550143"}, "local-dev-pepper")
    assert (grace["traits"]["email"], grace["traits"]["phone"]) == (hashed["email"], hashed["phone"])  # keyed hashes
    assert grace["consent"]["marketing"]["granted"] is False and grace["consent"]["marketing"]["source"] == "import"
    assert grace["traits"]["tier"] == "gold"

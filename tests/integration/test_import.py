"""The import function, run as Lambda runs it, on an object in the stack's bucket (moto)."""

from __future__ import annotations

import json

import boto3

from embedded.deploy import DeployedStack
from embedded.runtime import LambdaRuntime
from tests.conftest import ROOT, load_event

SAMPLE = ROOT / "tests" / "data" / "online_retail_sample.csv"
KEY = "imports/orders/online-retail/sample.csv"


def test_an_order_export_becomes_profiles_rejects_and_a_manifest(
    aws: boto3.session.Session, stack: DeployedStack, runtime: LambdaRuntime
) -> None:
    s3, bucket = aws.client("s3"), stack.outputs["DataBucketName"]
    s3.put_object(Bucket=bucket, Key=KEY, Body=SAMPLE.read_bytes())

    response = runtime.invoke("ImportFunction", load_event("import_orders.json"))

    [manifest_key] = response["manifests"]
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
    assert (manifest["rows_read"], manifest["loaded"], manifest["rejected"], manifest["duplicates"]) == (8, 6, 1, 1)
    assert manifest["reconciles"] and (manifest["orders"], manifest["refunds"]) == (3, 1)
    rejects = s3.get_object(Bucket=bucket, Key=manifest["rejects_key"])["Body"].read().decode().splitlines()
    assert json.loads(rejects[0])["reasons"] == ["customer id missing"]

    event = load_event("profiles_api_get_customer.json")
    event["pathParameters"], event["path"] = {"customerId": "13085"}, "/v1/customers/13085"
    answer = runtime.invoke("ProfilesApiFunction", event)
    profile = json.loads(answer["body"])
    assert answer["statusCode"] == 200, profile
    assert profile["rfm"]["orders"] == 2 and profile["rfm"]["firstOrderAt"] == "2009-12-01T07:45:00Z"

    again = runtime.invoke("ImportFunction", load_event("import_orders.json"))
    assert again == response
    assert json.loads(runtime.invoke("ProfilesApiFunction", event)["body"]) == profile


def test_the_bucket_tells_the_import_and_config_functions_about_their_uploads(
    aws: boto3.session.Session, stack: DeployedStack
) -> None:
    configuration = aws.client("s3").get_bucket_notification_configuration(Bucket=stack.outputs["DataBucketName"])
    notified = {
        n["LambdaFunctionArn"].rsplit(":", 1)[-1]: n["Filter"]["Key"]["FilterRules"]
        for n in configuration["LambdaFunctionConfigurations"]
    }
    assert notified == {
        stack.functions["ImportFunction"]: [{"Name": "prefix", "Value": "imports/"}],
        stack.functions["ConfigFunction"]: [
            {"Name": "prefix", "Value": "config/"},
            {"Name": "suffix", "Value": ".json"},
        ],
    }

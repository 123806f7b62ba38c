"""template.yaml is the one source of infrastructure: check it says what we mean, and that SAM agrees."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

import openapi_document
from embedded import template
from tests.conftest import ROOT

SAM = Path(sys.executable).parent / "sam"
SAM_TEMPLATE = template.load()
RESOURCES: dict[str, Any] = SAM_TEMPLATE["Resources"]
FUNCTIONS = {k: v for k, v in RESOURCES.items() if v["Type"] == "AWS::Serverless::Function"}


def sam(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    if not SAM.exists() and shutil.which("sam") is None:
        pytest.fail("the SAM CLI is a pinned dev dependency: run `make test` so it is installed")
    return subprocess.run(
        [str(SAM) if SAM.exists() else "sam", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
    )


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_every_functions_handler_file_exists(logical_id: str) -> None:
    properties = FUNCTIONS[logical_id]["Properties"]
    module, _, function = properties["Handler"].rpartition(".")
    source = ROOT / properties["CodeUri"] / f"{module}.py"
    assert source.is_file(), f"{logical_id}: {source} is missing"
    assert f"def {function}(" in source.read_text()


def test_functions_run_python_3_11_with_the_layer_and_tracing() -> None:
    function_globals = SAM_TEMPLATE["Globals"]["Function"]
    assert function_globals["Runtime"] == "python3.11"
    assert function_globals["Layers"] == [{"Ref": "AudienceLayer"}]
    assert function_globals["Tracing"] == "Active"
    assert all("Runtime" not in f["Properties"] for f in FUNCTIONS.values())


def test_the_layers_are_built_by_sam_with_their_makefiles() -> None:
    layer = RESOURCES["AudienceLayer"]
    assert layer["Metadata"] == {"BuildMethod": "makefile"}
    assert (ROOT / layer["Properties"]["ContentUri"] / "audience" / "__init__.py").is_file()
    for name in ("AudienceLayer", "MlLayer"):
        makefile = (ROOT / RESOURCES[name]["Properties"]["ContentUri"] / "Makefile").read_text()
        assert f"build-{name}:" in makefile


def test_the_stream_function_reads_kinesis_with_partial_failures_bounded_retries_and_a_dead_letter_queue() -> None:
    [kinesis] = FUNCTIONS["StreamFunction"]["Properties"]["Events"].values()
    assert kinesis["Type"] == "Kinesis"
    properties = kinesis["Properties"]
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert properties["BisectBatchOnFunctionError"] is True
    assert 0 <= properties["MaximumRetryAttempts"] <= 10
    assert properties["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}


TRACKING = ("batch", "track", "identify", "page", "screen", "group", "alias")  # Segment's HTTP Tracking API
# What browser SDKs send and fetch (analytics.js 2.0, RudderStack's JS SDK), each with its preflight
BROWSER = {("post", f"/v1/{call}") for call in ("t", "i", "p", "s", "g", "a", "b")} | {
    ("post", "/beacon/v1/batch"), ("get", "/v1/projects/{writeKey}/settings"), ("get", "/sourceConfig")}  # fmt: skip
PREFLIGHTS = {("options", path) for _, path in BROWSER} | {("options", f"/v1/{call}") for call in TRACKING}


def test_the_api_routes_are_the_v1_contract_and_the_published_openapi_document() -> None:
    routes = {
        (e["Properties"]["Method"], e["Properties"]["Path"]): logical_id
        for logical_id, f in FUNCTIONS.items()
        for e in f["Properties"].get("Events", {}).values()
        if e["Type"] == "Api"
    }
    assert routes == {
        ("post", "/v1/events"): "IngestFunction",
        **{("post", f"/v1/{call}"): "IngestFunction" for call in TRACKING},
        **{route: "IngestFunction" for route in BROWSER | PREFLIGHTS},
        ("get", "/v1/customers/{customerId}"): "ProfilesApiFunction",
        ("get", "/v1/customers/{customerId}/personalization"): "ProfilesApiFunction",
        ("get", "/v1/customers/{customerId}/recommendations"): "ProfilesApiFunction",
        ("get", "/v1/experiments/{experimentId}/results"): "ProfilesApiFunction",
        ("get", "/v1/experiments"): "ProfilesApiFunction",
        ("get", "/v1/models/segments/{version}/report"): "ProfilesApiFunction",
        ("get", "/console"): "ConsoleFunction",
        ("get", "/console/{file}"): "ConsoleFunction",
        ("put", "/v1/customers/{customerId}/consent"): "ProfilesApiFunction",
        ("delete", "/v1/customers/{customerId}"): "ProfilesApiFunction",
        ("get", "/v1/customers/{customerId}/export"): "ProfilesApiFunction",
        ("get", "/v1/customers/{customerId}/audit"): "ProfilesApiFunction",
        ("get", "/v1/customers"): "ProfilesApiFunction",  # by email or phone, through their keyed hashes
        ("get", "/v1/segments"): "ProfilesApiFunction",
        ("get", "/v1/segments/{segmentId}"): "ProfilesApiFunction",
        ("get", "/v1/segments/{segmentId}/customers"): "ProfilesApiFunction",
        ("get", "/v1/segments/{segmentId}/members"): "ProfilesApiFunction",
        ("get", "/v1/segments/{segmentId}/trend"): "ProfilesApiFunction",
        ("get", "/v1/customers/{customerId}/timeline"): "ProfilesApiFunction",
        ("get", "/v1/rules"): "ProfilesApiFunction",
        ("post", "/v1/rules/preview"): "ProfilesApiFunction",
        ("put", "/v1/rules"): "ConfigFunction",  # the rule builder's save: the function that checks uploads
        ("get", "/v1/models/value"): "ProfilesApiFunction",
        ("get", "/v1/customers/{customerId}/explain"): "ProfilesApiFunction",
        ("get", "/v1/models/segments"): "ProfilesApiFunction",
        ("get", "/v1/models/segments/{version}"): "ProfilesApiFunction",
        **{(verb, "/v1/web/personalization"): "ProfilesApiFunction" for verb in ("get", "options")},
    }
    published = json.loads((ROOT / "docs" / "openapi.json").read_text())
    assert published == openapi_document.document(), "docs/openapi.json is stale: run make openapi"
    operations = set(routes) - CONSOLE - {route for route in routes if route[0] == "options"}  # (preflights)
    assert {(verb, path) for path, ops in published["paths"].items() for verb in ops} == operations


CONSOLE = {("get", "/console"), ("get", "/console/{file}")}  # static files, not API operations
WEB = {("get", "/v1/web/personalization"), ("options", "/v1/web/personalization")}  # a source's write key


def test_every_read_route_needs_an_api_key_and_the_webhook_and_tracking_api_do_not() -> None:
    assert RESOURCES["Api"]["Properties"]["Auth"]["ApiKeyRequired"] is True
    assert RESOURCES["Api"]["Properties"]["Auth"]["UsagePlan"]["Throttle"]["RateLimit"] > 0
    keyless = {
        (e["Properties"]["Method"], e["Properties"]["Path"])
        for f in FUNCTIONS.values()
        for e in f["Properties"].get("Events", {}).values()
        if e["Type"] == "Api" and e["Properties"].get("Auth", {}).get("ApiKeyRequired") is False
    }
    signed = {("post", "/v1/events")} | {("post", f"/v1/{call}") for call in TRACKING}  # signed, write keys
    signed |= BROWSER | PREFLIGHTS  # write keys (a preflight carries none: the origin decides)
    assert keyless == signed | CONSOLE | WEB  # the console's static files: no data, the page asks for a key
    published = json.loads((ROOT / "docs" / "openapi.json").read_text())
    secured = {(verb, path) for path, ops in published["paths"].items() for verb, op in ops.items() if "security" in op}
    assert secured == {(verb, path) for path, ops in published["paths"].items() for verb in ops} - keyless


def test_every_success_answer_in_the_openapi_document_is_typed() -> None:
    """A client generated from the document knows every 2xx body: a model ($ref) or a list of
    them, never a bare object."""
    published = json.loads((ROOT / "docs" / "openapi.json").read_text())
    schemas = published["components"]["schemas"]
    untyped = []
    for path, operations in published["paths"].items():
        for verb, operation in operations.items():
            for status, answer in operation["responses"].items():
                if not status.startswith("2") or "text/html" in answer.get("content", {}):
                    continue  # (a report: a page for people, not data)
                schema = answer.get("content", {}).get("application/json", {}).get("schema", {})
                schema = schema.get("items", schema) if schema.get("type") == "array" else schema
                ref = schema.get("$ref", "").removeprefix("#/components/schemas/")
                if not (schemas.get(ref, {}).get("properties") or schema.get("properties")):
                    untyped.append(f"{verb.upper()} {path} {status}")
    assert untyped == []


def test_storage_is_private_encrypted_and_recoverable() -> None:
    table = RESOURCES["ProfilesTable"]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["SSESpecification"]["SSEEnabled"] is True
    assert table["TimeToLiveSpecification"]["Enabled"] is True
    assert RESOURCES["EventsStream"]["Properties"]["StreamEncryption"]["EncryptionType"] == "KMS"
    bucket = RESOURCES["DataBucket"]["Properties"]
    assert bucket["VersioningConfiguration"]["Status"] == "Enabled"
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    [statement] = RESOURCES["DataBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_outputs_name_the_api_table_stream_bucket_and_bus() -> None:
    assert set(SAM_TEMPLATE["Outputs"]) >= {
        "ApiUrl",
        "ProfilesTableName",
        "EventsStreamName",
        "DataBucketName",
        "SegmentEventBusName",
    }


def test_samconfig_has_default_and_prod_environments() -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    assert config["default"]["global"]["parameters"]["stack_name"] == "audience-engine"
    assert "prod" in config and "Stage=prod" in config["prod"]["deploy"]["parameters"]["parameter_overrides"]


def test_sam_validate_lint_passes() -> None:
    result = sam("validate", "--lint")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_sam_build_builds_the_layer_and_every_function(tmp_path: Path) -> None:
    result = sam("build", "--build-dir", str(tmp_path / "build"))
    assert result.returncode == 0, result.stdout + result.stderr
    built = tmp_path / "build"
    assert (built / "AudienceLayer" / "python" / "audience" / "services" / "profiles.py").is_file()
    assert (built / "AudienceLayer" / "python" / "aws_lambda_powertools").is_dir()
    for logical_id in FUNCTIONS:
        assert (built / logical_id / "app.py").is_file()
    # Lambda's limit: 250 MB unzipped for a function with all its layers (the retrain function
    # carries both layers; the ML layer is trimmed by layers/ml/Makefile).
    retrain_size = sum(_size(built / part) for part in ("RetrainFunction", "AudienceLayer", "MlLayer"))
    assert (built / "MlLayer" / "python" / "sklearn" / "cluster").is_dir()
    assert retrain_size < 250 * 2**20, f"{retrain_size / 2**20:.0f} MB"


def _size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def test_each_function_names_only_the_actions_and_resources_it_uses() -> None:
    """No SAM policy templates (they grant whole CRUD sets); every statement names its actions
    and resources: no wildcard action, and a wildcard resource only with a condition (KMS via Kinesis)."""
    for name, function in FUNCTIONS.items():
        for policy in function["Properties"].get("Policies", []):  # (the console's has none: no AWS access)
            assert set(policy) == {"Statement"}, f"{name} uses a policy template: {set(policy)}"
            for statement in policy["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                assert all("*" not in action for action in actions), (name, actions)
                if statement["Resource"] == "*":
                    assert "Condition" in statement, (name, statement)
    for reader in ("StreamFunction", "ProfilesApiFunction"):  # readers never write to the bucket
        statements = FUNCTIONS[reader]["Properties"]["Policies"][0]["Statement"]
        assert all(st["Action"] != "s3:PutObject" for st in statements)


def test_the_archive_is_firehose_from_the_events_stream_by_day_compressed_with_a_retention() -> None:
    from audience.services.artifacts import ARCHIVE, ARCHIVE_ERROR_PREFIX, ARCHIVE_PREFIX

    delivery = RESOURCES["ArchiveDeliveryStream"]["Properties"]
    assert delivery["DeliveryStreamType"] == "KinesisStreamAsSource"
    assert delivery["KinesisStreamSourceConfiguration"]["KinesisStreamARN"] == {"Fn::GetAtt": ["EventsStream", "Arn"]}
    s3 = delivery["ExtendedS3DestinationConfiguration"]
    assert (s3["Prefix"], s3["ErrorOutputPrefix"]) == (ARCHIVE_PREFIX, ARCHIVE_ERROR_PREFIX)  # artifacts.py's layout
    assert s3["CompressionFormat"] == "GZIP" and s3["BucketARN"] == {"Fn::GetAtt": ["DataBucket", "Arn"]}
    [processor] = s3["ProcessingConfiguration"]["Processors"]
    assert processor["Type"] == "AppendDelimiterToRecord"  # JSON Lines
    rules = {r["Id"]: r for r in RESOURCES["DataBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert rules["ExpireArchivedEvents"]["Prefix"] == ARCHIVE
    assert rules["ExpireArchivedEvents"]["ExpirationInDays"] == {"Ref": "ArchiveRetentionDays"}
    role = RESOURCES["ArchiveDeliveryRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    writes = next(st for st in role if st["Sid"] == "WriteArchive")
    assert all("/archive/" in r["Fn::Sub"] for r in writes["Resource"])  # Firehose writes nowhere else


def test_the_lake_tables_describe_the_archive_and_the_snapshot_and_athena_has_a_workgroup() -> None:
    from audience.services.lake import SNAPSHOT_COLUMNS

    kinds = {"string": "string", "int": "bigint", "float": "double", "bool": "boolean", "date": "date",
             "timestamp": "timestamp"}  # fmt: skip
    table = RESOURCES["ProfilesSnapshotTable"]["Properties"]["TableInput"]
    columns = [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]]
    assert columns == [(c.name, kinds[c.kind]) for c in SNAPSHOT_COLUMNS]
    for logical_id, prefix in (("ProfilesSnapshotTable", "snapshots/profiles/"), ("EventsTable", "archive/events/")):
        parameters = RESOURCES[logical_id]["Properties"]["TableInput"]["Parameters"]
        assert parameters["projection.enabled"] == "true"
        assert f"/{prefix}day=${{!day}}/" in parameters["storage.location.template"]["Fn::Sub"]
    workgroup = RESOURCES["LakeWorkGroup"]["Properties"]["WorkGroupConfiguration"]
    assert workgroup["EnforceWorkGroupConfiguration"] is True
    assert workgroup["ResultConfiguration"]["EncryptionConfiguration"] == {"EncryptionOption": "SSE_S3"}
    schedules = {e["Properties"]["Input"] for e in FUNCTIONS["LakeFunction"]["Properties"]["Events"].values()}
    assert schedules == {'{"action": "compact"}', '{"action": "snapshot"}'}

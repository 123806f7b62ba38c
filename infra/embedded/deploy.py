"""Create (or update) the CloudFormation stack from ``template.yaml`` against any endpoint."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from embedded import template

STACK_NAME = "audience-engine"
STAGING_BUCKET = "audience-engine-staging"


@dataclass(frozen=True)
class DeployedStack:
    name: str
    outputs: dict[str, str]
    resources: dict[str, str]  # logical id -> physical id
    types: dict[str, str]  # logical id -> resource type
    code_folders: dict[str, Path]  # logical id -> folder of a function's or layer's code

    @property
    def functions(self) -> dict[str, str]:
        """Logical id -> function name of every Lambda function in the stack."""
        return {k: v for k, v in self.resources.items() if self.types[k] == "AWS::Lambda::Function"}


def deploy(
    session: boto3.session.Session,
    stack_name: str = STACK_NAME,
    parameters: dict[str, str] | None = None,
    template_path: Path = template.TEMPLATE,
) -> DeployedStack:
    sam = template.load(template_path)
    s3 = session.client("s3")
    _ensure_bucket(s3, STAGING_BUCKET)
    packaged = template.package(sam, s3, STAGING_BUCKET, template_path.parent)
    cfn = template.translate(packaged, session.client("iam"), parameters)

    cloudformation = session.client("cloudformation")
    request: dict[str, Any] = {
        "StackName": stack_name,
        "TemplateBody": json.dumps(cfn),
        "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in (parameters or {}).items()],
        "Capabilities": ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    }
    if _exists(cloudformation, stack_name):
        try:
            cloudformation.update_stack(**request)
        except ClientError as exc:
            if "No updates" not in str(exc):
                raise
    else:
        cloudformation.create_stack(**request)
    _wait(cloudformation, stack_name)
    deployed = attach(session, stack_name, template_path)
    _enable_time_to_live(session.client("dynamodb"), cfn, deployed.resources)
    _enable_point_in_time_recovery(session.client("dynamodb"), cfn, deployed.resources)
    _configure_bucket_notifications(session, cfn, deployed.resources)
    return deployed


def attach(
    session: boto3.session.Session, stack_name: str = STACK_NAME, template_path: Path = template.TEMPLATE
) -> DeployedStack:
    """Describe a stack that is already deployed (by ``deploy`` or by ``sam deploy``)."""
    cloudformation = session.client("cloudformation")
    [stack] = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    summaries = cloudformation.list_stack_resources(StackName=stack_name)["StackResourceSummaries"]
    return DeployedStack(
        name=stack_name,
        outputs={o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])},
        resources={r["LogicalResourceId"]: r.get("PhysicalResourceId", "") for r in summaries},
        types={r["LogicalResourceId"]: r["ResourceType"] for r in summaries},
        code_folders=template.code_folders(template.load(template_path), template_path.parent),
    )


def _enable_time_to_live(dynamodb: Any, cfn: dict[str, Any], physical: dict[str, str]) -> None:
    """moto ignores a table's ``TimeToLiveSpecification``; apply it as CloudFormation would."""
    for logical_id, resource in cfn["Resources"].items():
        spec = resource.get("Properties", {}).get("TimeToLiveSpecification")
        if resource["Type"] != "AWS::DynamoDB::Table" or not spec or not spec.get("Enabled"):
            continue
        table = physical[logical_id]
        status = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]["TimeToLiveStatus"]
        if status in ("DISABLED", "DISABLING"):
            dynamodb.update_time_to_live(
                TableName=table, TimeToLiveSpecification={"AttributeName": spec["AttributeName"], "Enabled": True}
            )


def _enable_point_in_time_recovery(dynamodb: Any, cfn: dict[str, Any], physical: dict[str, str]) -> None:
    """moto ignores a table's ``PointInTimeRecoverySpecification`` (and exports need it): apply it."""
    for logical_id, resource in cfn["Resources"].items():
        spec = resource.get("Properties", {}).get("PointInTimeRecoverySpecification") or {}
        if resource["Type"] == "AWS::DynamoDB::Table" and spec.get("PointInTimeRecoveryEnabled"):
            dynamodb.update_continuous_backups(
                TableName=physical[logical_id],
                PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
            )


def _configure_bucket_notifications(
    session: boto3.session.Session, cfn: dict[str, Any], physical: dict[str, str]
) -> None:
    """moto ignores a bucket's ``NotificationConfiguration``; apply its Lambda notifications as
    CloudFormation would, so the local bucket says which function hears which keys."""
    s3: Any = session.client("s3")
    lambda_client = session.client("lambda")
    for logical_id, resource in cfn["Resources"].items():
        notifications = resource.get("Properties", {}).get("NotificationConfiguration", {})
        if resource["Type"] != "AWS::S3::Bucket" or not notifications.get("LambdaConfigurations"):
            continue
        configurations: list[dict[str, Any]] = []
        for entry in notifications["LambdaConfigurations"]:
            function = entry["Function"]["Fn::GetAtt"][0]  # SAM writes !GetAtt <Function>.Arn
            arn = lambda_client.get_function(FunctionName=physical[function])["Configuration"]["FunctionArn"]
            rules = entry.get("Filter", {}).get("S3Key", {}).get("Rules", [])
            configurations.append(
                {"LambdaFunctionArn": arn, "Events": [entry["Event"]], "Filter": {"Key": {"FilterRules": rules}}}
            )
        s3.put_bucket_notification_configuration(
            Bucket=physical[logical_id], NotificationConfiguration={"LambdaFunctionConfigurations": configurations}
        )


def _ensure_bucket(s3: Any, bucket: str) -> None:
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError:
        s3.create_bucket(Bucket=bucket)


def _exists(cloudformation: Any, stack_name: str) -> bool:
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError:
        return False
    return any(s["StackStatus"] != "DELETE_COMPLETE" for s in stacks)


def _wait(cloudformation: Any, stack_name: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while True:
        stack: dict[str, Any] = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
        status = stack["StackStatus"]
        if status.endswith("_COMPLETE") and "ROLLBACK" not in status:
            return
        if status.endswith("FAILED") or "ROLLBACK" in status:
            raise RuntimeError(f"stack {stack_name}: {status}: {stack.get('StackStatusReason', '')}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"stack {stack_name} still {status} after {timeout:.0f}s")
        time.sleep(1)

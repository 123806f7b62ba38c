"""From ``template.yaml`` to a CloudFormation template that moto can create.

The same steps as ``sam package`` + the CloudFormation transform: zip each code folder to a
staging bucket, point ``CodeUri``/``ContentUri`` at it, expand with the SAM translator.
"""

from __future__ import annotations

import copy
import io
import zipfile
from pathlib import Path
from typing import Any

from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"

_CODE_PROPERTIES = {"AWS::Serverless::Function": "CodeUri", "AWS::Serverless::LayerVersion": "ContentUri"}


def load(path: Path = TEMPLATE) -> dict[str, Any]:
    return yaml_parse(path.read_text())  # type: ignore[no-any-return]


def code_folders(sam: dict[str, Any], base: Path = ROOT) -> dict[str, Path]:
    """Logical id -> local folder of every function and layer."""
    return {
        logical_id: base / resource["Properties"][_CODE_PROPERTIES[resource["Type"]]]
        for logical_id, resource in sam["Resources"].items()
        if resource["Type"] in _CODE_PROPERTIES
    }


def package(sam: dict[str, Any], s3: Any, bucket: str, base: Path = ROOT) -> dict[str, Any]:
    """Upload each code folder as a zip and return a copy of the template that points at them."""
    packaged = copy.deepcopy(sam)
    for logical_id, folder in code_folders(sam, base).items():
        key = f"packages/{logical_id}.zip"
        s3.put_object(Bucket=bucket, Key=key, Body=_zip(folder))
        resource = packaged["Resources"][logical_id]
        resource["Properties"][_CODE_PROPERTIES[resource["Type"]]] = f"s3://{bucket}/{key}"
    return packaged


def translate(packaged: dict[str, Any], iam: Any, parameters: dict[str, str] | None = None) -> dict[str, Any]:
    """Expand the SAM transform into plain CloudFormation, adapted to what moto creates."""
    cfn = transform(packaged, parameters or {}, ManagedPolicyLoader(iam))
    return expand_rest_api_bodies(cfn)


def expand_rest_api_bodies(cfn: dict[str, Any]) -> dict[str, Any]:
    """moto ignores a RestApi's OpenAPI ``Body`` and then refuses to deploy an API without methods.

    Restate each path of the body as ``AWS::ApiGateway::Resource`` and ``Method`` resources
    (which moto creates), so the local API Gateway holds the same routes and integrations.
    """
    resources = cfn["Resources"]
    added: dict[str, Any] = {}
    for api_id, api in list(resources.items()):
        if api["Type"] != "AWS::ApiGateway::RestApi" or "Body" not in api["Properties"]:
            continue
        methods = []
        for path, operations in api["Properties"]["Body"].get("paths", {}).items():
            parent: dict[str, Any] = {"Ref": api_id}  # moto reads the API's own id as "the root resource"
            name = api_id
            for part in path.strip("/").split("/"):
                name += "".join(ch for ch in part if ch.isalnum()).capitalize()
                added.setdefault(
                    f"{name}Resource",
                    {
                        "Type": "AWS::ApiGateway::Resource",
                        "Properties": {"RestApiId": {"Ref": api_id}, "ParentId": parent, "PathPart": part},
                    },
                )
                parent = {"Ref": f"{name}Resource"}
            for verb, operation in operations.items():
                integration = operation["x-amazon-apigateway-integration"]
                method_id = f"{name}{verb.capitalize()}Method"
                added[method_id] = {
                    "Type": "AWS::ApiGateway::Method",
                    "Properties": {
                        "RestApiId": {"Ref": api_id},
                        "ResourceId": parent,
                        "HttpMethod": verb.upper(),
                        "AuthorizationType": "NONE",
                        "ApiKeyRequired": bool(operation.get("security")),
                        "Integration": {
                            "Type": integration["type"].upper(),
                            "IntegrationHttpMethod": integration["httpMethod"],
                            "Uri": integration["uri"],
                        },
                    },
                }
                methods.append(method_id)
        for resource in resources.values():
            if resource["Type"] == "AWS::ApiGateway::Deployment" and resource["Properties"]["RestApiId"] == {
                "Ref": api_id
            }:
                resource["DependsOn"] = methods
    resources.update(added)
    return cfn


def _zip(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                archive.write(path, path.relative_to(folder))
    return buffer.getvalue()

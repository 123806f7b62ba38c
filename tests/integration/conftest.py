"""Integration tier: the real handlers against moto (in process), in a stack built from template.yaml."""

from __future__ import annotations

import io
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from audience.adapters.aws import reset_clients
from embedded.deploy import DeployedStack, deploy
from embedded.runtime import LambdaRuntime
from embedded.stack import REGION, detach_moto_lambda_triggers, quiet_moto, seed_secrets


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.session.Session]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)  # moto intercepts AWS's own hostnames
    for name, value in {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws(config={"lambda": {"use_docker": False}}):
        reset_clients()  # clients cached by an earlier test belong to another mock
        yield boto3.session.Session(region_name=REGION)
    reset_clients()


@pytest.fixture
def stack(aws: boto3.session.Session) -> DeployedStack:
    with quiet_moto():
        deployed = deploy(aws)
    detach_moto_lambda_triggers()
    seed_secrets(aws, deployed)
    return deployed


@pytest.fixture
def function_logs() -> io.StringIO:
    return io.StringIO()


@pytest.fixture
def runtime(aws: boto3.session.Session, stack: DeployedStack, function_logs: io.StringIO) -> LambdaRuntime:
    return LambdaRuntime.from_stack(aws, stack, function_logs, isolated=False)  # mock_aws patches this process only

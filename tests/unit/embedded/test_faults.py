"""Faults on demand: which calls the embedded AWS fails, how often, and with what answer."""

from __future__ import annotations

import json

import pytest

from embedded.faults import Faults

FUNCTION_AGENT = "Boto3/1.43 md/Botocore#1.43 ua/2.1 os/linux app/lambda-StreamFunction"
SCOPE = "AWS4-HMAC-SHA256 Credential=testing/20261206/us-east-1/{service}/aws4_request, SignedHeaders=host"


def request(service: str, agent: str = FUNCTION_AGENT) -> dict[str, object]:
    return {"HTTP_USER_AGENT": agent, "HTTP_AUTHORIZATION": SCOPE.format(service=service)}


def test_a_share_of_a_services_calls_fail_as_that_service_throttles() -> None:
    faults = Faults(seed=1)
    faults.configure("dynamodb=0.05, kinesis=0.5:error")
    answers = [faults.answer(request("dynamodb")) for _ in range(4000)]
    failed = [a for a in answers if a is not None]
    assert 0.04 < len(failed) / len(answers) < 0.06
    assert failed[0].status == 400 and not failed[0].apply_first
    assert json.loads(failed[0].body)["__type"] == "ProvisionedThroughputExceededException"
    error = next(a for a in (faults.answer(request("kinesis")) for _ in range(100)) if a)
    assert error.status == 500 and json.loads(error.body)["__type"] == "InternalFailure"
    assert faults.injected["dynamodb:throttle"] == len(failed)


def test_only_the_functions_calls_are_faulted_and_other_services_pass() -> None:
    faults = Faults(seed=1)
    faults.configure("dynamodb=1")
    assert faults.answer(request("dynamodb", agent="Boto3/1.43 md/Botocore#1.43")) is None  # a test's or a poller's
    assert faults.answer(request("s3")) is None
    assert faults.answer(request("dynamodb")) is not None


def test_a_lost_answer_is_applied_first_and_s3_answers_in_xml() -> None:
    faults = Faults(seed=1)
    faults.configure("s3=1:lost crash=0.01")
    answer = faults.answer(request("s3"))
    assert answer is not None and answer.apply_first and answer.status == 500
    assert answer.body.startswith(b"<Error><Code>InternalError</Code>")
    assert faults.crash == 0.01


@pytest.mark.parametrize("spec", ["dynamodb=2", "dynamodb=0.1:melt", "dynamodb"])
def test_a_wrong_spec_names_the_item_and_the_reason(spec: str) -> None:
    with pytest.raises(ValueError, match=f"FAULTS item {spec!r}"):
        Faults().configure(spec)

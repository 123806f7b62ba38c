"""The embedded moto's own changes: a transaction that fails leaves every item as it was (its
backup copies only the items it updates), and DynamoDB writes stay atomic."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from embedded.moto_server import MotoServer


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    server = MotoServer(port=0)
    server.start()
    try:
        client = boto3.client("dynamodb", endpoint_url=server.url, region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
        client.create_table(
            TableName="t", BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                  {"AttributeName": "sk", "AttributeType": "S"}],
        )  # fmt: skip
        for n in range(3):
            client.put_item(TableName="t", Item={"pk": {"S": f"c{n}"}, "sk": {"S": "P"}, "v": {"N": "1"}})
        yield client
    finally:
        server.stop()


def update(pk: str, condition: str = "v = :one") -> dict[str, Any]:
    return {"Update": {"TableName": "t", "Key": {"pk": {"S": pk}, "sk": {"S": "P"}}, "UpdateExpression": "SET v = :two",
                       "ConditionExpression": condition, "ExpressionAttributeValues": {":one": {"N": "1"},
                                                                                      ":two": {"N": "2"}}}}  # fmt: skip


def values(dynamodb: Any) -> dict[str, str]:
    return {i["pk"]["S"]: i["v"]["N"] for i in dynamodb.scan(TableName="t")["Items"]}


def test_a_failed_transaction_rolls_back_the_updates_it_made(dynamodb: Any) -> None:
    put = {"Put": {"TableName": "t", "Item": {"pk": {"S": "c9"}, "sk": {"S": "P"}, "v": {"N": "7"}}}}
    with pytest.raises(ClientError, match="TransactionCanceled"):
        dynamodb.transact_write_items(TransactItems=[update("c0"), put, update("c1", condition="v = :two")])
    assert values(dynamodb) == {"c0": "1", "c1": "1", "c2": "1"}


def test_a_transaction_that_succeeds_applies_every_action(dynamodb: Any) -> None:
    dynamodb.transact_write_items(TransactItems=[update("c0"), update("c1")])
    assert values(dynamodb) == {"c0": "2", "c1": "2", "c2": "1"}

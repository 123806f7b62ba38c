"""Profiles in the single DynamoDB table.

Keys: ``pk = CUSTOMER#<id>``, ``sk = PROFILE``. Later item kinds (aliases, history, model
pointers) share the table under other ``sk`` values; ``gsi1pk``/``gsi1sk`` feed the
``bySegment`` index.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from audience.adapters.aws import as_transient, client, error_code
from audience.domain.errors import ConcurrentUpdate, TransientError
from audience.domain.profile import Profile

_BATCH_GET_LIMIT = 100
_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()
PROFILE_SK = "PROFILE"


def profile_key(customer_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"CUSTOMER#{customer_id}"}, "sk": {"S": PROFILE_SK}}


def to_item(profile: Profile) -> dict[str, Any]:
    plain = json.loads(profile.model_dump_json(by_alias=True), parse_float=Decimal)
    item = {name: _SERIALIZER.serialize(value) for name, value in plain.items()}
    return {**item, **profile_key(profile.customer_id)}


def from_item(item: Mapping[str, Any]) -> Profile:
    plain = {name: _DESERIALIZER.deserialize(value) for name, value in item.items() if name not in ("pk", "sk")}
    return Profile.model_validate(plain)


class DynamoProfileRepository:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    def get(self, customer_id: str) -> Profile | None:
        try:
            response = client("dynamodb").get_item(
                TableName=self.table_name, Key=profile_key(customer_id), ConsistentRead=True
            )
        except ClientError as exc:
            raise as_transient(exc) from exc
        return from_item(response["Item"]) if "Item" in response else None

    def get_many(self, customer_ids: Iterable[str]) -> dict[str, Profile]:
        ids = list(dict.fromkeys(customer_ids))
        found: dict[str, Profile] = {}
        for start in range(0, len(ids), _BATCH_GET_LIMIT):
            keys = [profile_key(c) for c in ids[start : start + _BATCH_GET_LIMIT]]
            for item in self._batch_get(keys):
                profile = from_item(item)
                found[profile.customer_id] = profile
        return found

    def _batch_get(self, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        request = {self.table_name: {"Keys": keys, "ConsistentRead": True}}
        for attempt in range(6):
            try:
                response = client("dynamodb").batch_get_item(RequestItems=request)
            except ClientError as exc:
                raise as_transient(exc) from exc
            items.extend(response["Responses"].get(self.table_name, []))
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return items
            time.sleep(0.05 * 2**attempt)
        raise TransientError("DynamoDB left keys unprocessed after 6 attempts")

    def save(self, profile: Profile) -> None:
        stored = profile.model_copy(update={"version": profile.version + 1})
        # Version 0 means "never stored": two writers creating the same customer must not both win.
        condition: dict[str, Any] = (
            {"ConditionExpression": "attribute_not_exists(pk)"}
            if profile.version == 0
            else {
                "ConditionExpression": "version = :expected",
                "ExpressionAttributeValues": {":expected": {"N": str(profile.version)}},
            }
        )
        try:
            client("dynamodb").put_item(TableName=self.table_name, Item=to_item(stored), **condition)
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise ConcurrentUpdate(
                    f"profile {profile.customer_id} changed since version {profile.version}"
                ) from exc
            raise as_transient(exc) from exc

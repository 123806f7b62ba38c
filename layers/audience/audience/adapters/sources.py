"""The source registry in the profile table: one item (``pk = SOURCES``, ``sk = REGISTRY``), its
document as JSON and a version for conditional writes. (A module of its own: the webhook
function reads it and should not load the profile adapter.)"""

from __future__ import annotations

from typing import Any, ClassVar

from audience.adapters.table import Table
from audience.domain.sources import SourceRegistry


class DynamoSources:
    KEY: ClassVar[dict[str, Any]] = {"pk": {"S": "SOURCES"}, "sk": {"S": "REGISTRY"}}

    def __init__(self, table_name: str) -> None:
        self.table = Table(table_name)

    def load(self) -> SourceRegistry:
        item = self.table.call("get_item", TableName=self.table.name, Key=self.KEY, ConsistentRead=True).get("Item")
        if item is None:
            return SourceRegistry()
        return SourceRegistry.model_validate_json(item["document"]["S"]).model_copy(
            update={"version": int(item["version"]["N"])}
        )

    def save(self, registry: SourceRegistry) -> None:
        """Write the registry if it is still the version read (``ConcurrentUpdate`` otherwise)."""
        document = registry.model_dump_json(by_alias=True, exclude={"version"})
        item = {**self.KEY, "document": {"S": document}, "version": {"N": str(registry.version + 1)}}
        condition = "attribute_not_exists(pk)" if registry.version == 0 else "version = :read"
        values = {} if registry.version == 0 else {":read": {"N": str(registry.version)}}
        self.table.write("put_item", TableName=self.table.name, Item=item, ConditionExpression=condition,
                         **({"ExpressionAttributeValues": values} if values else {}))  # fmt: skip

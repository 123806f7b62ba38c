"""Privacy and models in the single DynamoDB table: suppression records (``pk =
SUPPRESSED#<pseudonym>``), the audit trail (``pk = AUDIT#<subject>``, ``sk = <time>#<entry id>``,
written only if new) and the active segmentation model (``pk = MODEL#segments``, ``sk = ACTIVE``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, ClassVar

from audience.adapters.profile_items import PROFILE_SK, customer_pk, profile_key
from audience.adapters.table import Table
from audience.domain.privacy import AuditEntry


class DynamoModelRegistry:
    """The active model's version: one item, changed with its audit entry in one transaction."""

    KEY: ClassVar[dict[str, Any]] = {"pk": {"S": "MODEL#segments"}, "sk": {"S": "ACTIVE"}}

    def __init__(self, table_name: str) -> None:
        self.table = Table(table_name)

    def active(self) -> str | None:
        item = self.table.call("get_item", TableName=self.table.name, Key=self.KEY, ConsistentRead=True).get("Item")
        return item["version"]["S"] if item else None

    def activate(self, version: str, reason: str, at: datetime) -> None:
        """Point at ``version`` and append the change to the audit trail (subject ``model``), at once."""
        item = {**self.KEY, "version": {"S": version}, "reason": {"S": reason}, "at": {"S": at.isoformat()}}
        previous = self.active()
        if previous:
            item["previous"] = {"S": previous}
        entry = AuditEntry(subject="model", at=at, action="model.activated", actor="retrain function",
                           details={"version": version, "previous": previous, "reason": reason})  # fmt: skip
        actions = [{"Put": {"TableName": self.table.name, "Item": item}},
                   {"Put": {"TableName": self.table.name, "Item": audit_item(entry)}}]  # fmt: skip
        self.table.write("transact_write_items", TransactItems=actions)


class DynamoPrivacy:
    """Suppression records and the audit trail; erasure of a customer's every item."""

    def __init__(self, table_name: str) -> None:
        self.table = Table(table_name)

    def record(self, entry: AuditEntry) -> None:
        self.table.write("put_item", TableName=self.table.name, Item=audit_item(entry),
                         ConditionExpression="attribute_not_exists(pk)")  # fmt: skip

    def entries(self, subject: str) -> list[AuditEntry]:
        items = self.table.partition({"S": f"AUDIT#{subject}"})
        return [AuditEntry.model_validate_json(item["entry"]["S"]) for item in items]

    def erase(self, customer_id: str, redirects: Sequence[str], pseudonyms: Sequence[str], entry: AuditEntry) -> None:
        """The pages of the customer and of its merged ids first (a retry finds the rest), then
        in one transaction their hot items, the suppression records and the audit entry."""
        ids = (customer_id, *redirects)
        keys = [k for c in ids for k in self.table.partition(customer_pk(c), ProjectionExpression="pk, sk")]
        self.table.delete([k for k in keys if k["sk"]["S"] != PROFILE_SK])
        table, exists = self.table.name, "attribute_exists(pk)"
        actions: list[dict[str, Any]] = [
            {"Delete": {"TableName": table, "Key": profile_key(customer_id), "ConditionExpression": exists}},
            *({"Delete": {"TableName": table, "Key": profile_key(r)}} for r in redirects),
            *({"Put": {"TableName": table, "Item": {**_suppression_key(p), "at": {"S": entry.at.isoformat()}}}}
              for p in pseudonyms),
            {"Put": {"TableName": table, "Item": audit_item(entry)}},
        ]  # fmt: skip
        self.table.write("transact_write_items", TransactItems=actions)

    def suppressed(self, pseudonyms: Iterable[str]) -> set[str]:
        found = self.table.batch_get([_suppression_key(p) for p in dict.fromkeys(pseudonyms)])
        return {i["pk"]["S"].removeprefix("SUPPRESSED#") for i in found}

    def lift(self, pseudonyms: Sequence[str]) -> None:
        for p in pseudonyms:
            self.table.call("delete_item", TableName=self.table.name, Key=_suppression_key(p))


def _suppression_key(pseudonym: str) -> dict[str, Any]:
    return {"pk": {"S": f"SUPPRESSED#{pseudonym}"}, "sk": {"S": "SUPPRESSED"}}


def audit_item(entry: AuditEntry) -> dict[str, Any]:
    return {
        "pk": {"S": f"AUDIT#{entry.subject}"},
        "sk": {"S": f"{entry.at.isoformat()}#{entry.entry_id}"},
        "entry": {"S": entry.model_dump_json(by_alias=True)},
    }

"""Erasure, suppression and the audit trail, without keeping who it was about.

Ids are recorded only as pseudonyms: an HMAC-SHA256 of the id under a secret pepper, so the
suppression list and the audit trail can be checked for a given id but not read back into ids.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


def pseudonym(pepper: str, value: str) -> str:
    """The keyed hash an id is recorded under (128 bits, hex)."""
    return hmac.new(pepper.encode(), value.encode(), hashlib.sha256).hexdigest()[:32]


PII_TRAITS = ("email", "phone")  # contact details: kept only as keyed hashes unless configured otherwise
HASHED = "hmac-sha256:"


def pseudonymised(traits: dict[str, Any], pepper: str) -> dict[str, Any]:
    """``traits`` with each contact detail replaced by its keyed hash (of the trimmed, lower-cased
    value): still comparable (the same email gives the same hash), no longer readable."""
    return {
        name: f"{HASHED}{pseudonym(pepper, value.strip().lower())}"
        if name in PII_TRAITS and isinstance(value, str) and not value.startswith(HASHED)
        else value
        for name, value in traits.items()
    }


class AuditEntry(BaseModel):
    """One line of the append-only audit trail: who did what, to whom (a pseudonym, or a
    system subject such as ``model`` or ``config``), when, with what details."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    subject: str
    at: AwareDatetime
    action: str = Field(description="consent.changed, customer.erased, customer.exported, model.promoted, config.*")
    actor: str = Field(description="the API key id, the schedule, the uploaded object, ...")
    details: dict[str, Any] = Field(default_factory=dict)
    entry_id: str = Field(default_factory=lambda: uuid.uuid4().hex[:12], alias="entryId")


class Receipt(BaseModel):
    """What ``DELETE /v1/customers/{customerId}`` answers, and the audit trail keeps."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    receipt_id: str = Field(alias="receiptId")
    customer_id: str = Field(alias="customerId", description="the id the request named (not stored)")
    erased_at: AwareDatetime = Field(alias="erasedAt")
    removed: dict[str, int] = Field(description="items removed by kind: profile, redirects")
    identities: int = Field(description="ids of the customer now suppressed")
    suppressed_until: str = Field(
        alias="suppressedUntil", default="consent is given again (PUT /v1/customers/{id}/consent)"
    )
    files: str = Field(
        default="queued: the customer's rows leave import rejects and merge reports, and training snapshots are "
        "deleted, within minutes (the audit trail records customer.scrubbed)"
    )
    archive: str = Field(
        default="tombstoned: the customer's events leave the events archive (archive/events/, every version) at "
        "its next daily compaction, within 25 hours"
    )


def erasure_receipt(customer_id: str, at: datetime, redirects: int, identities: int) -> Receipt:
    return Receipt(
        receipt_id=uuid.uuid4().hex,
        customer_id=customer_id,
        erased_at=at,
        removed={"profile": 1, "redirects": redirects},
        identities=identities,
    )

"""Erasure with a receipt, suppression of the erased, access (export), and the audit trail."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from audience.domain.errors import CustomerNotFound
from audience.domain.privacy import AuditEntry, Receipt, erasure_receipt, pseudonym
from audience.domain.profile import Profile
from audience.ports import AuditTrail, ObjectStore, PrivacyStore, ProfileRepository, WorkQueue
from audience.services.artifacts import FEATURE_SNAPSHOTS, ROW_FILES, EventArchive
from audience.services.consent import set_consent
from audience.services.profiles import get_profile
from audience.services.unit_of_work import until_unchanged


class Suppression:
    """Which of some ids belong to an erased customer (by their pseudonyms)."""

    def __init__(self, store: PrivacyStore, pepper: str) -> None:
        self.store, self.pepper = store, pepper

    def __call__(self, ids: Iterable[str]) -> set[str]:
        by_pseudonym = {pseudonym(self.pepper, i): i for i in ids}
        return {by_pseudonym[p] for p in self.store.suppressed(by_pseudonym)} if by_pseudonym else set()


class Scrub(BaseModel):
    ids: list[str] = Field(min_length=1)
    subject: str = Field(description="the erased customer's pseudonym, the audit trail's subject")
    receipt: str
    pseudonyms: list[str] = Field(default_factory=list, description="the ids' pseudonyms: the archive's tombstone")
    erased_at: datetime | None = Field(default=None, alias="erasedAt")

    model_config = ConfigDict(populate_by_name=True)


class ScrubWork(BaseModel):
    """A work item for the import function: remove an erased customer's rows from the bucket."""

    scrub: Scrub


def erase_customer(
    customer_id: str,
    profiles: ProfileRepository,
    store: PrivacyStore,
    pepper: str,
    now: datetime,
    actor: str,
    files: WorkQueue | None = None,
) -> Receipt:
    """Remove every item of the customer (the profile with its history, segments, consent,
    ledger and idempotency records; the redirects of its merged ids), suppress all its ids, and
    record the erasure, in one transaction. 404 for an unknown id. Then the bucket: the files'
    rows are scrubbed through ``files`` (whose worker also leaves the archive a tombstone of the
    ids' pseudonyms: the next compaction removes the customer's events, ``services.lake``)."""

    def attempt(_: int) -> tuple[Receipt, AuditEntry, list[str]]:
        profile = get_profile(customer_id, profiles)
        ids = sorted({customer_id, profile.customer_id, *profile.identities})
        stored = profiles.get_many(ids)
        redirects = [i for i, item in stored.items() if item.merged_into == profile.customer_id]
        receipt = erasure_receipt(customer_id, now, len(redirects), len(ids))
        entry = AuditEntry(subject=pseudonym(pepper, profile.customer_id), at=now, action="customer.erased",
                           actor=actor, details=receipt.model_dump(mode="json", exclude={"customer_id"}))  # fmt: skip
        store.erase(profile.customer_id, redirects, [pseudonym(pepper, i) for i in ids], entry)
        return receipt, entry, ids

    receipt, entry, ids = until_unchanged(attempt, f"the profile of {customer_id!r}")
    if files is not None:  # the bucket's copies: scrub_files, by the function that writes them
        scrub = Scrub(ids=ids, subject=entry.subject, receipt=receipt.receipt_id,
                      pseudonyms=[pseudonym(pepper, i) for i in ids], erased_at=now)  # fmt: skip
        files.send(ScrubWork(scrub=scrub).model_dump(mode="json", by_alias=True))
    return receipt


def lift_suppression(customer_id: str, store: PrivacyStore, pepper: str) -> bool:
    """Consent given again by an erased customer: their events are accepted from now on."""
    hashed = pseudonym(pepper, customer_id)
    if hashed not in store.suppressed([hashed]):
        return False
    store.lift([hashed])
    return True


def export_customer(
    customer_id: str, profiles: ProfileRepository, audit: AuditTrail, pepper: str, now: datetime, actor: str
) -> dict[str, Any]:
    """Everything held about the customer: the whole stored profile and its audit trail; the
    export itself is audited."""
    profile = get_profile(customer_id, profiles)
    subject = pseudonym(pepper, profile.customer_id)
    audit.record(AuditEntry(subject=subject, at=now, action="customer.exported", actor=actor))
    return {
        "customerId": profile.customer_id,
        "exportedAt": now.isoformat(),
        "profile": profile.model_dump(mode="json", by_alias=True, exclude={"outbox", "version"}),
        "audit": [e.model_dump(mode="json", by_alias=True) for e in audit.entries(subject)],
    }


def customer_audit(customer_id: str, profiles: ProfileRepository, audit: AuditTrail, pepper: str) -> list[AuditEntry]:
    """The audit trail of a customer, found by the id even after erasure (the trail is keyed by
    the pseudonym of the customer's id at the time)."""
    try:
        subject_id = get_profile(customer_id, profiles).customer_id
    except CustomerNotFound:
        subject_id = customer_id
    return audit.entries(pseudonym(pepper, subject_id))


def record_consent(
    customer_id: str,
    decisions: dict[str, bool],
    profiles: ProfileRepository,
    store: PrivacyStore,
    pepper: str,
    now: datetime,
    actor: str,
    source: str = "api",
) -> Profile:
    """Consent from the API (``source``: ``api``, or ``console`` when the console sent it),
    audited. An erased customer who gives consent again is no longer suppressed and starts a new
    profile with that consent; an unknown id is a 404."""
    try:
        profile = set_consent(customer_id, decisions, profiles, now, source)
    except CustomerNotFound:
        if not any(decisions.values()) or not lift_suppression(customer_id, store, pepper):
            raise
        profile = Profile(customer_id=customer_id).consented(decisions, now, source)
        profiles.save(profile)
    entry = AuditEntry(subject=pseudonym(pepper, profile.customer_id), at=now, action="consent.changed", actor=actor,
                       details={"decisions": decisions, "source": source})  # fmt: skip
    store.record(entry)
    return profile


# Files that hold customer rows: import rejects (the row as read) and customer-merge provenance.


def scrub_erased(ids: Sequence[str], subject: str, receipt: str, store: ObjectStore, audit: AuditTrail, now: datetime,
                 pseudonyms: Sequence[str] = (), erased_at: datetime | None = None) -> dict[str, int]:  # fmt: skip
    """The file half of an erasure (the import function runs it: it writes those files), audited
    as ``customer.scrubbed`` under the erasure's subject and receipt; with ``pseudonyms``, a
    tombstone in the events archive that the next compaction applies (``services.lake``)."""
    counts = scrub_files(store, ids)
    if pseudonyms:
        EventArchive(store).put_tombstone(receipt, list(pseudonyms), erased_at or now)
        counts["tombstones"] = 1
    audit.record(AuditEntry(subject=subject, at=now, action="customer.scrubbed", actor="import function",
                            details={"receipt": receipt, **counts}))  # fmt: skip
    return counts


def scrub_files(store: ObjectStore, ids: Sequence[str]) -> dict[str, int]:
    """Remove an erased customer's rows from the bucket: every JSON Lines row of the rejects
    and merge reports that names one of ``ids`` (a value equal to it), the earlier versions of
    each rewritten object (the bucket is versioned), and every training snapshot (they hold
    ids; the next retrain writes new ones). Model artifacts and reports hold no rows."""
    wanted, counts = set(ids), {"rows": 0, "files": 0, "snapshots": 0}
    for key in (k for prefix in ROW_FILES for k in store.keys(prefix) if k.endswith(".jsonl")):
        text = store.read_text(key) or ""
        lines = text.splitlines()
        kept = [line for line in lines if not wanted & _values(json.loads(line))]
        if len(kept) != len(lines):
            store.put_text(key, "".join(f"{line}\n" for line in kept))
            store.forget_history(key)
            counts["rows"] += len(lines) - len(kept)
            counts["files"] += 1
    for key in store.keys(FEATURE_SNAPSHOTS):
        store.forget_history(key, keep_current=False)
        counts["snapshots"] += 1
    return counts


def _values(row: Any) -> set[str]:
    """Every string in a JSON value (ids sit in different fields of different files)."""
    if isinstance(row, dict):
        return set().union(*(_values(v) for v in row.values())) if row else set()
    if isinstance(row, list):
        return set().union(*(_values(v) for v in row)) if row else set()
    return {row} if isinstance(row, str) else set()

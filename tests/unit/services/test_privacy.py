"""Erasure, suppression, export and the audit trail."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from audience.domain.errors import CustomerNotFound
from audience.domain.privacy import pseudonym
from audience.services.population import read_customers
from audience.services.privacy import (
    Suppression,
    customer_audit,
    erase_customer,
    export_customer,
    record_consent,
    scrub_files,
)
from audience.services.profiles import apply_records
from tests.synthetic import NOW
from tests.unit.fakes import MemoryBucket, MemoryDeadLetters, MemoryPrivacy, MemoryProfiles
from tests.unit.services.test_profiles_service import CURRENCIES, order, record

PEPPER = "pepper"


def customer_with_an_alias() -> tuple[MemoryProfiles, MemoryPrivacy]:
    profiles = MemoryProfiles()
    batch = [
        record(1, {"type": "page", "anonymousId": "anon-1"}),
        record(2, {"type": "alias", "userId": "u1", "previousId": "anon-1"}),
        record(3, order("u1", 40)),
    ]
    apply_records(batch, profiles, MemoryDeadLetters(), CURRENCIES, NOW)
    return profiles, MemoryPrivacy(profiles)


def test_erasure_removes_every_item_returns_a_receipt_and_suppresses_later_events() -> None:
    profiles, privacy = customer_with_an_alias()
    assert set(profiles.items) == {"u1", "anon-1"}
    exported = export_customer("anon-1", profiles, privacy, PEPPER, NOW, "api")
    assert exported["profile"]["customerId"] == "u1" and exported["profile"]["orders"] == 1

    receipt = erase_customer("anon-1", profiles, privacy, PEPPER, NOW, "api-key:k1")

    assert profiles.items == {}  # profile, redirect, history, ledger, idempotency records: all gone
    assert read_customers(profiles, 1, NOW, training=True)[0] == []  # the next training cannot see them
    assert (receipt.removed, receipt.identities, receipt.customer_id) == ({"profile": 1, "redirects": 1}, 2, "anon-1")
    assert privacy.suppression == {pseudonym(PEPPER, "u1"), pseudonym(PEPPER, "anon-1")}
    actions = [e.action for e in customer_audit("u1", profiles, privacy, PEPPER)]
    assert actions == ["customer.exported", "customer.erased"]
    assert all("u1" not in e.model_dump_json() for e in privacy.trail)  # the trail holds pseudonyms only

    later = [
        record(4, order("u1", 99)),
        record(5, {"type": "page", "anonymousId": "anon-1"}),
        record(6, order("u2", 5)),
    ]
    suppression = Suppression(privacy, PEPPER)
    outcome = apply_records(later, profiles, MemoryDeadLetters(), CURRENCIES, NOW, suppression=suppression)
    assert outcome.suppressed == 2 and set(profiles.items) == {"u2"}
    with pytest.raises(CustomerNotFound):
        export_customer("u1", profiles, privacy, PEPPER, NOW, "api")


def test_consent_given_again_lifts_the_suppression() -> None:
    profiles, privacy = customer_with_an_alias()
    erase_customer("u1", profiles, privacy, PEPPER, NOW, "api")
    with pytest.raises(CustomerNotFound):
        record_consent("u1", {"marketing": False}, profiles, privacy, PEPPER, NOW, "api")  # a refusal lifts nothing

    record_consent("u1", {"personalization": True}, profiles, privacy, PEPPER, NOW + timedelta(days=1), "api")

    assert pseudonym(PEPPER, "u1") not in privacy.suppression
    assert profiles.items["u1"].consent["personalization"].source == "api"
    apply_records(
        [record(7, order("u1", 12))],
        profiles,
        MemoryDeadLetters(),
        CURRENCIES,
        NOW,
        suppression=Suppression(privacy, PEPPER),
    )
    assert profiles.items["u1"].orders == 1
    assert [e.action for e in customer_audit("u1", profiles, privacy, PEPPER)][-1] == "consent.changed"


def test_scrubbing_removes_the_erased_customers_rows_from_rejects_and_reports_and_drops_snapshots() -> None:
    bucket = MemoryBucket()
    rejects = [{"line": n, "values": {"customer_id": c}, "reasons": ["bad total"]} for n, c in ((2, "u1"), (3, "u9"))]
    bucket.put_text("rejects/imp-1.jsonl", "".join(json.dumps(r) + "\n" for r in rejects))
    bucket.put_text(
        "reports/imports/imp-2-merges.jsonl", json.dumps({"customerId": "u7", "mergedIds": ["anon-1"]}) + "\n"
    )
    bucket.put_text("reports/imports/imp-2.json", json.dumps({"rows_read": 3}))
    bucket.put_text("work/models/run-1/part-00000", "ids and rows")

    counts = scrub_files(bucket, ["u1", "anon-1"])

    assert counts == {"rows": 2, "files": 2, "snapshots": 1}
    assert [
        json.loads(line)["values"]["customer_id"]
        for line in (bucket.read_text("rejects/imp-1.jsonl") or "").splitlines()
    ] == ["u9"]
    assert bucket.read_text("reports/imports/imp-2-merges.jsonl") == ""
    assert bucket.keys("work/models/") == [] and bucket.read_text("reports/imports/imp-2.json") is not None

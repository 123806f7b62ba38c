"""Customer (CRM) exports: cleaning, resolution of the same person under several records, and
the import that turns them into profiles with provenance."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from audience.domain.customers import CustomerFileCleaner, CustomerRecord, e164, normalise_email, resolve
from audience.domain.imports import ColumnMapping, Reject, builtin_mapping
from audience.domain.money import Currencies
from audience.services.imports import Importing
from audience.services.profiles import get_profile
from tests.unit.fakes import MemoryBucket, MemoryProfiles
from tests.unit.services.test_import_service import FILE

NOW = datetime(2026, 11, 23, tzinfo=UTC)
CUSTOMERS = builtin_mapping("customers")
HEADER = "customer_id,email,phone,first_name,last_name,postcode,country,signup_date,consent_marketing,tier\n"


def clean(
    data: str, mapping: ColumnMapping = CUSTOMERS
) -> tuple[CustomerFileCleaner, list[CustomerRecord], list[Reject]]:
    rejects: list[Reject] = []
    cleaner = CustomerFileCleaner(mapping, rejects.append)
    records = list(cleaner.records(io.BytesIO(data.encode())))
    assert cleaner.accounting.reconciles(), cleaner.accounting
    return cleaner, records, rejects


def test_fields_are_normalised_with_maintained_libraries() -> None:
    assert normalise_email("  Ada.Lovelace@Example.COM ".strip()) == "ada.lovelace@example.com"
    assert normalise_email("not-an-email") is None
    assert e164("020 7946 0018", "GB") == "+442079460018"
    assert e164("+1 (415) 555-2671", "GB") == "+14155552671"
    assert e164("12", "US") is None


def test_a_customer_row_is_cleaned_and_bad_fields_are_cleared_not_the_row() -> None:
    cleaner, [ada, bob], rejects = clean(
        HEADER
        + "c1,ADA@Example.com,020 7946 0018,Ada,Lovelace,SW1A 1AA,United Kingdom,12/03/2021,yes,gold\n"
        + "c2,bob@@example,555,Bob,Stone,,Narnia,someday,maybe,\n"
        + ",nobody@example.com,,,,,,,,\n"
    )
    assert ada.email == "ada@example.com" and ada.phone == "+442079460018" and ada.country == "GB"
    assert ada.signup_at == datetime(2021, 12, 3, tzinfo=UTC) and ada.consent == {"marketing": True}
    assert ada.attributes == {"tier": "gold"}  # an unmapped column is kept as a trait
    assert ada.traits()["address"] == {"postalCode": "SW1A 1AA", "country": "GB"}
    assert (bob.email, bob.phone, bob.signup_at, bob.consent, bob.country) == (None, None, None, {}, None)
    assert cleaner.fields_cleared == {
        "email not valid": 1,
        "phone not valid": 1,
        "signup_date not valid": 1,
        "consent_marketing not valid": 1,
    }
    assert cleaner.accounting.countries_unknown == 1
    assert [r.reasons for r in rejects] == [["customer id missing"]] and rejects[0].line == 4


def test_the_same_person_under_several_records_is_one_customer_with_provenance() -> None:
    _, records, _ = clean(
        HEADER
        + "c1,ada@example.com,,Ada,Lovelace,,GB,2020-01-01,,\n"
        + "c2,ADA@example.com,,A.,Lovelace,,GB,2021-01-01,,\n"  # same email
        + "c3,,020 7946 0018,Ada,Lovelace,,GB,2019-06-01,,\n"
        + "c4,other@example.com,020 7946 0018,Lovelace,Ada,,GB,2022-01-01,,\n"  # name reordered, same phone
        + "c5,,,Ada,Lovelace,SW1A 1AA,GB,,,\n"
        + "c6,,,Ada Lovelacee,,sw1a1aa,GB,,,\n"  # a typo and the same postcode, written differently
        + "c7,,,Charles,Babbage,SW1A 1AA,GB,,,\n"  # same postcode, another name
        + "c8,,020 7946 0018,Charles,Babbage,,GB,,,\n"  # same phone, another name
    )
    resolved = {r.record.customer_id: r for r in resolve(records, threshold=90)}
    assert sorted(resolved) == ["c1", "c3", "c5", "c7", "c8"]  # a name alone links nobody (c1, c3)
    assert resolved["c1"].merged_ids == ["c2"] and resolved["c1"].rules == ["same email"]
    assert resolved["c3"].merged_ids == ["c4"] and resolved["c3"].rules == ["name and phone"]
    assert resolved["c5"].merged_ids == ["c6"] and resolved["c5"].rules == ["name and postcode"]
    assert resolve(records[:2], threshold=90)[0].merged_ids == ["c2"]
    survivor = resolve(records[:2], threshold=90)[0].record
    assert survivor.customer_id == "c1" and survivor.first_name == "Ada"  # the earliest signup's record


def test_a_customer_import_merges_records_and_profiles_and_keeps_provenance() -> None:
    bucket, profiles = MemoryBucket(), MemoryProfiles()
    bucket.objects["imports/orders/online-retail/march.csv"] = FILE.encode()
    importing = Importing(bucket, profiles, Currencies("USD", {"GBP": Decimal(1)}))
    importing.run("imports/orders/online-retail/march.csv", NOW)
    bucket.objects["imports/customers/crm.csv"] = (
        HEADER
        + "7,ada@example.com,,Ada,Lovelace,,GB,2020-01-01,yes,gold\n"
        + "8,ADA@EXAMPLE.COM,,Ada,Lovelace,,France,2021-01-01,,\n"
        + "7,ada@example.com,,Ada,Lovelace,,GB,2020-01-01,yes,gold\n"
        + ",x@example.com,,,,,,,,\n"
    ).encode()

    manifest = Importing(bucket, profiles, Currencies("USD")).run("imports/customers/crm.csv", NOW)

    assert (manifest.kind, manifest.mapping) == ("customers", "customers")
    assert (manifest.rows_read, manifest.loaded, manifest.rejected, manifest.duplicates) == (4, 2, 1, 1)
    assert manifest.reconciles and manifest.records_merged == 1 and manifest.customers_updated == 1
    [merge] = [json.loads(line) for line in bucket.objects[manifest.merges_key].decode().splitlines()]
    assert merge == {"customerId": "7", "mergedIds": ["8"], "rules": ["same email"], "lines": [2, 3]}
    ada = get_profile("8", profiles)  # the merged id leads to the survivor
    assert ada.customer_id == "7" and ada.orders == 2 and "8" in ada.identities  # both records' orders
    assert ada.traits["email"].v == "ada@example.com" and ada.traits["tier"].v == "gold"
    assert ada.consent["marketing"].granted is True and ada.consent["marketing"].source == "import"


def test_a_file_under_a_mapping_that_does_not_exist_gets_a_manifest_that_says_so() -> None:
    bucket, profiles = MemoryBucket(), MemoryProfiles()
    bucket.objects["imports/customers/salesforce/a.csv"] = HEADER.encode()
    manifest = Importing(bucket, profiles, Currencies("USD")).run("imports/customers/salesforce/a.csv", NOW)
    assert manifest.file_errors == ["no mapping named 'salesforce' (put it at mappings/salesforce.json)"]
    assert profiles.writes == 0


def test_a_users_mapping_in_the_bucket_is_validated_and_used() -> None:
    bucket, profiles = MemoryBucket(), MemoryProfiles()
    bucket.objects["mappings/crm.json"] = json.dumps(
        {"name": "crm", "kind": "customers", "columns": {"customer_id": "Id", "email": "E-mail"}, "delimiter": ";"}
    ).encode()
    bucket.objects["imports/customers/crm/a.csv"] = b"Id;E-mail;Shoe size\n42;ann@example.com;38\n"
    manifest = Importing(bucket, profiles, Currencies("USD")).run("imports/customers/crm/a.csv", NOW)
    assert manifest.loaded == 1 and profiles.items["42"].traits["Shoe size"].v == "38"

    bucket.objects["mappings/crm.json"] = b'{"name": "crm", "kind": "customers", "columns": {"shoe": "x"}}'
    bucket.objects["imports/customers/crm/b.csv"] = b"Id\n1\n"
    manifest = Importing(bucket, profiles, Currencies("USD")).run("imports/customers/crm/b.csv", NOW)
    assert "mapping 'crm' is not valid" in manifest.file_errors[0] and "no field shoe" in manifest.file_errors[0]


@pytest.mark.parametrize("threshold", [50, 100])
def test_the_match_threshold_is_a_mapping_setting(threshold: float) -> None:
    mapping = CUSTOMERS.model_copy(update={"match_threshold": threshold})
    assert mapping.match_threshold == threshold


def test_json_lines_customers_keep_their_other_keys() -> None:
    data = '{"customer_id": "c1", "email": "a@example.com", "plan": "pro"}\n{"customer_id": "c2", "plan": 3}\n'
    _, [one, two], _ = clean(data)
    assert one.attributes == {"plan": "pro"} and two.attributes == {"plan": "3"} and two.email is None

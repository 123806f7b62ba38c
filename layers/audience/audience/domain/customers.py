"""Customer exports (CRM): cleaned rows, and the same person under several records resolved
to one customer with the provenance of what was merged.

Cleaning: emails normalised (email-validator, then lower-cased: matching must not depend on
case), phone numbers to E.164 (phonenumbers, the row's country or the mapping's region for
numbers without a country code), countries to ISO 3166 (pycountry), signup dates to UTC,
consent flags to booleans. A field that fails its check is cleared and counted; the row, and
everything else in it, still loads. A row without a customer id is rejected.

Resolution: records are linked when they share a customer id or an email, or when their names
are alike (rapidfuzz, ``match_threshold``) and they share a phone number or a postcode. Linked
records become one customer, kept under the id of the earliest signup (then the smallest id).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any, TypeVar

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from rapidfuzz import fuzz, process, utils

from audience.domain.imports import CUSTOMER_FIELDS, ColumnMapping, FileCleaner, Reject, iso_country, source_id

CONSENT_PURPOSES = ("analytics", "personalization", "marketing")
V = TypeVar("V")
YES = frozenset({"1", "true", "t", "yes", "y", "x", "opt-in", "opted in", "optin", "granted", "on"})
NO = frozenset({"0", "false", "f", "no", "n", "opt-out", "opted out", "optout", "denied", "off"})


@dataclass(frozen=True)
class CustomerRecord:
    line: int
    customer_id: str
    email: str | None = None
    phone: str | None = None  # E.164
    first_name: str | None = None
    last_name: str | None = None
    name: str | None = None
    address: str | None = None
    city: str | None = None
    postcode: str | None = None
    country: str | None = None  # ISO 3166 alpha-2
    signup_at: datetime | None = None
    consent: dict[str, bool] = field(default_factory=dict)
    attributes: dict[str, str] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        return self.name or " ".join(p for p in (self.first_name, self.last_name) if p)

    def traits(self) -> dict[str, Any]:
        """Segment Spec identify traits (``createdAt`` is the signup)."""
        found: dict[str, Any] = {
            **self.attributes,
            "email": self.email,
            "phone": self.phone,
            "firstName": self.first_name,
            "lastName": self.last_name,
            "name": self.name,
            "createdAt": self.signup_at.isoformat() if self.signup_at else None,
            "consent": self.consent or None,
        }
        place = {"street": self.address, "city": self.city, "postalCode": self.postcode, "country": self.country}
        if any(place.values()):
            found["address"] = {k: v for k, v in place.items() if v}
        return {k: v for k, v in found.items() if v is not None}


class CustomerFileCleaner(FileCleaner[CustomerRecord]):
    """One row per customer record; invalid optional fields are cleared and counted."""

    def __init__(self, mapping: ColumnMapping, on_reject: Callable[[Reject], None]) -> None:
        super().__init__(mapping, on_reject)
        self.fields_cleared: Counter[str] = Counter()
        self._index: dict[str, int] = {}
        self._extra: list[tuple[int, str]] = []

    def _start(self, columns: list[str], index: dict[str, int]) -> None:
        self._index = index
        mapped = set(index.values())
        keep = self.mapping.keep_extra_columns
        self._extra = [(i, c) for i, c in enumerate(columns) if keep and i not in mapped and c]

    def _clean(self, line: int, columns: list[str], values: list[str], utf8: bool) -> CustomerRecord | None:
        raw = {f: values[i].strip() for f, i in self._index.items() if f in CUSTOMER_FIELDS}
        customer_id = source_id(raw.get("customer_id", ""))
        reasons = [] if utf8 else ["not valid UTF-8"]
        if not customer_id:
            reasons.append("customer id missing")
        if reasons:
            self._reject(line, columns, values, reasons)
            return None
        country = iso_country(raw.get("country", ""))
        if raw.get("country") and country is None:
            self.accounting.countries_unknown += 1
        return CustomerRecord(
            line=line,
            customer_id=customer_id,
            email=self._checked("email", raw.get("email"), normalise_email),
            phone=self._checked("phone", raw.get("phone"), lambda p: e164(p, country or self.mapping.phone_region)),
            first_name=raw.get("first_name") or None,
            last_name=raw.get("last_name") or None,
            name=raw.get("name") or None,
            address=raw.get("address") or None,
            city=raw.get("city") or None,
            postcode=raw.get("postcode") or None,
            country=country,
            signup_at=self._checked("signup_date", raw.get("signup_date"), self._date),
            consent=self._consent(raw),
            attributes={name: values[i].strip() for i, name in self._extra if values[i].strip()},
        )

    def _checked(self, name: str, text: str | None, parse: Callable[[str], V | None]) -> V | None:
        if not text:
            return None
        value = parse(text)
        if value is None:
            self.fields_cleared[f"{name} not valid"] += 1
        return value

    def _consent(self, raw: dict[str, str]) -> dict[str, bool]:
        consent = {}
        for purpose in CONSENT_PURPOSES:
            flag = self._checked(f"consent_{purpose}", raw.get(f"consent_{purpose}"), _flag)
            if flag is not None:
                consent[purpose] = flag
        return consent


def normalise_email(text: str) -> str | None:
    try:
        return validate_email(text, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return None


@lru_cache(maxsize=65536)
def e164(text: str, region: str) -> str | None:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _flag(text: str) -> bool | None:
    lowered = text.lower()
    return True if lowered in YES else False if lowered in NO else None


@dataclass
class ResolvedCustomer:
    """One customer, and the records (source ids) resolved into it."""

    record: CustomerRecord  # the surviving record, its gaps filled from the others
    merged_ids: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)  # why: "same id", "same email", "name and phone", ...
    lines: list[int] = field(default_factory=list)


def resolve(records: Iterable[CustomerRecord], threshold: float) -> list[ResolvedCustomer]:
    """Group records of the same person (see the module's rules); deterministic."""
    items = list(records)
    parent = list(range(len(items)))
    why: dict[int, set[str]] = defaultdict(set)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def link(a: int, b: int, rule: str) -> None:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
        why[a].add(rule)
        why[b].add(rule)

    for rule, key in (("same id", _id_key), ("same email", _email_key)):
        for block in _blocks(items, key).values():
            for other in block[1:]:
                link(block[0], other, rule)
    for rule, key in (("name and phone", _phone_key), ("name and postcode", _postcode_key)):
        for block in _blocks(items, key).values():
            if len(block) > 1:
                for a, b in _alike_names(items, block, threshold):
                    link(a, b, rule)

    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(len(items)):
        groups[root(i)].append(i)
    return [_survivor(items, members, why) for members in groups.values()]


def _blocks(items: list[CustomerRecord], key: Callable[[CustomerRecord], str | None]) -> dict[str, list[int]]:
    blocks: dict[str, list[int]] = defaultdict(list)
    for i, item in enumerate(items):
        value = key(item)
        if value:
            blocks[value].append(i)
    return blocks


def _alike_names(items: list[CustomerRecord], block: list[int], threshold: float) -> Iterator[tuple[int, int]]:
    """Pairs in the block whose names are alike (word order and case aside)."""
    names = [items[i].full_name for i in block]
    scores = process.cdist(
        names, names, scorer=fuzz.token_sort_ratio, processor=utils.default_process, score_cutoff=threshold
    )
    for a in range(len(block)):
        for b in range(a + 1, len(block)):
            if names[a] and names[b] and scores[a][b] >= threshold:
                yield block[a], block[b]


def _id_key(record: CustomerRecord) -> str:
    return record.customer_id


def _email_key(record: CustomerRecord) -> str | None:
    return record.email


def _phone_key(record: CustomerRecord) -> str | None:
    return record.phone


def _postcode_key(record: CustomerRecord) -> str | None:
    return "".join(record.postcode.split()).upper() if record.postcode else None


def _survivor(items: list[CustomerRecord], members: list[int], why: dict[int, set[str]]) -> ResolvedCustomer:
    records = sorted((items[i] for i in members), key=lambda r: (r.signup_at is None, r.signup_at, r.customer_id))
    first = records[0]
    filled = {name: getattr(first, name) for name in CustomerRecord.__dataclass_fields__}
    for other in records[1:]:
        for name, value in filled.items():
            if value in (None, "", {}):
                filled[name] = getattr(other, name)
        filled["consent"] = {**other.consent, **filled["consent"]}
        filled["attributes"] = {**other.attributes, **filled["attributes"]}
    merged = sorted({r.customer_id for r in records} - {first.customer_id})
    rules = sorted({rule for i in members for rule in why.get(i, ())})
    return ResolvedCustomer(CustomerRecord(**filled), merged, rules, sorted(r.line for r in records))

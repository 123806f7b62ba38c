"""How one profile is laid out as DynamoDB items in its customer's partition (no I/O here).

DynamoDB bills a write by the size of the whole item, so what grows with a customer's history
is kept out of the item the stream rewrites on every batch:

- ``sk = PROFILE``, the hot item: counters, current segments, tier and predictions, traits,
  consent, the stream's watermarks and recent message fingerprints, the outbox; and
  ``pending``: the latest changes to what grows (below ``FLUSH_BYTES``), kept here until they
  are worth a page of their own. Its conditional write is the commit point of every change.
- ``sk = PAGE#<n>``, pages of what grows with the history: the order ledger, the day buckets,
  products touched, experiment exposures, groups and segment changes, each entry an attribute
  ``<tag><key>``. Pages are written once and never changed: a write whose changes outgrow
  ``pending`` puts them as the next page(s) (never over an existing one), and only then the hot
  item, which counts the pages it commits (``pages``; a page past the count is from a write
  that never committed and is not read; its number is skipped by the next page write).
  Reading pages in order, an entry's latest copy wins; when the pages hold more than twice what
  is live, the next page write rewrites the live entries as new pages and the older ones are
  deleted (``base``).

So every write is the hot item plus, now and then, one new page of up to a few KB: nothing that
grows with the history is rewritten, and nothing is counted twice without a transaction. A
profile read in the old one-item shape is assembled from its own attributes; its next write
moves those into pages.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer

from audience.domain.folding import bound
from audience.domain.privacy import HASHED
from audience.domain.profile import Profile

SERIALIZER = TypeSerializer()
DESERIALIZER = TypeDeserializer()
DYNAMO_SMALLEST = Decimal("1e-130")
PROFILE_SK = "PROFILE"
PAGE = "PAGE#"
FLUSH_BYTES = 512  # changes up to this size wait in the hot item's ``pending``
PAGE_BYTES = 32 * 1024  # a page holds up to this much (a history import writes a few large pages)
COMPACT_MIN_BYTES = 8 * 1024  # below, stale copies are not worth a rewrite
BOOKKEEPING = ("pending", "pages", "base", "skip")  # hot item attributes that are not the profile's

# kept on the hot item only: segment kind -> (membership index, its partition key attribute),
# every index sorted by customerId
INDEXES = {"learned": ("bySegment", "gsi1pk"), "rfm": ("byRfm", "gsi2pk"), "tier": ("byTier", "gsi3pk")}
# contact trait -> (its index, the attribute holding the trait's keyed hash), keys only, sorted by
# customerId: set only while the trait is stored hashed (``domain.privacy.pseudonymised``), never in
# clear. An item whose contact details did not change writes nothing to these indexes.
CONTACT_INDEXES = {"email": ("byEmail", "emailKey"), "phone": ("byPhone", "phoneKey")}
INDEX_ATTRIBUTES = tuple(attribute for _, attribute in [*INDEXES.values(), *CONTACT_INDEXES.values()])


def _number(text: str) -> Decimal:
    """A JSON number as DynamoDB stores it: one smaller in magnitude than 1e-130 is zero (it would
    be refused with "Number underflow")."""
    number = Decimal(text)
    return number if abs(number) >= DYNAMO_SMALLEST else Decimal(0)


def plain(value: Any) -> Any:
    """A JSON-able value as DynamoDB stores it (numbers exact)."""
    return json.loads(json.dumps(value), parse_float=_number)


@dataclass(frozen=True)
class Part:
    """A growing field of the profile (its alias in the stored document), kept in pages."""

    alias: str
    tag: str  # prefix of its entries' attribute names in a page
    encode: Callable[[Any], Any] = lambda value: value  # the document's form -> the stored form (smaller)
    decode: Callable[[Any], Any] = lambda value: value


def _epoch(moment: str) -> int:
    return int(datetime.fromisoformat(moment).timestamp())


def _iso(epoch: Any) -> str:
    return datetime.fromtimestamp(int(epoch), UTC).isoformat().replace("+00:00", "Z")


def _touch_encoded(touch: list[Any]) -> list[Any]:
    counts, times = touch[:3], [_epoch(t) for t in touch[3:6] if t is not None]
    return [*counts, *times, _number(f"{float(touch[6]):.6f}")] if len(times) == 3 else [*counts, times[0]]


def _touch_decoded(stored: list[Any]) -> list[Any]:
    counts, times = stored[:3], [_iso(t) for t in stored[3:6]]
    return [*counts, *times, float(stored[6])] if len(stored) > 4 else [*counts, *times]


def _history_key(change: dict[str, Any]) -> str:
    digest = hashlib.blake2b(json.dumps(change, sort_keys=True, default=str).encode(), digest_size=3).hexdigest()
    return f"{change['at']}#{digest}"


PARTS = (
    Part("ledger", "l:"),  # order or refund fingerprint -> (amount, day)
    Part("daily", "d:"),  # day -> order totals
    # product -> (purchases, views, adds, last[, bought, first bought, repeat]): times as epoch
    # seconds, 6 bytes instead of 20; the purchase fields only for a product bought
    Part("products", "p:", encode=lambda t: _touch_encoded(t), decode=lambda t: _touch_decoded(t)),
    Part("exposures", "x:"),
    Part("groups", "g:"),
    Part("segmentHistory", "h:"),  # the list, keyed by time and content
)
_BY_TAG = {part.tag: part for part in PARTS}


def part_of(attribute: str) -> Part | None:
    """The part an attribute of a page (or of ``pending``) holds an entry of (None: not an entry)."""
    return _BY_TAG.get(attribute[:2])


def page_key(number: int) -> str:
    return f"{PAGE}{number:08d}"


def page_number(sk: str) -> int:
    return int(sk.removeprefix(PAGE))


@dataclass
class Stored:
    """What a read found: the committed pages' entries (attribute -> latest value), their
    bytes, and the page items not (or no longer) part of the profile."""

    entries: dict[str, Any] = field(default_factory=dict)  # "<tag><key>" -> stored value
    pages: int = 0  # pages committed: PAGE#<base>..PAGE#<pages> but those in ``skip``
    base: int = 1
    skip: list[int] = field(default_factory=list)  # numbers taken by pages of writes that never committed
    page_bytes: int = 0  # what the committed pages hold, stale copies included
    obsolete: list[str] = field(default_factory=list)  # pages no longer read (before ``base``, past ``pages``)

    def committed(self) -> list[int]:
        return [n for n in range(self.base, self.pages + 1) if n not in self.skip]

    def keys(self) -> list[str]:
        """Every page this customer's partition may hold: committed, skipped or obsolete."""
        return sorted({*(page_key(n) for n in range(self.base, self.pages + 1)), *self.obsolete,
                       *(page_key(n) for n in self.skip)})  # fmt: skip

    @property
    def live_bytes(self) -> int:
        return sum(entry_size(a, v) for a, v in self.entries.items())

    def stale(self) -> bool:
        """Whether the pages hold more than twice what is live (time to rewrite them)."""
        return self.page_bytes > max(2 * self.live_bytes, COMPACT_MIN_BYTES)


def split(profile: Profile) -> tuple[dict[str, Any], dict[str, Any]]:
    """The hot document (aliases, as stored) and the growing parts' entries (attribute -> stored value)."""
    document = plain(profile.model_dump(mode="json", by_alias=True, exclude_defaults=True))
    document["version"] = profile.version
    if document.get("seen"):  # 6 bytes a fingerprint, not 14
        document["seen"] = bytes.fromhex("".join(document["seen"]))
    return document, _entries(document)


def _entries(document: dict[str, Any]) -> dict[str, Any]:
    """Each part's entries taken out of ``document``, as page attributes in their stored form."""
    found: dict[str, Any] = {}
    for part in PARTS:
        values = document.pop(part.alias, None) or {}
        if part.alias == "segmentHistory":
            values = {_history_key(c): c for c in values}
        found |= {part.tag + key: part.encode(value) for key, value in values.items()}
    return found


def join(document: dict[str, Any], entries: dict[str, Any]) -> Profile:
    """The profile from its hot document and its parts' entries (bounded as the fold bounds them)."""
    whole: dict[str, Any] = {part.alias: {} for part in PARTS}
    for attribute, value in entries.items():
        part = part_of(attribute)
        if part is not None:
            whole[part.alias][attribute[2:]] = part.decode(value)
    whole["segmentHistory"] = [whole["segmentHistory"][k] for k in sorted(whole["segmentHistory"])]
    profile = Profile.model_validate({**document, **whole})
    bound(profile)
    return profile


def hot_document(item: dict[str, Any]) -> dict[str, Any]:
    document = {
        name: DESERIALIZER.deserialize(value)
        for name, value in item.items()
        if name not in {"pk", "sk", *BOOKKEEPING, *INDEX_ATTRIBUTES}
    }
    if isinstance(seen := document.get("seen"), Binary):
        packed = seen.value.hex()  # type: ignore[attr-defined]
        document["seen"] = [packed[i : i + 12] for i in range(0, len(packed), 12)]
    return document


def assemble(items: Iterable[dict[str, Any]]) -> tuple[Profile, Stored] | None:
    """A customer's profile from the items of its partition (any order); None without a hot item."""
    hot, pages = None, []
    for item in items:
        sk = item["sk"]["S"]
        if sk == PROFILE_SK:
            hot = item
        elif sk.startswith(PAGE):
            pages.append(item)
    if hot is None:
        return None
    document = hot_document(hot)
    stored = bookkeeping(hot)
    if any(part.alias in document for part in PARTS) or document.get("mergedInto"):
        # the one-item shape of earlier releases (any pages are from its unfinished move), or a redirect
        stored.obsolete = [p["sk"]["S"] for p in pages]
        return join(document, _entries(document)), stored
    committed = set(stored.committed())
    for page in sorted(pages, key=lambda p: p["sk"]["S"]):
        sk = page["sk"]["S"]
        if page_number(sk) not in committed:
            stored.obsolete.append(sk)
        else:
            for name, value in page.items():
                if part_of(name) is not None:
                    entry = DESERIALIZER.deserialize(value)
                    stored.entries[name] = entry
                    stored.page_bytes += entry_size(name, entry)
    pending = DESERIALIZER.deserialize(hot["pending"]) if "pending" in hot else {}
    return join(document, {**stored.entries, **pending}), stored


def bookkeeping(hot: dict[str, Any]) -> Stored:
    """Which pages the hot item commits (its ``pages``, ``base`` and ``skip``)."""
    return Stored(pages=int(hot["pages"]["N"]) if "pages" in hot else 0,
                  base=int(hot["base"]["N"]) if "base" in hot else 1,
                  skip=sorted(int(n["N"]) for n in hot["skip"]["L"]) if "skip" in hot else [])  # fmt: skip


def changes(entries: dict[str, Any], stored: Stored) -> dict[str, Any]:
    """The entries the committed pages do not hold as ``entries`` has them (what goes to
    ``pending`` or the next page)."""
    return {attribute: value for attribute, value in entries.items() if stored.entries.get(attribute) != value}


def paged(entries: dict[str, Any], limit: int = PAGE_BYTES) -> list[dict[str, Any]]:
    """``entries`` cut into pages of at most ``limit`` bytes each."""
    pages: list[dict[str, Any]] = [{}]
    used = 0
    for attribute, value in entries.items():
        grows = entry_size(attribute, value)
        if pages[-1] and used + grows > limit:
            pages.append({})
            used = 0
        pages[-1][attribute] = value
        used += grows
    return pages


def entry_size(attribute: str, value: Any) -> int:
    return len(attribute) + size(value)


def size(value: Any) -> int:
    """Roughly the bytes DynamoDB counts for ``value`` (names and values as UTF-8)."""
    return len(json.dumps(value, default=str).encode())


def serialize(document: dict[str, Any]) -> dict[str, Any]:
    return {name: SERIALIZER.serialize(value) for name, value in document.items()}


# ---------------------------------------------------------------- the items a write sends


def customer_pk(customer_id: str) -> dict[str, Any]:
    return {"S": f"CUSTOMER#{customer_id}"}


def profile_key(customer_id: str) -> dict[str, Any]:
    return {"pk": customer_pk(customer_id), "sk": {"S": PROFILE_SK}}


# What placing a customer changes (``Profile`` field names): the retrain's placement writes these
# attributes of the hot item, the membership index keys, the version and the page bookkeeping
# (the segment change goes to ``pending`` or a page), and nothing else.
PLACEMENT_FIELDS = ("segments", "tier", "predictions", "segment_history", "outbox")


def to_item(profile: Profile, bookkeeping: dict[str, Any] | None = None) -> dict[str, Any]:
    """The hot item of ``profile`` (what grows is in ``bookkeeping["pending"]`` or in pages; see
    ``profile_items``)."""
    document, _ = split(profile)
    document.update(index_keys(profile))
    document.update(contact_keys(profile))
    document.update({k: v for k, v in (bookkeeping or {}).items() if v})
    return {**serialize(document), **profile_key(profile.customer_id)}


def to_items(profile: Profile) -> list[dict[str, Any]]:
    """Every item of ``profile`` as a first write would leave them: its hot item and its pages."""
    _, entries = split(profile)
    if size(entries) <= FLUSH_BYTES:
        return [to_item(profile, {"pending": entries})]
    pages = paged(entries)
    page_items = [{**serialize(content), "pk": customer_pk(profile.customer_id), "sk": {"S": page_key(n)}}
                  for n, content in enumerate(pages, start=1)]  # fmt: skip
    return [to_item(profile, {"pages": len(pages)}), *page_items]


def index_keys(profile: Profile) -> dict[str, str]:
    """The membership index attributes the profile carries (none for a customer who refused personalization)."""
    if not profile.personalization_allowed:
        return {}
    return {INDEXES[segment.split(":", 1)[0]][1]: segment for segment in profile.segment_ids()}


def contact_keys(profile: Profile) -> dict[str, str]:
    """The contact index attributes: each contact trait's keyed hash, as the trait stores it."""
    found = {}
    for trait, (_, attribute) in CONTACT_INDEXES.items():
        stamped = profile.traits.get(trait)
        if stamped is not None and isinstance(stamped.v, str) and stamped.v.startswith(HASHED):
            found[attribute] = stamped.v
    return found


def placement_update(profile: Profile, bookkeeping: dict[str, Any] | None = None) -> dict[str, Any]:
    """The conditional ``UpdateItem`` that stores ``profile``'s placement (``PLACEMENT_FIELDS``, the
    membership index keys and the page ``bookkeeping``, each set as ``to_item`` would store it, or
    removed where ``to_item`` would leave it out), with its version bumped, only if the stored
    version is still ``profile.version``: what a retrain's move sends instead of the whole item."""
    document, _ = split(profile)
    document.update(index_keys(profile))
    document.update({k: v for k, v in (bookkeeping or {}).items() if v})
    grows = {part.alias for part in PARTS}
    aliases = [a for a in (Profile.model_fields[f].alias or f for f in PLACEMENT_FIELDS) if a not in grows]
    names = [*aliases, *(attribute for _, attribute in INDEXES.values()), *BOOKKEEPING]
    placeholders = {f"#{name}": name for name in [*names, "version"]}
    update = "SET " + ", ".join(["#version = #version + :one", *(f"#{n} = :{n}" for n in names if n in document)])
    if removed := [f"#{n}" for n in names if n not in document]:
        update += " REMOVE " + ", ".join(removed)
    values = {f":{name}": SERIALIZER.serialize(document[name]) for name in names if name in document}
    return {
        "UpdateExpression": update,
        "ConditionExpression": "#version = :expected",
        "ExpressionAttributeNames": placeholders,
        "ExpressionAttributeValues": {**values, ":one": {"N": "1"}, ":expected": {"N": str(profile.version)}},
    }


def from_item(item: dict[str, Any]) -> Profile:
    """A profile from its hot item alone (or from an item of the one-item shape)."""
    assembled = assemble([item])
    assert assembled is not None, "not a profile item"
    return assembled[0]


def conditional_put(profile: Profile, bookkeeping: dict[str, Any] | None = None) -> dict[str, Any]:
    """Put the hot item of ``profile`` with its version bumped, only if the stored version is
    the one it was read at."""
    stored = profile.model_copy(update={"version": profile.version + 1})
    if profile.version == 0:  # never stored: two writers creating the same item must not both win
        return {"Item": to_item(stored, bookkeeping), "ConditionExpression": "attribute_not_exists(pk)"}
    return {
        "Item": to_item(stored, bookkeeping),
        "ConditionExpression": "version = :expected",
        "ExpressionAttributeValues": {":expected": {"N": str(profile.version)}},
    }

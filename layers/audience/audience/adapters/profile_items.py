"""How one profile is laid out as DynamoDB items in its customer's partition (no I/O here).

DynamoDB bills a write by the size of the whole item, so what grows with a customer's history
is kept out of the item the stream rewrites on every batch:

- ``sk = PROFILE``: the hot item: counters, windows (day buckets of the last 90 days), current
  segments, tier and predictions, traits, consent, the stream's watermarks and recent message
  fingerprints, the outbox. Written on every change (its version is the commit point).
- ``sk = <PART>#<yyyy-mm>``: month pages of what grows: the order ledger (``LEDGER``, by the
  order's day), products touched (``PRODUCTS``, by the last touch), experiment exposures
  (``EXPOSURES``, by first exposure), groups (``GROUPS``, by last seen) and segment changes
  (``HISTORY``). An entry lives in the page of its own month; when it moves to a later month,
  the later page wins on read, so a write touches only the pages whose entries changed, by
  ``UpdateItem`` of those entries (``e:<key>`` attributes).

Exactly once without a transaction: a write puts the hot item (conditional on its version)
with ``pending``: the page entries it changed that the pages do not hold yet; then the pages
are updated, each only if it was last written by an older commit (``at``). A page update lost
to a crash or a throttle is not lost: the next read overlays ``pending`` and the next write
sends it again. A profile read in the old one-item shape is assembled from its own attributes
and its next write moves those into pages.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer

from audience.domain.profile import Profile, bound

SERIALIZER = TypeSerializer()
DESERIALIZER = TypeDeserializer()
DYNAMO_SMALLEST = Decimal("1e-130")
PROFILE_SK = "PROFILE"
MAX_PAGE_BYTES = 64 * 1024

# index -> its partition key attribute (see dynamodb.py); kept on the hot item only
INDEX_ATTRIBUTES = ("gsi1pk", "gsi2pk", "gsi3pk")


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
    """A growing field of the profile (its alias in the stored document), kept in weekly pages."""

    alias: str
    page: str  # sort key prefix
    when: Callable[[str, Any], str]  # the ISO date (or time) an entry belongs to, from its key and stored form
    tag: str = "e:"  # prefix of its entries' attribute names in a page
    encode: Callable[[Any], Any] = lambda value: value  # the document's form -> the stored form (smaller)
    decode: Callable[[Any], Any] = lambda value: value


def _epoch(moment: str) -> int:
    return int(datetime.fromisoformat(moment).timestamp())


def _iso(epoch: Any) -> str:
    return datetime.fromtimestamp(int(epoch), UTC).isoformat().replace("+00:00", "Z")


def _day(epoch: Any) -> str:
    return _iso(epoch)[:10]


def _history_key(change: dict[str, Any]) -> str:
    digest = hashlib.blake2b(json.dumps(change, sort_keys=True, default=str).encode(), digest_size=3).hexdigest()
    return f"{change['at']}#{digest}"


PARTS = (
    Part("ledger", "LEDGER", lambda _, entry: str(entry[1])),  # (amount, day)
    Part("daily", "LEDGER", lambda day, _: day, tag="d:"),  # day -> totals: changes with the ledger, kept beside it
    # (purchases, views, adds, last): the time as epoch seconds, 6 bytes instead of 20
    Part(
        "products",
        "PRODUCTS",
        lambda _, touch: _day(touch[3]),
        encode=lambda t: [*t[:3], _epoch(t[3])],
        decode=lambda t: [*t[:3], _iso(t[3])],
    ),
    Part("exposures", "EXPOSURES", lambda _, exposure: str(exposure[2])),  # (variant, segment, at, ...)
    Part("groups", "GROUPS", lambda _, stamped: str(stamped[1])),  # (traits, at)
    Part("segmentHistory", "HISTORY", lambda _, change: str(change["at"])),
)
_BY_ATTRIBUTE = {(part.page, part.tag): part for part in PARTS}
_PAGES = {part.page for part in PARTS}

# key -> (page sort key, stored value): where each entry sits physically
Located = dict[str, tuple[str, Any]]


@dataclass
class Stored:
    """What a read found in the pages (before ``pending`` is overlaid): the base a write's
    changes are computed from."""

    entries: dict[str, Located] = field(default_factory=lambda: {part.alias: {} for part in PARTS})
    page_at: dict[str, int] = field(default_factory=dict)  # page sort key -> the commit that last wrote it


def page_key(part: Part, key: str, value: Any) -> str:
    """The page of an entry: its part's, for the week (from Monday) of the entry's own time."""
    day = date.fromisoformat(part.when(key, value)[:10])
    return f"{part.page}#{day - timedelta(days=day.weekday())}"


def is_page(sk: str) -> bool:
    return sk.split("#", 1)[0] in _PAGES


def part_of(sk: str, attribute: str) -> Part | None:
    """The part an attribute of page ``sk`` holds an entry of (None: not an entry)."""
    return _BY_ATTRIBUTE.get((sk.split("#", 1)[0], attribute[:2]))


def split(profile: Profile) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The hot document (aliases, as stored) and each part's entries (key -> stored value)."""
    document = plain(profile.model_dump(mode="json", by_alias=True, exclude_defaults=True))
    document["version"] = profile.version
    if document.get("seen"):  # 6 bytes a fingerprint, not 14
        document["seen"] = bytes.fromhex("".join(document["seen"]))
    return document, _encoded(document)


def _encoded(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each part's entries taken out of ``document``, in their stored form."""
    entries = {part.alias: document.pop(part.alias, None) or {} for part in PARTS}
    entries["segmentHistory"] = {_history_key(c): c for c in entries["segmentHistory"] or []}
    return {part.alias: {k: part.encode(v) for k, v in entries[part.alias].items()} for part in PARTS}


def join(document: dict[str, Any], entries: dict[str, dict[str, Any]]) -> Profile:
    """The profile from its hot document and its parts' entries (bounded as the fold bounds them)."""
    whole = dict(document)
    for part in PARTS:
        found = {k: part.decode(v) for k, v in (entries.get(part.alias) or {}).items()}
        whole[part.alias] = [found[k] for k in sorted(found)] if part.alias == "segmentHistory" else found
    profile = Profile.model_validate(whole)
    bound(profile)
    return profile


def hot_document(item: dict[str, Any]) -> dict[str, Any]:
    document = {
        name: DESERIALIZER.deserialize(value)
        for name, value in item.items()
        if name not in {"pk", "sk", "pending", *INDEX_ATTRIBUTES}
    }
    if isinstance(seen := document.get("seen"), Binary):
        packed = seen.value.hex()  # type: ignore[attr-defined]
        document["seen"] = [packed[i : i + 12] for i in range(0, len(packed), 12)]
    return document


def assemble(items: Iterable[dict[str, Any]]) -> tuple[Profile, Stored] | None:
    """A customer's profile from the items of its partition (any order); None without a hot item.
    Pages are read oldest month first, so an entry's latest page wins; the hot item's
    ``pending`` (what its commit changed that a page may not hold yet) is laid over them."""
    hot, pages = None, []
    for item in items:
        if item["sk"]["S"] == PROFILE_SK:
            hot = item
        elif is_page(item["sk"]["S"]):
            pages.append(item)
    if hot is None:
        return None
    document = hot_document(hot)
    stored = Stored()
    if any(part.alias in document for part in PARTS) or document.get("mergedInto"):
        # the one-item shape of earlier releases (its pages, if any, are an unfinished move), or a redirect
        return join(document, _encoded(document)), stored
    for page in sorted(pages, key=lambda p: p["sk"]["S"]):
        sk = page["sk"]["S"]
        stored.page_at[sk] = int(page["at"]["N"]) if "at" in page else 0
        for name, value in page.items():
            if (part := part_of(sk, name)) is not None:
                stored.entries[part.alias][name[2:]] = (sk, DESERIALIZER.deserialize(value))
    entries = {alias: {k: v for k, (_, v) in located.items()} for alias, located in stored.entries.items()}
    pending = DESERIALIZER.deserialize(hot["pending"]) if "pending" in hot else {}
    for sk, changed in pending.items():
        for name, value in changed.items():
            if (part := part_of(sk, name)) is None:
                continue
            key = name[2:]
            if value is not None:
                entries[part.alias][key] = value
            elif stored.entries[part.alias].get(key, ("",))[0] == sk:
                entries[part.alias].pop(key, None)
    return join(document, entries), stored


def changes(entries: dict[str, dict[str, Any]], stored: Stored) -> dict[str, dict[str, Any]]:
    """Page sort key -> entry attribute (``<tag><key>``) -> new value (None: remove) for every
    entry the pages do not hold as ``entries`` has it. An entry that moves to an earlier week is
    removed from the later page (which would otherwise win on read)."""
    found: dict[str, dict[str, Any]] = defaultdict(dict)
    for part in PARTS:
        located = stored.entries.get(part.alias, {})
        for key, value in entries.get(part.alias, {}).items():
            sk = page_key(part, key, value)
            was = located.get(key)
            if was == (sk, value):
                continue
            found[sk][part.tag + key] = value
            if was is not None and was[0] > sk:
                found[was[0]][part.tag + key] = None
    return dict(found)


def page_entries(stored: Stored, sk: str) -> dict[str, Any]:
    """The entries page ``sk`` holds, as attribute name (``<tag><key>``) -> value."""
    return {part.tag + key: value for part in PARTS for key, (page, value) in stored.entries[part.alias].items()
            if page == sk}  # fmt: skip


def applied(stored: Stored, written: dict[str, dict[str, Any]], version: int) -> Stored:
    """``stored`` after the pages took ``written`` at commit ``version``."""
    after = Stored({alias: dict(located) for alias, located in stored.entries.items()}, dict(stored.page_at))
    for sk, changed in written.items():
        after.page_at[sk] = version
        for name, value in changed.items():
            part = part_of(sk, name)
            assert part is not None
            if value is None:
                after.entries[part.alias].pop(name[2:], None)
            else:
                after.entries[part.alias][name[2:]] = (sk, value)
    return after


def size(value: Any) -> int:
    """Roughly the bytes DynamoDB counts for ``value`` (names and values as UTF-8)."""
    return len(json.dumps(value, default=str).encode())


def serialize(document: dict[str, Any]) -> dict[str, Any]:
    return {name: SERIALIZER.serialize(value) for name, value in document.items()}

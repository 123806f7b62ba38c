"""Profiles in the single DynamoDB table.

Keys: ``pk = CUSTOMER#<id>``, ``sk = PROFILE`` for a customer's hot item, or for a retired id
the redirect to its customer (``mergedInto``); the customer's pages beside it
(``profile_items`` says what goes where). Segment membership: a profile carries the id of
its learned segment in ``gsi1pk``, its RFM cell in ``gsi2pk`` and its tier in ``gsi3pk``, each
the partition key of a keys-only index (``bySegment``, ``byRfm``, ``byTier``) sorted by
``customerId``; the keys are set only for customers who allow personalization, so the indexes
list exactly the members an activation may use.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from botocore.exceptions import ClientError

from audience.adapters.profile_items import (
    CONTACT_INDEXES,
    FLUSH_BYTES,
    INDEXES,
    Stored,
    assemble,
    bookkeeping,
    changes,
    conditional_put,
    customer_pk,
    page_key,
    page_number,
    paged,
    placement_update,
    profile_key,
    serialize,
    size,
    split,
)
from audience.adapters.table import StoreStats, Table
from audience.domain.errors import ConcurrentUpdate, TransientError
from audience.domain.profile import Profile

logger = logging.getLogger(__name__)

MAX_PAGE_PROBES = 20


class DynamoProfileRepository:
    """Profiles as a hot item and month pages in the customer's partition (``profile_items``).
    A profile is read with one ``Query`` of its partition; a write sends the hot item and
    updates of the page entries that changed, computed from what the last read found."""

    def __init__(self, table_name: str, stats: StoreStats | None = None) -> None:
        self.table = Table(table_name, stats)
        self._read: dict[str, tuple[int, Stored]] = {}  # customer id -> (version, pages) as last read

    def get(self, customer_id: str) -> Profile | None:
        return self._load(customer_id)

    def get_many(self, customer_ids: Iterable[str]) -> dict[str, Profile]:
        """The profiles of ``customer_ids`` (and redirects), two batched reads a hundred: the hot
        items, then the pages they commit."""
        hot = self.table.batch_get([profile_key(c) for c in dict.fromkeys(customer_ids)])
        wanted = [{"pk": item["pk"], "sk": {"S": page_key(n)}} for item in hot for n in bookkeeping(item).committed()]
        by_partition: dict[str, list[dict[str, Any]]] = {item["pk"]["S"]: [item] for item in hot}
        for page in self.table.batch_get(wanted):
            by_partition[page["pk"]["S"]].append(page)
        found = (self._remember(assemble(items)) for items in by_partition.values())
        return {p.customer_id: p for p in found if p is not None}

    @property
    def stats(self) -> StoreStats:
        return self.table.stats

    def _load(self, customer_id: str) -> Profile | None:
        return self._remember(assemble(self.table.partition(customer_pk(customer_id), ConsistentRead=True)))

    def _remember(self, assembled: tuple[Profile, Stored] | None) -> Profile | None:
        if assembled is None:
            return None
        profile, stored = assembled
        if len(self._read) > 100_000:  # a long-lived container: forget; a write then reads its pages again
            self._read.clear()
        self._read[profile.customer_id] = (profile.version, stored)
        return profile

    def _stored(self, profile: Profile) -> Stored:
        """The pages as the read that ``profile`` came from found them (read again if unknown)."""
        if profile.version == 0:
            return Stored()
        known = self._read.get(profile.customer_id)
        if known is None or known[0] != profile.version:
            self._load(profile.customer_id)
            known = self._read.get(profile.customer_id)
        return known[1] if known is not None else Stored()

    def scan(self, segment: int, total_segments: int) -> Iterator[Profile]:
        """Every customer's profile (and redirect) in one of ``total_segments`` parallel scan
        segments: all items of a partition come together (DynamoDB scans partition by partition)."""
        responses = self.table.pages("scan", Segment=segment, TotalSegments=total_segments,
                                     FilterExpression="begins_with(pk, :customer)",
                                     ExpressionAttributeValues={":customer": {"S": "CUSTOMER#"}})  # fmt: skip
        partition: list[dict[str, Any]] = []
        for item in (item for response in responses for item in response.get("Items", [])):
            if partition and partition[0]["pk"] != item["pk"]:
                if (assembled := assemble(partition)) is not None:
                    yield assembled[0]
                partition = []
            partition.append(item)
        if partition and (assembled := assemble(partition)) is not None:
            yield assembled[0]

    def members(self, segment: str, limit: int, after: str | None = None) -> tuple[list[str], str | None]:
        """Up to ``limit`` customer ids of ``segment`` (a ``kind:slug`` id) in id order, after
        ``after``; and the last id returned when more may follow."""
        request = {**self._segment_query(segment), "Limit": limit}
        if after is not None:
            attribute = INDEXES[segment.split(":", 1)[0]][1]
            request["ExclusiveStartKey"] = {**profile_key(after), "customerId": {"S": after}, attribute: {"S": segment}}
        response = self.table.call("query", TableName=self.table.name, **request)
        ids = [item["customerId"]["S"] for item in response.get("Items", [])]
        return ids, ids[-1] if "LastEvaluatedKey" in response and ids else None

    def count(self, segment: str) -> int:
        """How many customers ``segment`` has (a keys-only count, page by page)."""
        return sum(int(r.get("Count", 0)) for r in self.table.pages("query", **self._segment_query(segment),
                                                                          Select="COUNT"))  # fmt: skip

    def with_contact(self, trait: str, hashed: str) -> list[str]:
        """The customers whose ``trait`` (email, phone) has the keyed hash ``hashed`` (one query of
        its keys-only index: 0.5 read units a page, however many customers there are)."""
        index, attribute = CONTACT_INDEXES[trait]
        responses = self.table.pages("query", IndexName=index, KeyConditionExpression="#contact = :hashed",
                                     ExpressionAttributeNames={"#contact": attribute},
                                     ExpressionAttributeValues={":hashed": {"S": hashed}})  # fmt: skip
        return [item["customerId"]["S"] for response in responses for item in response.get("Items", [])]

    def _segment_query(self, segment: str) -> dict[str, Any]:
        """A query of the membership index that holds ``segment`` (a ``kind:slug`` id)."""
        index, attribute = INDEXES[segment.split(":", 1)[0]]
        return {
            "IndexName": index,
            "KeyConditionExpression": "#segment = :segment",
            "ExpressionAttributeNames": {"#segment": attribute},
            "ExpressionAttributeValues": {":segment": {"S": segment}},
        }

    def clear_outbox(self, customer_id: str, stored_version: int) -> None:
        self.table.write(
            "update_item",
            TableName=self.table.name,
            Key=profile_key(customer_id),
            UpdateExpression="SET version = version + :one REMOVE outbox",
            ConditionExpression="version = :expected",
            ExpressionAttributeValues={":one": {"N": "1"}, ":expected": {"N": str(stored_version)}},
        )
        known = self._read.get(customer_id)
        if known is not None and known[0] == stored_version:
            self._read[customer_id] = (stored_version + 1, known[1])

    def place(self, placed: Sequence[Profile]) -> list[str]:
        """One conditional ``UpdateItem`` per profile, of its placement only (``placement_update``;
        the segment change joins ``pending``, or a new page first when that outgrows it): the
        request carries a few hundred bytes, never what grows with the history. Returns the ids
        whose stored version had moved."""
        conflicted: list[str] = []
        for profile in placed:
            bookkeeping, after = self._pages_for(profile)
            try:
                self.table.write("update_item", TableName=self.table.name, Key=profile_key(profile.customer_id),
                                 **placement_update(profile, bookkeeping))  # fmt: skip
            except ConcurrentUpdate:
                conflicted.append(profile.customer_id)
                continue
            self._committed(profile, after)
        return conflicted

    def save(self, profile: Profile, retired: Sequence[Profile] = ()) -> None:
        """Write the new page a change needs, if any, then the hot item, conditional on its
        version (its ``pages`` count makes the page part of the profile); with the redirects of
        ``retired`` ids in one transaction when identities merge."""
        bookkeeping, after = self._pages_for(profile)
        if retired:
            hot = [{"Put": {"TableName": self.table.name, **conditional_put(p, b)}}
                   for p, b in ((profile, bookkeeping), *((r, {}) for r in retired))]  # fmt: skip
            self.table.write("transact_write_items", TransactItems=hot)
        else:
            self.table.write("put_item", TableName=self.table.name, **conditional_put(profile, bookkeeping))
        self._committed(profile, after)
        for redirect in retired:  # their entries are the survivor's now; a redirect reads none
            self._drop(redirect.customer_id, self._read.pop(redirect.customer_id, (0, Stored()))[1])

    def _pages_for(self, profile: Profile) -> tuple[dict[str, Any], Stored]:
        """The hot item's page bookkeeping for a write of ``profile``, and the pages after it: the
        changes wait in ``pending`` up to ``FLUSH_BYTES``; beyond, they are put as the next
        page(s) now (read only once the hot item counts them), all live entries when the pages
        hold more stale copies than live ones."""
        stored = self._stored(profile)
        _, entries = split(profile)
        pending = changes(entries, stored)
        if size(pending) <= FLUSH_BYTES:
            return {"pending": pending, "pages": stored.pages, "base": stored.base}, stored
        compact = stored.stale()
        content = entries if compact else pending
        number, skip, last = stored.pages + 1, list(stored.skip), 0
        pk = customer_pk(profile.customer_id)
        for page in paged(content):
            for _ in range(MAX_PAGE_PROBES):  # a page left by a write that never committed: the next number
                item = {**serialize(page), "pk": pk, "sk": {"S": page_key(number)}}
                try:
                    self.table.write("put_item", TableName=self.table.name, Item=item,
                                     ConditionExpression="attribute_not_exists(pk)")  # fmt: skip
                    break
                except ConcurrentUpdate:
                    skip.append(number)
                    number += 1
            else:
                raise TransientError(f"no free page number for {profile.customer_id} after {MAX_PAGE_PROBES} tries")
            last, number = number, number + 1
        after = Stored(entries={**({} if compact else stored.entries), **content}, pages=last,
                       base=stored.pages + 1 if compact else stored.base,
                       skip=[n for n in skip if n > stored.pages] if compact else skip,
                       obsolete=stored.keys() if compact else [])  # fmt: skip
        after.obsolete = [sk for sk in after.obsolete if page_number(sk) < after.base or page_number(sk) in stored.skip]
        after.page_bytes = after.live_bytes if compact else stored.page_bytes + size(content)
        return {"pages": last, "base": after.base, "skip": after.skip}, after

    def _committed(self, profile: Profile, after: Stored) -> None:
        """Remember the pages as the commit of ``profile`` left them; drop what a compaction replaced."""
        self._read[profile.customer_id] = (profile.version + 1, after)
        if after.obsolete:
            self._drop(profile.customer_id, Stored(obsolete=after.obsolete, pages=0))
            after.obsolete = []

    def _drop(self, customer_id: str, stored: Stored) -> None:
        """Delete the pages of ``stored`` (best effort: erasure removes any left)."""
        sks = stored.keys()
        try:
            self.table.delete([{"pk": customer_pk(customer_id), "sk": {"S": sk}} for sk in sks])
        except (TransientError, ClientError) as exc:
            logger.warning("pages of %s left for erasure: %s", customer_id, exc)

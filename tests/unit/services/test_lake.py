"""The lake: replay from the archive, compaction (duplicates, erasure), the profile snapshot."""

from __future__ import annotations

import gzip
import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb

from audience.domain.privacy import pseudonym
from audience.domain.profile import Profile
from audience.services.artifacts import EventArchive, ProfileSnapshots, snapshot_key, split_records
from audience.services.lake import SETTLE, Compacting, Population, Replaying, Snapshotting, archived_messages
from audience.services.population import read_customers
from audience.services.privacy import Suppression, erase_customer, scrub_erased
from audience.services.profiles import Folding, StreamRecord
from tests.synthetic import NOW
from tests.unit.fakes import MemoryBucket, MemoryDeadLetters, MemoryPrivacy, MemoryProfiles, MemoryQueue
from tests.unit.services.test_profiles_service import CURRENCIES, order, record

PEPPER = "pepper"
DAY, NEXT_DAY = NOW.date(), NOW.date() + timedelta(days=1)


def stream() -> list[StreamRecord]:
    """Two customers' browsing, identify (an anonymous id merged), orders, a refund-free day."""
    bodies: list[dict[str, Any]] = [
        {"type": "page", "anonymousId": "anon-1", "name": "Home"},
        {"type": "identify", "userId": "u1", "anonymousId": "anon-1", "traits": {"email": "u1@example.com"}},
        order("u1", 40),
        {"type": "track", "userId": "u1", "event": "Product Viewed", "properties": {"product_id": "p1"}},
        order("u2", 15, messageId="m-u2-1"),
        {"type": "page", "userId": "u2", "name": "Sale", "messageId": "m-u2-2"},
        order("u1", 60),
    ]
    return [record(n, body) for n, body in enumerate(bodies, 1)]


def folding(profiles: MemoryProfiles, privacy: MemoryPrivacy | None = None) -> Folding:
    suppression = Suppression(privacy, PEPPER) if privacy is not None else None
    return Folding(profiles, MemoryDeadLetters(), CURRENCIES, suppression=suppression)


def archived(records: list[StreamRecord], duplicate: int | None = None) -> EventArchive:
    """The records as Firehose archives them: two files on two days, ``duplicate`` delivered twice."""
    archive = EventArchive(MemoryBucket())
    data = [r.data for r in records]
    archive.put(DAY, "audience-engine-archive-1-a.gz", data[:4])
    archive.put(NEXT_DAY, "audience-engine-archive-1-b.gz", data[4:] + ([data[duplicate]] if duplicate else []))
    return archive


def comparable(profile: Profile) -> dict[str, Any]:
    """What events make of a profile: not where on which stream they came from, nor the item's version."""
    kept = profile.model_dump(mode="json", exclude={"applied", "version", "outbox", "seen"})
    return {**kept, "seen": sorted(profile.seen)}


def test_a_replay_into_an_empty_table_reproduces_the_live_profiles_and_a_second_replay_changes_nothing() -> None:
    records, live = stream(), MemoryProfiles()
    folding(live).fold(records, NOW)
    archive = archived(records, duplicate=2)  # Firehose delivered the first order twice

    rebuilt = MemoryProfiles()
    outcome = Replaying(folding(rebuilt), archive).replay(DAY, NEXT_DAY, NOW)

    assert (outcome.files, outcome.events, outcome.applied) == (2, 7, 7)
    assert set(rebuilt.items) == set(live.items) == {"u1", "anon-1", "u2"}
    assert {k: comparable(p) for k, p in rebuilt.items.items()} == {k: comparable(p) for k, p in live.items.items()}
    assert rebuilt.items["u1"].orders == 2 and rebuilt.items["u1"].revenue == 100

    writes = rebuilt.writes
    again = Replaying(folding(rebuilt), archive).replay(DAY, NEXT_DAY, NOW)  # a job run twice: exactly once
    assert (again.applied, again.skipped, rebuilt.writes) == (0, 7, writes)
    assert rebuilt.items["u1"].orders == 2


def test_a_replay_reads_only_the_days_asked_for() -> None:
    rebuilt = MemoryProfiles()
    outcome = Replaying(folding(rebuilt), archived(stream())).replay(NEXT_DAY, NEXT_DAY, NOW)
    assert (outcome.files, outcome.events) == (1, 3) and set(rebuilt.items) == {"u1", "u2"}


def test_compaction_leaves_one_file_a_day_with_every_event_once() -> None:
    archive = archived(stream(), duplicate=5)
    outcome = Compacting(archive, PEPPER).compact(NOW)

    files = archive.files()
    assert len(files) == 2 and all("/compacted-" in k for k in files)
    ids = [m.message_id for m in archived_messages(archive)]
    assert len(ids) == len(set(ids)) == 7
    assert sum(len(archive.records(k)) for k in files) == 7
    assert (outcome.duplicates, outcome.erased, outcome.days) == (1, 0, 2)
    assert Compacting(archive, PEPPER).compact(NOW).days == 0  # nothing new: nothing read


def test_an_erased_customers_events_leave_the_archive_at_the_next_compaction() -> None:
    profiles, queue, records = MemoryProfiles(), MemoryQueue(), stream()
    privacy = MemoryPrivacy(profiles)
    folding(profiles, privacy).fold(records, NOW)
    archive = archived(records)
    bucket = archive.store
    assert isinstance(bucket, MemoryBucket)

    receipt = erase_customer("u1", profiles, privacy, PEPPER, NOW, "test", queue)
    [work] = queue.items
    scrub = work["scrub"]
    scrub_erased(
        scrub["ids"], scrub["subject"], scrub["receipt"], bucket, privacy, NOW, scrub["pseudonyms"], NOW
    )  # fmt: skip  (the import function's half of the erasure)
    assert "events archive" in receipt.archive and len(archive.tombstones()) == 1
    late = record(9, {"type": "page", "anonymousId": "anon-1", "name": "After"})  # sent after the erasure
    archive.put(NEXT_DAY, "audience-engine-archive-1-c.gz", [late.data])

    outcome = Compacting(archive, PEPPER, Suppression(privacy, PEPPER)).compact(NOW + timedelta(minutes=5))

    left = archived_messages(archive)
    assert {m.customer_id for m in left} == {"u2"} and len(left) == 2
    assert outcome.erased == 6  # five of u1's (anon-1's page included), and the page after the erasure
    raw = b"".join(gzip.decompress(bucket.objects[k]) for k in archive.files())
    assert b"u1" not in raw and b"anon-1" not in raw
    assert outcome.tombstones_retired == 0  # Firehose may still be writing events from before the erasure
    later = Compacting(archive, PEPPER, Suppression(privacy, PEPPER)).compact(NOW + SETTLE)
    assert later.tombstones_retired == 1 and archive.tombstones() == {}


def test_tombstones_spare_events_after_consent_is_given_again() -> None:
    archive = archived(stream())
    archive.put_tombstone("r1", [pseudonym(PEPPER, "u2")], NOW - timedelta(seconds=1))  # before u2's events arrived
    Compacting(archive, PEPPER).compact(NOW)
    assert {m.customer_id for m in archived_messages(archive)} == {"u1", "anon-1", "u2"}


def test_records_split_with_or_without_firehose_delimiter() -> None:
    assert split_records(b'{"a": 1}{"b": [2]}\n{"c": "}"}\n') == [b'{"a": 1}', b'{"b": [2]}', b'{"c": "}"}']
    assert split_records(b'{"a": 1}\n\xff\xfe not json\n{"b": 2}') == [b'{"a": 1}', b"\xff\xfe not json", b'{"b": 2}']


def test_an_unreadable_record_in_the_archive_is_skipped_by_the_readers_and_the_compaction() -> None:
    records = stream()
    archive = archived(records)
    archive.put(DAY, "other-producer.gz", [b"\xff\xfe not an event", records[0].data])
    assert len(archived_messages(archive)) == 7
    Compacting(archive, PEPPER).compact(NOW)
    assert sum(len(archive.records(k)) for k in archive.files()) == 7


def test_the_snapshot_is_parquet_with_ids_rfm_windows_and_consent_and_no_contact_details(tmp_path: Path) -> None:
    profiles = MemoryProfiles()
    folding(profiles).fold(stream(), NOW)
    bucket = MemoryBucket()
    result = Snapshotting(profiles, ProfileSnapshots(bucket), scan_segments=2).snapshot(NOW)

    assert result["profiles"] == 2  # u1 and u2 (anon-1 is a redirect)
    latest = ProfileSnapshots(bucket).latest()
    assert latest is not None and latest[0] == NOW.date() and latest[1] == result["key"]
    path = tmp_path / "profiles.parquet"
    path.write_bytes(bucket.objects[result["key"]])
    rows = duckdb.sql(f"SELECT customer_id, orders, revenue, orders_30d, identities, consent_analytics, "
                      f"snapshot_day FROM '{path}' ORDER BY customer_id").fetchall()  # fmt: skip
    assert rows == [("u1", 2, 100.0, 2, json.dumps(["anon-1", "u1"]), True, NOW.date()),
                    ("u2", 1, 15.0, 1, '["u2"]', True, NOW.date())]  # fmt: skip
    assert b"example.com" not in bucket.objects[result["key"]] and b"hmac" not in bucket.objects[result["key"]]
    assert date.fromisoformat(result["key"].split("day=")[1][:10]) == NOW.date()


def test_above_the_threshold_the_jobs_read_the_snapshot_and_find_the_same_profiles() -> None:
    profiles = MemoryProfiles()
    folding(profiles).fold(stream(), NOW)
    snapshots = ProfileSnapshots(MemoryBucket())
    Snapshotting(profiles, snapshots).snapshot(NOW)

    below, above = Population(profiles, snapshots, 2), Population(profiles, snapshots, 1)

    assert below.source() == (profiles, None) and above.source()[1] == NOW.date()
    table = {p.customer_id: p for p in profiles.scan(0, 1) if p.merged_into is None}
    read = {p.customer_id: p for s in range(3) for p in above.scan(s, 3)}
    assert read == table  # whole profiles, as stored
    reads = profiles.reads + profiles.batch_reads
    customers, x = read_customers(above, 2, NOW, training=True)  # the retrain's features, from the snapshot
    assert [c.customer_id for c in customers] == ["u1", "u2"] and x.shape[0] == 2
    assert profiles.reads + profiles.batch_reads == reads


def test_the_compaction_removes_an_erased_customer_from_every_snapshot() -> None:
    profiles, records = MemoryProfiles(), stream()
    folding(profiles).fold(records, NOW)
    archive = archived(records)
    snapshots = ProfileSnapshots(archive.store)
    for day in range(3):
        Snapshotting(profiles, snapshots).snapshot(NOW + timedelta(days=day))
    assert len(list(snapshots.lines(NOW.date(), "profiles"))) == 0  # whole profiles: the two newest days only
    archive.put_tombstone("r1", [pseudonym(PEPPER, "anon-1")], NOW)  # any of the customer's ids

    outcome = Compacting(archive, PEPPER, snapshots=snapshots).compact(NOW)

    assert outcome.snapshot_rows_erased == 3
    for day in snapshots.days():
        assert [json.loads(r)[0] for r in snapshots.lines(day, "rows")] == ["u2"]
        assert all(json.loads(p)["customerId"] == "u2" for p in snapshots.lines(day, "profiles"))
        data = archive.store.read_bytes(snapshot_key(day))
        assert data is not None and b"u1" not in data

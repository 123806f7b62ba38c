"""The lake: the events archive (replayed into profiles, compacted, erased from) and the daily
profile snapshot (Parquet).

Firehose delivers at least once, and a client's retry reaches the stream twice with one message
id: the archive may hold an event more than once. Every reader here keeps the first record of
each message id (``archived_messages``), and the compaction rewrites each day's files as one file
with each message id once, so after a compaction the archive holds every event exactly once.
"""

from __future__ import annotations

import json
import logging
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from audience.domain.events import Message, message_from_json
from audience.domain.parquet import Column, write_table
from audience.domain.privacy import pseudonym
from audience.domain.profile import WINDOWS_DAYS, Profile, StreamPosition
from audience.ports import ProfileScan, TableExports
from audience.services.artifacts import EventArchive, ProfileSnapshots, archive_day
from audience.services.profiles import Folding, ValidEvent

logger = logging.getLogger(__name__)

Suppressing = Callable[[Iterable[str]], set[str]]  # which of these ids belong to an erased customer
REPLAY_BATCH = 500  # events folded per call (a customer's events may span calls: the watermark keeps them once)
REPLAY_ATTEMPTS = 5
# A tombstone stays until a compaction that started this long after the erasure has run, so what
# lands after the erasure still holding the customer is removed too: events Firehose was still
# buffering (at most 15 minutes), a snapshot converted from an export started before the erasure
# (at most a day old).
SETTLE = timedelta(hours=26)
COMPACTED = "compacted-"


def _decode(record: bytes) -> Message | None:
    try:
        return message_from_json(record)
    except ValidationError as exc:  # the stream takes only what ingest validated; another producer may differ
        logger.warning("an archived record does not parse, skipped: %s", exc.errors()[0]["msg"])
        return None


def archived_messages(archive: EventArchive, first: date | None = None, last: date | None = None) -> list[Message]:
    """The archive's events of those days, each message id once (the first record of it)."""
    seen: set[str] = set()
    found = []
    for key in archive.files(first, last):
        for record in archive.records(key):
            message = _decode(record)
            if message is None or message.message_id in seen:
                continue
            seen.add(message.message_id or "")
            found.append(message)
    return found


# ---------------------------------------------------------------- replay


@dataclass
class ReplayOutcome:
    files: int = 0
    events: int = 0  # distinct events in the range
    applied: int = 0
    skipped: int = 0  # already applied (a replay run again, or events the table holds already)
    profiles_updated: int = 0


@dataclass(frozen=True)
class Replaying:
    """Rebuild profiles from the archive, exactly once.

    Each event of the range gets a place in a stream of its own, ``replay:<from>:<to>``: its
    partition key is the customer's (as on Kinesis) and its sequence number is the event's rank
    among that key's events, ordered by arrival time and message id (so the same range numbers
    the same events the same way, however the files were cut or compacted). The folding's
    watermark per (stream, key) then skips what a run already wrote: a replay that stops half
    way and is run again applies each event once. Into an empty table it rebuilds the profiles;
    into a live one, the events of the range that the live profiles already hold count again
    (they came through another stream): empty the table first (README, "Replay").
    Holds the range's events in memory (about 1 KB each: a million events per GB).
    """

    folding: Folding
    archive: EventArchive

    def replay(self, first: date, last: date, now: datetime) -> ReplayOutcome:
        outcome = ReplayOutcome(files=len(self.archive.files(first, last)))
        messages = sorted(archived_messages(self.archive, first, last),
                          key=lambda m: (m.received_at or m.occurred_at, m.message_id or ""))  # fmt: skip
        lane = f"replay:{first.isoformat()}:{last.isoformat()}"
        ranks: dict[str, int] = {}
        events = []
        for message in messages:
            key = message.customer_id
            ranks[key] = ranks.get(key, -1) + 1
            events.append(ValidEvent(message, StreamPosition(lane, key, ranks[key])))
        outcome.events = len(events)
        for start in range(0, len(events), REPLAY_BATCH):
            self._fold(events[start : start + REPLAY_BATCH], now, outcome)
        return outcome

    def _fold(self, events: list[ValidEvent], now: datetime, outcome: ReplayOutcome) -> None:
        pending = events
        for _ in range(REPLAY_ATTEMPTS):
            done = self.folding.fold_events(pending, now)
            outcome.applied += done.processed
            outcome.skipped += done.duplicates + done.suppressed
            outcome.profiles_updated += done.profiles_updated
            failed = set(done.failed_item_ids)
            pending = [e for e in pending if e.item_id in failed]
            if not pending:
                return
        raise RuntimeError(f"{len(pending)} events could not be written after {REPLAY_ATTEMPTS} attempts")


# ---------------------------------------------------------------- compaction and erasure


@dataclass
class CompactionOutcome:
    days: int = 0
    files_read: int = 0
    files_written: int = 0
    duplicates: int = 0
    unreadable: int = 0
    erased: int = 0  # events removed: an erased customer's
    tombstones_retired: int = 0
    snapshot_rows_erased: int = 0
    days_done: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Compacting:
    """Each day's files as one, every message id once, without erased customers' events.

    An erasure leaves a tombstone (``EventArchive.put_tombstone``: the customer's pseudonyms and
    when); while one is pending, the compaction reads every day (events from before the erasure
    may be anywhere) and drops the events of those pseudonyms received up to the erasure. Events
    that arrive while an id is suppressed are dropped too (ingest accepts them, the stream
    ignores them). Without tombstones only the days with new files are read. The first compaction
    after an erasure removes what the archive and the snapshots hold of the customer (the daily
    schedule: within 24 hours), every noncurrent version too; the tombstone stays ``SETTLE``, so
    what lands later still holding them (Firehose's buffer, a snapshot from an export started
    before the erasure) goes at the compaction after.
    """

    archive: EventArchive
    pepper: str
    suppressed: Suppressing | None = None
    snapshots: ProfileSnapshots | None = None  # their rows of erased customers go too

    def compact(self, now: datetime) -> CompactionOutcome:
        outcome = CompactionOutcome()
        tombstones = self.archive.tombstones()
        by_day: dict[date, list[str]] = {}
        for key in self.archive.files():
            by_day.setdefault(archive_day(key), []).append(key)
        for day, keys in sorted(by_day.items()):
            if not tombstones and all(k.rsplit("/", 1)[1].startswith(COMPACTED) for k in keys) and len(keys) == 1:
                continue  # compacted already, and no erasure since
            self._compact_day(day, keys, tombstones, now, outcome)
        if tombstones and self.snapshots is not None:

            def erased(day: date, ids: set[str]) -> bool:
                # every day while the tombstone is pending (an export may predate the erasure)
                names = {pseudonym(self.pepper, i) for i in ids}
                return any(names & held for held, _ in tombstones.values())

            outcome.snapshot_rows_erased = erase_from_snapshots(self.snapshots, erased)
        for key, (_, erased_at) in tombstones.items():
            if now >= erased_at + SETTLE:
                self.archive.retire_tombstone(key)
                outcome.tombstones_retired += 1
        return outcome

    def _compact_day(self, day: date, keys: list[str], tombstones: dict[str, tuple[set[str], datetime]],
                     now: datetime, outcome: CompactionOutcome) -> None:  # fmt: skip
        seen: set[str] = set()
        kept: list[tuple[bytes, Message]] = []
        read = 0
        for key in keys:
            outcome.files_read += 1
            for record in self.archive.records(key):
                read += 1
                message = _decode(record)
                if message is None:  # not an event (another producer's record): dropped, logged
                    outcome.unreadable += 1
                    continue
                if message.message_id in seen:
                    outcome.duplicates += 1
                    continue
                seen.add(message.message_id or "")
                kept.append((record, message))
        ids = {i for _, m in kept for i in m.identities}
        suppressed = self.suppressed(ids) if self.suppressed is not None and ids else set()
        hashed = {i: pseudonym(self.pepper, i) for i in ids}

        def erased(message: Message) -> bool:
            if suppressed.intersection(message.identities):
                return True
            received = message.received_at or message.occurred_at
            return any(hashed[i] in names and received <= at for i in message.identities
                       for names, at in tombstones.values())  # fmt: skip

        records = [r for r, m in kept if not erased(m)]
        outcome.erased += len(kept) - len(records)
        outcome.days += 1
        outcome.days_done.append(day.isoformat())
        if len(records) == read and len(keys) == 1 and keys[0].rsplit("/", 1)[1].startswith(COMPACTED):
            return  # compacted already, and nothing of it erased: left as it is
        name = f"{COMPACTED}{now.strftime('%Y%m%dT%H%M%S%fZ')}.jsonl.gz"
        written = self.archive.put(day, name, records) if records else None
        for key in keys:
            if key != written:
                self.archive.rewrite(key, [])
        outcome.files_written += written is not None


# ---------------------------------------------------------------- the profile snapshot

SNAPSHOT_COLUMNS = (
    Column("customer_id", "string"), Column("identities", "string"), Column("known", "bool"),
    Column("first_seen", "timestamp"), Column("last_seen", "timestamp"),
    Column("orders", "int"), Column("revenue", "float"), Column("refunds", "int"), Column("refunded", "float"),
    Column("first_order_at", "timestamp"), Column("last_order_at", "timestamp"),
    Column("days_since_last_order", "int"),
    *(Column(f"{what}_{days}d", kind) for days in WINDOWS_DAYS  # type: ignore[arg-type]
      for what, kind in (("orders", "int"), ("revenue", "float"))),
    Column("segment", "int"), Column("segment_name", "string"), Column("rfm_cell", "string"),
    Column("r", "int"), Column("f", "int"), Column("m", "int"), Column("model_version", "string"),
    Column("tier", "string"), Column("p_alive", "float"), Column("expected_orders_90d", "float"),
    Column("clv_12m", "float"), Column("churn_risk", "float"),
    Column("consent_analytics", "bool"), Column("consent_personalization", "bool"),
    Column("consent_marketing", "bool"), Column("exposures", "string"), Column("snapshot_day", "date"),
)  # fmt: skip


def snapshot_row(profile: Profile, day: date, as_of: datetime) -> tuple[Any, ...]:
    """One profile as a snapshot row: ids, RFM, windows, segments, tier, predictions, consent and
    experiment exposures; no traits, no context (contact details never leave the table)."""
    s, p = profile.segments, profile.predictions
    windows = [profile.window(days, as_of)[what] for days in WINDOWS_DAYS for what in ("orders", "revenue")]
    exposures = {e: {"variant": x.variant, "segment": x.segment, "at": x.at.isoformat(), "orders": x.orders,
                     "revenue": float(x.revenue)} for e, x in sorted(profile.exposures.items())}  # fmt: skip
    return (
        profile.customer_id, json.dumps(profile.identities), profile.known, profile.first_seen, profile.last_seen,
        profile.orders, float(profile.revenue), profile.refunds, float(profile.refunded),
        profile.first_order_at, profile.last_order_at,
        (as_of - profile.last_order_at).days if profile.last_order_at else None, *windows,
        s.segment if s else None, s.name if s else None, s.rfm if s else None, s.r if s else None,
        s.f if s else None, s.m if s else None, s.model_version if s else None,
        profile.tier.name if profile.tier else None,
        p.p_alive if p else None, p.expected_orders_90d if p else None, p.clv_12m if p else None,
        p.churn_risk if p else None,
        *(profile.allows(purpose) for purpose in ("analytics", "personalization", "marketing")),
        json.dumps(exposures) if exposures else None, day,
    )  # fmt: skip


ExportReader = Callable[[str], ProfileScan]  # the profiles of the export under a prefix


def _row_json(row: tuple[Any, ...]) -> bytes:
    return json.dumps([v.isoformat() if isinstance(v, date) else v for v in row]).encode()


def _row(line: bytes) -> tuple[Any, ...]:
    values = json.loads(line)
    parse = {"date": date.fromisoformat, "timestamp": datetime.fromisoformat}
    return tuple(parse[c.kind](v) if v is not None and c.kind in parse else v
                 for c, v in zip(SNAPSHOT_COLUMNS, values, strict=True))  # fmt: skip


class _Lines:
    """Lines gzip-compressed as they come (a snapshot never holds every profile's JSON at once)."""

    def __init__(self) -> None:
        self.compressor = zlib.compressobj(wbits=31)
        self.parts: list[bytes] = []

    def add(self, line: bytes) -> None:
        self.parts.append(self.compressor.compress(line + b"\n"))

    def done(self) -> bytes:
        return b"".join([*self.parts, self.compressor.flush()])


@dataclass(frozen=True)
class Snapshotting:
    """The day's profile snapshot: every profile (redirects left out) as one Parquet file, its
    rows, and the whole profiles (what the jobs read above ``SnapshotReadsAbove``).

    From one scan of the table (``scan_segments`` in parallel: 0.5 read units per 4 KB), or with
    ``exports`` from the table's export to S3, which reads no capacity but is billed per GB
    (about six scans' worth: ``make bench``); the export is deleted once converted. The run
    starts an export and waits up to ``wait`` for it (moto's finishes at once); one still
    running then is converted by the next run (the snapshot is then a day old)."""

    profiles: ProfileScan
    snapshots: ProfileSnapshots
    scan_segments: int = 4
    exports: TableExports | None = None
    exported: ExportReader | None = None
    wait: timedelta = timedelta(minutes=10)
    poll: Callable[[], None] = field(default=lambda: time.sleep(2))

    def snapshot(self, now: datetime) -> dict[str, Any]:
        source, export = self._source(now)
        day = now.astimezone(UTC).date()
        rows, whole = [], _Lines()
        for segment in range(self.scan_segments):
            for profile in source.scan(segment, self.scan_segments):
                if profile.merged_into is None:
                    rows.append(snapshot_row(profile, day, now))
                    whole.add(profile.model_dump_json(by_alias=True).encode())
        rows.sort(key=lambda r: str(r[0]))
        lines = _Lines()
        for row in rows:
            lines.add(_row_json(row))
        origin = {"profiles": len(rows), "at": now.isoformat(), "from": "export" if export else "scan"}
        key = self.snapshots.put(day, write_table(SNAPSHOT_COLUMNS, rows), lines.done(), whole.done(), origin)
        if export is not None:
            self.snapshots.remove_export(export)
        return {"key": key, "profiles": len(rows), "export": export}

    def _source(self, now: datetime) -> tuple[ProfileScan, str | None]:
        """The newest completed export (and today's started), or the table."""
        if self.exports is None or self.exported is None:
            return self.profiles, None
        ready = None
        pending = self.snapshots.pending_export()
        if pending is not None and self.exports.status(pending["export"]) == "COMPLETED":
            ready = pending["prefix"]
        prefix = self.snapshots.export_prefix(now)
        started = {"export": self.exports.start(prefix), "prefix": prefix}
        self.snapshots.set_pending_export(started)
        deadline = time.monotonic() + self.wait.total_seconds()
        while (status := self.exports.status(started["export"])) == "IN_PROGRESS" and time.monotonic() < deadline:
            self.poll()
        if status == "COMPLETED":
            self.snapshots.set_pending_export(None)
            if ready is not None:
                self.snapshots.remove_export(ready)
            ready = prefix
        elif status == "FAILED":
            logger.error("the table's export %s failed", started["export"])
            self.snapshots.set_pending_export(None)
        return (self.exported(ready), ready) if ready is not None else (self.profiles, None)


def erase_from_snapshots(snapshots: ProfileSnapshots, erased: Callable[[date, set[str]], bool]) -> int:
    """Rewrite every snapshot day holding a customer for whom ``erased`` (the day, their ids)
    holds, earlier versions deleted; returns how many rows went."""
    removed = 0
    for day in snapshots.days():
        rows = [_row(line) for line in snapshots.lines(day, "rows")]
        kept = [r for r in rows if not erased(day, {r[0], *json.loads(r[1])})]
        if len(kept) == len(rows):
            continue
        removed += len(rows) - len(kept)
        lines = _Lines()
        for row in kept:
            lines.add(_row_json(row))
        whole: _Lines | None = None
        for line in snapshots.lines(day, "profiles"):
            whole = whole or _Lines()
            document = json.loads(line)
            if not erased(day, {document["customerId"], *document.get("identities", [])}):
                whole.add(line.rstrip(b"\n"))
        snapshots.rewrite(day, write_table(SNAPSHOT_COLUMNS, kept), lines.done(), whole.done() if whole else None)
    return removed


@dataclass(frozen=True)
class Population:
    """The profiles as the jobs that only read see them (retraining's features, the measure job):
    the table's scan, or above ``snapshot_above`` profiles (as the newest snapshot counted them)
    the whole profiles that snapshot kept, which costs the table no read capacity. They are as
    of the snapshot (at most a day old, its schedule). Each scan segment streams the file."""

    table: ProfileScan
    snapshots: ProfileSnapshots
    snapshot_above: int

    def source(self) -> tuple[ProfileScan, date | None]:
        latest = self.snapshots.latest_source()
        if latest is None or latest.get("profiles", 0) <= self.snapshot_above:
            return self.table, None
        return _SnapshotScan(self.snapshots, date.fromisoformat(latest["day"])), date.fromisoformat(latest["day"])

    def scan(self, segment: int, total_segments: int) -> Iterator[Profile]:
        return self.source()[0].scan(segment, total_segments)


@dataclass(frozen=True)
class _SnapshotScan:
    snapshots: ProfileSnapshots
    day: date

    def scan(self, segment: int, total_segments: int) -> Iterator[Profile]:
        for line in self.snapshots.lines(self.day, "profiles"):
            document = json.loads(line)
            if zlib.crc32(document["customerId"].encode()) % total_segments == segment:
                yield Profile.model_validate(document)


# ---------------------------------------------------------------- the lake function's requests


class LakeRequest(BaseModel):
    """``{"action": "replay", "from": "2026-11-01", "to": "2026-11-30"}``, ``{"action": "compact"}``,
    ``{"action": "snapshot"}`` (the schedules send the last two)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    action: Literal["replay", "compact", "snapshot"]
    first: date | None = Field(default=None, alias="from")
    last: date | None = Field(default=None, alias="to")

    @model_validator(mode="after")
    def _range(self) -> LakeRequest:
        if self.action == "replay" and (self.first is None or self.last is None or self.first > self.last):
            raise ValueError("a replay needs from <= to (dates, YYYY-MM-DD)")
        return self


@dataclass(frozen=True)
class Lake:
    replaying: Replaying
    compacting: Compacting
    snapshotting: Snapshotting

    def handle(self, request: LakeRequest, now: datetime) -> dict[str, Any]:
        if request.action == "replay":
            assert request.first is not None and request.last is not None  # (the request's validator)
            return asdict(self.replaying.replay(request.first, request.last, now))
        if request.action == "compact":
            return asdict(self.compacting.compact(now))
        return self.snapshotting.snapshot(now)

"""The lake's figures: what the jobs' reads of every profile cost, scanning the table or reading
the latest export (100,000 profiles), and how small the archive is per event.

Read units are counted from the items themselves (``tests.billing``: a Scan sums its items per
1 MB page and bills 0.5 read units per 4 KB, eventually consistent; moto does not report consumed
capacity by size). The items are the ones the table holds: each synthetic profile (four
archetypes, ``tests.synthetic``) as ``profile_items.to_items`` writes it. An export to S3
reads no capacity and is billed per GB of table (../shared/REFERENCE.md).

``python -m tests.benchmarks.lake`` prints the table; ``make bench`` prints it as section 17.
"""

from __future__ import annotations

import gzip
import math
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from audience.adapters.profile_items import to_items
from audience.domain.events import message_to_json, parse_request
from audience.domain.money import Currencies
from audience.services.artifacts import EventArchive
from audience.services.lake import Compacting
from embedded.demo import sample_events
from tests.billing import KB, item_size
from tests.synthetic import NOW, draw
from tests.unit.fakes import MemoryBucket

PROFILES = 100_000
RECEIVED = datetime(2027, 1, 15, tzinfo=UTC)  # after every sample event
CURRENCIES = Currencies("USD", {"EUR": Decimal("1.08"), "GBP": Decimal("1.27")})
PAGE = 1024 * KB  # a Scan reads at most 1 MB a page
RCU_PRICE, EXPORT_PRICE_GB = 0.125 / 1e6, 0.10  # on-demand us-east-1; export to S3, per GB of table
READS_A_MONTH = {"measure (daily)": 30, "retrain features (weekly)": 30 / 7}


def scan_read_units(sizes: list[int]) -> float:
    """An eventually consistent Scan of items of these sizes: per page of up to 1 MB, 0.5 per 4 KB."""
    units, page = 0.0, 0
    for size in sizes:
        if page + size > PAGE:
            units += 0.5 * math.ceil(page / (4 * KB))
            page = 0
        page += size
    return units + 0.5 * math.ceil(page / (4 * KB))


def table_items(profiles: int = PROFILES) -> list[int]:
    """The sizes of every item the table holds for ``profiles`` synthetic customers."""
    return [item_size(item) for profile, _ in draw(profiles, seed=3) for item in to_items(profile)]


def real_items(profiles: int = PROFILES) -> list[int] | None:
    """The item sizes of Online Retail II's 4,381 customers as imported, repeated to ``profiles``
    customers (None when the data set is not beside the project)."""
    try:
        from tests.real_data import imported_profiles

        customers = imported_profiles()
    except (FileNotFoundError, OSError):
        return None
    per_customer = [[item_size(item) for item in to_items(p)] for p in customers]
    return [size for n in range(profiles) for size in per_customer[n % len(per_customer)]]


def archive_bytes_per_event() -> tuple[int, float, float]:
    """The demo's events as the archive holds them (a gzip JSON Lines file, as Firehose writes
    one buffer): events, bytes per event raw and compressed."""
    records = []
    for body in sample_events(customers=200):
        records += [message_to_json(m) for m in parse_request(body, RECEIVED, CURRENCIES)]
    raw = b"".join(r + b"\n" for r in records)
    return len(records), len(raw) / len(records), len(gzip.compress(raw)) / len(records)


def compaction_seconds(events: int = 20_000) -> float:
    """One day's archive of ``events`` compacted with a pending erasure (in memory: the CPU part)."""
    archive = EventArchive(MemoryBucket())
    bodies = sample_events(customers=max(1, events // 12))[:events]
    records = [message_to_json(m) for body in bodies for m in parse_request(body, RECEIVED, CURRENCIES)]
    for n in range(0, len(records), 500):
        archive.put(NOW.date(), f"part-{n:06d}.gz", records[n : n + 500])
    archive.put_tombstone("r", ["0" * 32], RECEIVED - timedelta(hours=2))
    started = time.perf_counter()
    Compacting(archive, "pepper").compact(RECEIVED)
    return time.perf_counter() - started


def measure() -> dict[str, Any]:
    populations = {"synthetic (4 archetypes)": table_items()}
    if (real := real_items()) is not None:
        populations["Online Retail II, as imported"] = real
    events, raw, compressed = archive_bytes_per_event()
    read = {name: (len(sizes), sum(sizes), scan_read_units(sizes)) for name, sizes in populations.items()}
    return {"populations": read, "events": events, "raw": raw, "compressed": compressed,
            "compaction": compaction_seconds()}  # fmt: skip


def report(found: dict[str, Any]) -> None:
    runs = sum(READS_A_MONTH.values())
    print(f"   a job's read of {PROFILES:,} profiles          {'items':>8} {'B/profile':>9} {'table Scan':>10}"
          f" {'snapshot':>8}   (read units)")  # fmt: skip
    for name, (items, size, scan) in found["populations"].items():
        print(f"   {name:<36} {items:>8,} {size / PROFILES:>9,.0f} {scan:>10,.0f} {0:>8}")
        export = 30 * size / 1024**3 * EXPORT_PRICE_GB
        print(f"   {'':<5}a month: measure (daily) + retrain features (weekly) scanning: {scan * runs:,.0f} RCU"
              f" ({scan * runs * RCU_PRICE:.4f}$);")  # fmt: skip
        print(f"   {'':<5}reading the daily snapshot: 0, the snapshot itself one scan a day: {30 * scan:,.0f} RCU"
              f" ({30 * scan * RCU_PRICE:.4f}$), or from the export: 0 RCU, {export:.4f}$")  # fmt: skip
    print("   (rescoring still scans: it writes with versions. An export costs about six scans: the snapshot")
    print("   scans unless SnapshotSource=export, which spares the table's partitions, 3,000 RCU/s each)")
    print(
        f"   archive: {found['events']:,} demo events, {found['raw']:.0f} B an event as JSON, "
        f"{found['compressed']:.0f} B gzip-compressed ({found['raw'] / found['compressed']:.1f}x)"
    )
    print(f"   compaction of a day of 20,000 events with an erasure pending: {found['compaction']:.2f} s CPU")


if __name__ == "__main__":
    print("17. The lake: a job's read of every profile, scanning the table or reading the daily snapshot")
    report(measure())

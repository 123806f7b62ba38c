"""``make sql QUERY="..."``: SQL (DuckDB) over the data bucket's events archive and profile
snapshots, the same files Athena reads through the stack's Glue tables.

The bucket's ``archive/events/`` and ``snapshots/profiles/`` are mirrored into
``.local/lake/<bucket>/`` (only new or changed objects are fetched; deleted ones are removed, so
a compaction's erasures reach the copy too), then DuckDB reads the local files. (DuckDB could
read S3 itself through its httpfs extension, but that extension is downloaded on first use, and
these machines may be offline.) Views:

- ``events``: every archived event once (the first record of each ``messageId``: Firehose
  delivers at least once), with ``day`` (the day it was archived), ``messageId``, ``type``,
  ``userId``, ``anonymousId``, ``customer`` (userId, else anonymousId), ``event``, ``name``,
  ``timestamp``, ``receivedAt`` and ``properties``, ``traits``, ``context`` as JSON;
- ``profiles``: every daily snapshot (``day``, then the columns of ``services.lake.SNAPSHOT_COLUMNS``);
- ``latest_profiles``: the newest snapshot only.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import boto3
import duckdb

from audience.services.artifacts import ARCHIVE, SNAPSHOTS

ROOT = Path(__file__).resolve().parents[1]
EVENT_COLUMNS = {
    "messageId": "VARCHAR", "type": "VARCHAR", "userId": "VARCHAR", "anonymousId": "VARCHAR", "event": "VARCHAR",
    "name": "VARCHAR", "timestamp": "TIMESTAMPTZ", "receivedAt": "TIMESTAMPTZ", "properties": "JSON",
    "traits": "JSON", "context": "JSON",
}  # fmt: skip


def mirror(s3: Any, bucket: str, folder: Path) -> Path:
    """The bucket's archive and snapshots in ``folder`` (returned), as they are now."""
    wanted: set[Path] = set()
    for prefix, suffix in ((ARCHIVE, ".gz"), (SNAPSHOTS, ".parquet")):  # (not the jobs' whole profiles)
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                if not item["Key"].endswith(suffix):
                    continue
                path = folder / item["Key"]
                wanted.add(path)
                stamp = path.with_name(f".{path.name}.etag")
                if path.exists() and stamp.exists() and stamp.read_text() == item["ETag"]:
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
                stamp.write_text(item["ETag"])
    for prefix in (ARCHIVE, SNAPSHOTS):
        for path in (folder / prefix).rglob("*"):
            if path.is_file() and not path.name.startswith(".") and path not in wanted:
                path.unlink()
                path.with_name(f".{path.name}.etag").unlink(missing_ok=True)
    return folder


def connect(folder: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the views ``events``, ``profiles`` and ``latest_profiles``."""
    con = duckdb.connect()
    events, snapshots = folder / ARCHIVE, folder / SNAPSHOTS
    if any(events.glob("*/*.gz")):
        columns = ", ".join(f"'{name}': '{kind}'" for name, kind in EVENT_COLUMNS.items())
        con.sql(f"""CREATE VIEW raw_events AS SELECT * FROM read_json('{events}/*/*.gz', format = 'auto',
                    columns = {{{columns}}}, hive_partitioning = true, compression = 'gzip')""")  # noqa: S608 (our paths)
    else:
        columns = ", ".join(f'NULL::{kind} AS "{name}"' for name, kind in EVENT_COLUMNS.items())
        con.sql(f"CREATE VIEW raw_events AS SELECT {columns}, NULL::VARCHAR AS day WHERE false")
    con.sql("""CREATE VIEW events AS SELECT CAST(day AS DATE) AS day, * EXCLUDE (day, copy),
               coalesce(userId, anonymousId) AS customer FROM (SELECT *, row_number() OVER (
               PARTITION BY messageId ORDER BY receivedAt) AS copy FROM raw_events) WHERE copy = 1""")
    if any(snapshots.glob("*/*.parquet")):
        con.sql(f"""CREATE VIEW profiles AS SELECT CAST(day AS DATE) AS day, * EXCLUDE (day)
                    FROM read_parquet('{snapshots}/*/*.parquet', hive_partitioning = true)""")  # noqa: S608 (our paths)
    else:
        con.sql("CREATE VIEW profiles AS SELECT NULL::DATE AS day, NULL::VARCHAR AS customer_id WHERE false")
    con.sql("CREATE VIEW latest_profiles AS SELECT * FROM profiles WHERE day = (SELECT max(day) FROM profiles)")
    return con


def open_lake(endpoint: str, stack: str = "audience-engine", folder: Path | None = None) -> duckdb.DuckDBPyConnection:
    """DuckDB over the lake of the stack at ``endpoint`` (a running ``make local``)."""
    session = boto3.session.Session(region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    cloudformation = session.client("cloudformation", endpoint_url=endpoint)
    [described] = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    bucket = next(o["OutputValue"] for o in described["Outputs"] if o["OutputKey"] == "DataBucketName")
    s3 = session.client("s3", endpoint_url=endpoint)
    return connect(mirror(s3, bucket, folder or ROOT / ".local" / "lake" / bucket))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument(
        "query",
        nargs="?",
        default=os.environ.get("QUERY"),
        help="SQL over the views events, profiles and latest_profiles (default: $QUERY)",
    )
    parser.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"))
    parser.add_argument("--stack", default="audience-engine")
    args = parser.parse_args(argv)
    if not args.query:
        parser.error("a query, as the argument or in QUERY")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    try:
        con = open_lake(args.endpoint, args.stack)
    except Exception as exc:  # nothing listening, or no stack there
        print(f"no embedded stack at {args.endpoint} ({exc}): start one with `make local`", file=sys.stderr)
        return 2
    try:
        con.sql(args.query).show(max_rows=200, max_width=240)
    except duckdb.Error as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

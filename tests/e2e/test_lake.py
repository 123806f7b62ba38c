"""GIVEN the embedded stack (Firehose's delivery emulated from the template), WHEN events are sent
through the tracking API, THEN each is in the archive once; a replay of the archive into an
empty table rebuilds the live profiles; an erased customer's events leave the archive at the next
compaction; DuckDB answers the README's queries over the archive and the snapshot."""

from __future__ import annotations

import base64
import gzip
import json
import re
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.request import Request, urlopen

import boto3
import pytest

from audience.adapters.dynamodb import DynamoProfileRepository
from audience.adapters.s3 import S3ObjectStore
from audience.bootstrap import lake
from audience.domain.events import message_from_json
from audience.domain.profile import Profile
from audience.services.artifacts import EventArchive, ProfileSnapshots
from audience.services.lake import Population
from audience.settings import LakeSettings
from embedded.demo import get, keyed
from embedded.stack import LOCAL_WRITE_KEY, EmbeddedStack
from lake_sql import connect, mirror
from tests.conftest import ROOT
from tests.e2e.test_embedded_stack import wait_for

RUN = uuid.uuid4().hex[:6]
CUSTOMERS = [f"lake-{RUN}-{n}" for n in range(6)]
BASIC = {"Authorization": "Basic " + base64.b64encode(f"{LOCAL_WRITE_KEY}:".encode()).decode()}


def track(api: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    request = Request(f"{api}/v1/batch", data=json.dumps({"batch": messages}).encode(), method="POST",
                      headers={"Content-Type": "application/json", **BASIC})  # fmt: skip
    with urlopen(request, timeout=10) as response:
        answer: dict[str, Any] = json.loads(response.read())
        return answer


def shop(customer: str, n: int) -> list[dict[str, Any]]:
    """A customer's visit: anonymous pages, identify, views, orders (each message with its id)."""
    anonymous = f"{customer}-anon"

    def mid(kind: str) -> str:
        return f"{customer}-{kind}"

    library = {"library": {"name": "analytics-python" if n % 2 else "analytics.js", "version": "2"}}
    return [
        {"type": "page", "anonymousId": anonymous, "name": "Home", "messageId": mid("p1"), "context": library},
        {"type": "identify", "userId": customer, "anonymousId": anonymous, "messageId": mid("i"),
         "traits": {"email": f"{customer}@example.com"}, "context": library},
        {"type": "track", "userId": customer, "event": "Product Viewed", "messageId": mid("v"),
         "properties": {"product_id": f"sku-{n}", "price": 20}, "context": library},
        *({"type": "track", "userId": customer, "event": "Order Completed", "messageId": mid(f"o{k}"),
           "timestamp": f"2026-{10 + k % 2:02d}-1{k}T10:00:00Z", "context": library,
           "properties": {"order_id": f"{customer}-o{k}", "total": 10 * (n + 1) + k, "currency": "USD"}}
          for k in range(n % 3 + 1)),
    ]  # fmt: skip


def archived(aws: boto3.session.Session, embedded: EmbeddedStack) -> list[dict[str, Any]]:
    """Every JSON record in the archive's files (duplicates included; another test puts a
    record that is not JSON on the stream, and the archive keeps what the stream had)."""
    archive = EventArchive(S3ObjectStore(embedded.outputs["DataBucketName"]))
    found = []
    for record in (r for key in archive.files() for r in archive.records(key)):
        try:
            found.append(json.loads(record))
        except ValueError:
            continue
    return found


def ours(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if str(r.get("messageId", "")).startswith(f"lake-{RUN}-")]


@pytest.fixture(scope="module")
def sent(api: str, aws: boto3.session.Session, embedded: EmbeddedStack) -> list[dict[str, Any]]:
    messages = [m for n, customer in enumerate(CUSTOMERS) for m in shop(customer, n)]
    answer = track(api, messages)
    assert (answer["accepted"], answer["rejected"]) == (len(messages), 0)
    wait_for(lambda: len(ours(archived(aws, embedded))), lambda n: n >= len(messages), timeout=30)
    for customer in CUSTOMERS:
        wait_for(lambda c=customer: get(f"{api}/v1/customers/{c}"), lambda r: r[0] == 200, timeout=30)
    return messages


def test_every_event_sent_through_the_tracking_api_is_archived_once(
    sent: list[dict[str, Any]], aws: boto3.session.Session, embedded: EmbeddedStack
) -> None:
    records = ours(archived(aws, embedded))
    assert Counter(r["messageId"] for r in records) == Counter(m["messageId"] for m in sent)
    keys = EventArchive(S3ObjectStore(embedded.outputs["DataBucketName"])).files()
    today = datetime.now(UTC).date().isoformat()
    assert keys and all(re.fullmatch(r"archive/events/day=\d{4}-\d\d-\d\d/audience-engine-archive-1-.+\.gz", k)
                        or "/compacted-" in k for k in keys)  # fmt: skip
    assert any(f"day={today}/" in k for k in keys)
    identify = next(r for r in records if r["type"] == "identify")
    assert identify["traits"]["email"].startswith("hmac-sha256:")  # contact details hashed, as on the stream
    assert all(message_from_json(json.dumps(r)) for r in records)  # as validated: the stream's own shape


def comparable(profile: Profile) -> dict[str, Any]:
    """What the events made of a profile (not where they came from, nor placement as of a moment)."""
    excluded = {"applied", "version", "outbox", "seen", "segments", "tier", "segment_history", "predictions"}
    return {**profile.model_dump(mode="json", exclude=excluded), "seen": sorted(profile.seen)}


def test_a_replay_of_the_archive_into_an_empty_table_rebuilds_the_live_profiles(
    sent: list[dict[str, Any]], aws: boto3.session.Session, embedded: EmbeddedStack
) -> None:
    dynamodb, live_table = aws.client("dynamodb"), embedded.outputs["ProfilesTableName"]
    described = dynamodb.describe_table(TableName=live_table)["Table"]
    empty = f"replayed-{RUN}"
    dynamodb.create_table(
        TableName=empty, BillingMode="PAY_PER_REQUEST", KeySchema=described["KeySchema"],
        AttributeDefinitions=described["AttributeDefinitions"],
        GlobalSecondaryIndexes=[{k: g[k] for k in ("IndexName", "KeySchema", "Projection")}
                                for g in described.get("GlobalSecondaryIndexes", [])],
    )  # fmt: skip
    lambda_environment = aws.client("lambda").get_function_configuration(
        FunctionName=embedded.deployed.functions["LakeFunction"]  # type: ignore[union-attr]
    )["Environment"]["Variables"]
    settings = LakeSettings.from_env({**lambda_environment, "PROFILES_TABLE": empty})
    jobs = lake.build(settings)  # the lake function's composition, over the empty table
    today = datetime.now(UTC).date()

    outcome = jobs.replaying.replay(today, today, datetime.now(UTC))
    again = jobs.replaying.replay(today, today, datetime.now(UTC))

    assert outcome.applied >= len(sent) and again.applied == 0  # exactly once, even when run twice
    live, rebuilt = DynamoProfileRepository(live_table), DynamoProfileRepository(empty)
    for customer in CUSTOMERS:
        before, after = live.get(customer), rebuilt.get(customer)
        assert before is not None and after is not None
        assert comparable(after) == comparable(before), customer
        assert (after.orders, after.identities) == (before.orders, sorted({customer, f"{customer}-anon"}))


def test_an_erased_customers_events_are_gone_from_the_archive_after_the_compaction(
    api: str, sent: list[dict[str, Any]], aws: boto3.session.Session, embedded: EmbeddedStack
) -> None:
    erased, kept = CUSTOMERS[0], CUSTOMERS[1]
    assert embedded.runtime is not None
    embedded.runtime.invoke("LakeFunction", {"action": "snapshot"})  # a snapshot that holds them
    status, receipt = keyed("DELETE", f"{api}/v1/customers/{erased}")
    assert status == 200 and "archive" in receipt["archive"]
    store = S3ObjectStore(embedded.outputs["DataBucketName"])
    wait_for(lambda: EventArchive(store).tombstones(), bool, timeout=30)  # the import function's scrub

    result = embedded.runtime.invoke("LakeFunction", {"action": "compact"})

    assert result["erased"] >= 4 and result["days"] >= 1 and result["snapshot_rows_erased"] >= 1
    records = archived(aws, embedded)
    assert not [r for r in records if erased in (r.get("userId"), r.get("anonymousId"))]
    mine = ours(records)
    assert len(mine) == len({r["messageId"] for r in mine})  # once each after a compaction
    assert {r["messageId"] for r in mine if r.get("userId") == kept} == {
        m["messageId"] for m in sent if m.get("userId") == kept
    }
    versions = aws.client("s3").list_object_versions(Bucket=store.bucket, Prefix="archive/events/")
    for version in [*versions.get("Versions", []), *versions.get("DeleteMarkers", [])]:  # no copy left behind
        body = aws.client("s3").get_object(Bucket=store.bucket, Key=version["Key"], VersionId=version["VersionId"])
        assert erased.encode() not in gzip.decompress(body["Body"].read())
    snapshots = ProfileSnapshots(store)
    for day in snapshots.days():  # nor in a snapshot
        assert not [r for r in snapshots.lines(day, "rows") if erased.encode() in r]
        assert not [p for p in snapshots.lines(day, "profiles") if erased.encode() in p]


README_QUERY = re.compile(r"```sql\n(.*?)```", re.S)


def test_duckdb_answers_the_readme_queries_over_the_archive_and_the_snapshot(
    api: str, sent: list[dict[str, Any]], aws: boto3.session.Session, embedded: EmbeddedStack, tmp_path: Path
) -> None:
    experiment = {"id": f"lake-{RUN}", "control": "control", "start": "2026-01-01T00:00:00Z",
                  "end": "2027-12-31T00:00:00Z", "variants": [{"id": "control", "weight": 1},
                  {"id": "offer", "weight": 1, "content": {"id": "free-shipping", "kind": "offer"}}]}  # fmt: skip
    bucket = embedded.outputs["DataBucketName"]
    aws.client("s3").put_object(Bucket=bucket, Key="config/experiments.json",
                                Body=json.dumps({"holdout": 0.0, "experiments": [experiment]}).encode())  # fmt: skip
    assert embedded.s3 is not None and embedded.runtime is not None
    embedded.s3.poll()  # the config function puts it in force
    time.sleep(1.5)  # and the read API sees it within ModelRefreshSeconds
    exposed = [c for c in CUSTOMERS[1:] if get(f"{api}/v1/customers/{c}/personalization")[1].get("experiment")]
    snapshot = embedded.runtime.invoke("LakeFunction", {"action": "snapshot"})
    assert snapshot["profiles"] >= len(CUSTOMERS) - 1

    con = connect(mirror(aws.client("s3"), bucket, tmp_path))
    queries = README_QUERY.findall((ROOT / "README.md").read_text().split("## The lake", 1)[1])
    assert len(queries) >= 5
    answers = [con.sql(q.replace("demo-offer", experiment["id"])).fetchall() for q in queries]
    assert all(answers), [q for q, a in zip(queries, answers, strict=True) if not a]

    revenue = con.sql(f"SELECT sum(revenue) FROM latest_profiles WHERE customer_id LIKE 'lake-{RUN}-%'").fetchone()
    assert revenue is not None and revenue[0] == sum(
        m["properties"]["total"] for m in sent if m.get("event") == "Order Completed" and m["userId"] != CUSTOMERS[0]
    )
    if exposed:
        variants = con.sql(f"""SELECT count(*) FROM latest_profiles
                               WHERE json_extract_string(exposures, '$."lake-{RUN}".variant') IS NOT NULL""").fetchone()
        assert variants is not None and variants[0] >= len(exposed)


def test_above_the_threshold_the_jobs_read_the_snapshot_which_may_come_from_the_tables_export(
    sent: list[dict[str, Any]], aws: boto3.session.Session, embedded: EmbeddedStack
) -> None:
    assert embedded.runtime is not None
    snapshot = embedded.runtime.invoke("LakeFunction", {"action": "snapshot"})
    assert snapshot["export"] is None  # SnapshotSource=scan, the default
    store = S3ObjectStore(embedded.outputs["DataBucketName"])
    table = DynamoProfileRepository(embedded.outputs["ProfilesTableName"])
    snapshots = ProfileSnapshots(store)
    scanned = {p.customer_id: p for p in table.scan(0, 1)}

    above = Population(table, snapshots, snapshot_above=0)
    assert Population(table, snapshots, snapshot_above=10**9).source() == (table, None)
    assert above.source()[1] is not None
    read = {p.customer_id: p for s in range(3) for p in above.scan(s, 3)}
    for customer in CUSTOMERS[1:]:
        assert comparable(read[customer]) == comparable(scanned[customer])

    lambda_environment = aws.client("lambda").get_function_configuration(
        FunctionName=embedded.deployed.functions["LakeFunction"]  # type: ignore[union-attr]
    )["Environment"]["Variables"]
    exporting = lake.build(LakeSettings.from_env({**lambda_environment, "SNAPSHOT_SOURCE": "export"}))
    exported = exporting.snapshotting.snapshot(datetime.now(UTC))  # the table's export (point-in-time recovery on)
    assert exported["export"] is not None and exported["profiles"] == snapshot["profiles"]
    assert store.keys(exported["export"]) == []  # converted, then deleted
    read = {p.customer_id: p for p in Population(table, snapshots, snapshot_above=0).scan(0, 1)}
    assert all(comparable(read[c]) == comparable(scanned[c]) for c in CUSTOMERS[1:])

"""Kinesis Data Firehose with a Kinesis stream as its source, delivering to S3, in process.

moto has Firehose, but its CloudFormation does not create a delivery stream, it has no Kinesis
source (nothing reads the stream), and its S3 delivery neither evaluates the Prefix's
expressions nor compresses. So, for each ``AWS::KinesisFirehose::DeliveryStream`` of
``template.yaml``, this creates the delivery stream in moto (``describe-delivery-stream``
answers as on AWS) and does its delivery as Firehose does: one reader per shard of the source
stream from its oldest record, records buffered until ``BufferingHints`` (64 MB, or the
interval: at most ``LOCAL_BUFFER_SECONDS`` here, so a local archive is seen at once), each
record followed by the ``AppendDelimiterToRecord`` delimiter, the buffer GZIP-compressed and
written under the Prefix with ``!{timestamp:...}`` evaluated at the records' arrival time
(one object per day the buffer spans), named ``<stream>-<version>-<yyyy-MM-dd-HH-mm-ss>-<uuid>.gz``.
Firehose delivers at least once; this delivers each record once (readers deduplicate anyway).
"""

from __future__ import annotations

import gzip
import logging
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3

from embedded import template
from embedded.deploy import DeployedStack
from embedded.workers import Workers

log = logging.getLogger(__name__)
LOCAL_BUFFER_SECONDS = 1.0
IDLE_POLL_SECONDS = 0.2
_TIMESTAMP = re.compile(r"!\{timestamp:([^}]*)\}")
_JAVA_TO_STRFTIME = (("yyyy", "%Y"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"), ("mm", "%M"), ("ss", "%S"))


@dataclass(frozen=True)
class Delivery:
    name: str
    stream: str  # the source Kinesis stream's name
    bucket: str
    prefix: str
    compression: str
    delimiter: bytes | None
    size_bytes: int
    interval: float
    configuration: dict[str, Any]  # what create_delivery_stream is given


def deliveries_from_template(session: boto3.session.Session, stack: DeployedStack) -> list[Delivery]:
    """The delivery streams ``template.yaml`` declares, their references resolved in ``stack``."""
    sam = template.load()
    account = session.client("sts").get_caller_identity()["Account"]
    region = session.region_name or "us-east-1"

    def resolve(value: Any) -> Any:
        if isinstance(value, dict) and "Fn::GetAtt" in value:
            logical, _ = value["Fn::GetAtt"]
            physical, kind = stack.resources[logical], stack.types[logical]
            if kind == "AWS::Kinesis::Stream":
                return f"arn:aws:kinesis:{region}:{account}:stream/{physical}"
            if kind == "AWS::S3::Bucket":
                return f"arn:aws:s3:::{physical}"
            return f"arn:aws:iam::{account}:role/{physical}"
        if isinstance(value, dict) and "Fn::Sub" in value:
            return str(value["Fn::Sub"]).replace("${AWS::StackName}", stack.name)
        if isinstance(value, dict) and "Ref" in value:  # a parameter (only the buffer's: capped locally)
            return sam["Parameters"][value["Ref"]].get("Default")
        if isinstance(value, dict):
            return {k: resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [resolve(v) for v in value]
        return value

    found = []
    for resource in sam["Resources"].values():
        if resource["Type"] != "AWS::KinesisFirehose::DeliveryStream":
            continue
        properties = resolve(resource["Properties"])
        destination = properties["ExtendedS3DestinationConfiguration"]
        hints = destination.get("BufferingHints", {})
        processors = destination.get("ProcessingConfiguration", {}).get("Processors", [])
        delimiter = next((p for p in processors if p["Type"] == "AppendDelimiterToRecord"), None)
        found.append(
            Delivery(
                name=properties["DeliveryStreamName"],
                stream=properties["KinesisStreamSourceConfiguration"]["KinesisStreamARN"].split("/", 1)[1],
                bucket=destination["BucketARN"].split(":::", 1)[1],
                prefix=destination.get("Prefix", ""),
                compression=destination.get("CompressionFormat", "UNCOMPRESSED"),
                delimiter=b"\n" if delimiter is not None else None,
                size_bytes=int(hints.get("SizeInMBs", 5)) << 20,
                interval=min(float(hints.get("IntervalInSeconds", 300)), LOCAL_BUFFER_SECONDS),
                configuration=properties,
            )
        )
    return found


def evaluate_prefix(prefix: str, arrival: datetime) -> str:
    """Firehose's ``!{timestamp:<Java date format>}`` at the record's arrival (UTC)."""

    def value(match: re.Match[str]) -> str:
        pattern = match.group(1)
        for java, strftime in _JAVA_TO_STRFTIME:
            pattern = pattern.replace(java, strftime)
        return arrival.astimezone(UTC).strftime(pattern)

    return _TIMESTAMP.sub(value, prefix)


class FirehoseDelivery(Workers):
    def __init__(self, session: boto3.session.Session, deliveries: list[Delivery]) -> None:
        super().__init__()
        self.session, self.deliveries = session, deliveries

    def start(self) -> None:
        firehose, kinesis = self.session.client("firehose"), self.session.client("kinesis")
        for delivery in self.deliveries:
            existing = firehose.list_delivery_streams()["DeliveryStreamNames"]
            if delivery.name not in existing:
                configuration = delivery.configuration
                firehose.create_delivery_stream(
                    DeliveryStreamName=delivery.name,
                    DeliveryStreamType="KinesisStreamAsSource",
                    KinesisStreamSourceConfiguration=configuration["KinesisStreamSourceConfiguration"],
                    ExtendedS3DestinationConfiguration=configuration["ExtendedS3DestinationConfiguration"],
                )
            for shard in kinesis.list_shards(StreamName=delivery.stream)["Shards"]:
                reader = _ShardDelivery(self.session, delivery, shard["ShardId"], self._stop)
                self.spawn(f"firehose-{delivery.name}-{shard['ShardId']}", reader.run)


class _ShardDelivery:
    def __init__(self, session: boto3.session.Session, delivery: Delivery, shard_id: str, stop: Any) -> None:
        self.kinesis: Any = session.client("kinesis")
        self.s3: Any = session.client("s3")
        self.delivery, self.shard_id, self.stop = delivery, shard_id, stop
        self.buffer: list[tuple[bytes, datetime]] = []
        self.size, self.opened = 0, 0.0

    def run(self) -> None:
        iterator = self.kinesis.get_shard_iterator(
            StreamName=self.delivery.stream, ShardId=self.shard_id, ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while not self.stop.is_set() and iterator:
            try:
                response = self.kinesis.get_records(ShardIterator=iterator, Limit=10_000)
                iterator = response.get("NextShardIterator")
                for record in response["Records"]:
                    self._add(record["Data"], record["ApproximateArrivalTimestamp"])
                if self.buffer and (self.size >= self.delivery.size_bytes
                                    or time.monotonic() - self.opened >= self.delivery.interval):  # fmt: skip
                    self._flush()
            except Exception:  # the local AWS went away (shutdown) or hiccuped: try again shortly
                log.exception("archive delivery failed on %s", self.shard_id)
                self.stop.wait(1)
                continue
            if not response["Records"]:
                self.stop.wait(IDLE_POLL_SECONDS)
        if self.buffer:  # what was read is written before the stack stops
            try:
                self._flush()
            except Exception:
                log.exception("archive delivery failed on %s while stopping", self.shard_id)

    def _add(self, data: bytes, arrival: datetime) -> None:
        if not self.buffer:
            self.opened = time.monotonic()
        record = data + (self.delivery.delimiter or b"")
        self.buffer.append((record, arrival))
        self.size += len(record)

    def _flush(self) -> None:
        by_prefix: dict[str, list[bytes]] = {}
        for record, arrival in self.buffer:
            by_prefix.setdefault(evaluate_prefix(self.delivery.prefix, arrival), []).append(record)
        now = datetime.now(UTC)
        for prefix, records in by_prefix.items():
            body = b"".join(records)
            extension = ""
            if self.delivery.compression == "GZIP":
                body, extension = gzip.compress(body), ".gz"
            key = f"{prefix}{self.delivery.name}-1-{now.strftime('%Y-%m-%d-%H-%M-%S')}-{uuid.uuid4()}{extension}"
            self.s3.put_object(Bucket=self.delivery.bucket, Key=key, Body=body)
        self.buffer, self.size = [], 0

"""The AWS side of the composition root: every adapter, built on boto3 (clients made lazily and
cached per container; ``AWS_ENDPOINT_URL`` honoured)."""

from __future__ import annotations

from collections.abc import Callable

from audience.adapters.dynamodb import DynamoModelRegistry, DynamoPrivacy, DynamoProfileRepository, StoreStats
from audience.adapters.eventbridge import EventBridgeSegmentEvents
from audience.adapters.kinesis import KinesisEventSink
from audience.adapters.s3 import S3ObjectStore
from audience.adapters.secrets import RotatingSecret
from audience.adapters.sqs import SqsDeadLetters, SqsWorkQueue


class AwsInfrastructure:
    def __init__(self) -> None:
        self._stats = StoreStats()  # what this container's profile requests cost

    def profiles(self, table: str) -> DynamoProfileRepository:
        repository = DynamoProfileRepository(table)
        repository.stats = self._stats
        return repository

    def registry(self, table: str) -> DynamoModelRegistry:
        return DynamoModelRegistry(table)

    def privacy(self, table: str) -> DynamoPrivacy:
        return DynamoPrivacy(table)

    def bucket(self, name: str) -> S3ObjectStore:
        return S3ObjectStore(name)

    def bus(self, name: str) -> EventBridgeSegmentEvents:
        return EventBridgeSegmentEvents(name)

    def events(self, stream: str) -> KinesisEventSink:
        return KinesisEventSink(stream)

    def queue(self, url: str) -> SqsWorkQueue:
        return SqsWorkQueue(url)

    def dead_letters(self, url: str) -> SqsDeadLetters:
        return SqsDeadLetters(url)

    def secret(self, name: str) -> Callable[[], list[str]]:
        return RotatingSecret(name).values

    def stats(self) -> StoreStats:
        return self._stats

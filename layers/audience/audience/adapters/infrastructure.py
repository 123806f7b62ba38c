"""The AWS side of the composition root: every adapter, built on boto3 (clients made lazily and
cached per container; ``AWS_ENDPOINT_URL`` honoured).

Each adapter's module is imported when the adapter is first built: a function loads only the
adapters its bundle holds (the webhook never imports the DynamoDB or S3 code).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from audience.adapters.dynamodb import DynamoProfileRepository
    from audience.adapters.eventbridge import EventBridgeSegmentEvents
    from audience.adapters.kinesis import KinesisEventSink
    from audience.adapters.privacy_table import DynamoModelRegistry, DynamoPrivacy
    from audience.adapters.s3 import S3ObjectStore
    from audience.adapters.sources import DynamoSources
    from audience.adapters.sqs import SqsDeadLetters, SqsWorkQueue
    from audience.adapters.table import StoreStats
    from audience.adapters.table_export import DynamoTableExports, ExportedProfiles


class AwsInfrastructure:
    def __init__(self) -> None:
        self._stats: StoreStats | None = None  # what this container's profile requests cost

    def profiles(self, table: str) -> DynamoProfileRepository:
        from audience.adapters.dynamodb import DynamoProfileRepository

        return DynamoProfileRepository(table, self.stats())

    def registry(self, table: str) -> DynamoModelRegistry:
        from audience.adapters.privacy_table import DynamoModelRegistry

        return DynamoModelRegistry(table)

    def privacy(self, table: str) -> DynamoPrivacy:
        from audience.adapters.privacy_table import DynamoPrivacy

        return DynamoPrivacy(table)

    def sources(self, table: str) -> DynamoSources:
        from audience.adapters.sources import DynamoSources

        return DynamoSources(table)

    def bucket(self, name: str) -> S3ObjectStore:
        from audience.adapters.s3 import S3ObjectStore

        return S3ObjectStore(name)

    def exports(self, table: str, bucket: str) -> DynamoTableExports:
        from audience.adapters.table_export import DynamoTableExports

        return DynamoTableExports(table, bucket)

    def exported(self, items: Callable[[], Iterable[dict[str, Any]]]) -> ExportedProfiles:
        from audience.adapters.table_export import ExportedProfiles

        return ExportedProfiles(items)

    def bus(self, name: str) -> EventBridgeSegmentEvents:
        from audience.adapters.eventbridge import EventBridgeSegmentEvents

        return EventBridgeSegmentEvents(name)

    def events(self, stream: str) -> KinesisEventSink:
        from audience.adapters.kinesis import KinesisEventSink

        return KinesisEventSink(stream)

    def queue(self, url: str) -> SqsWorkQueue:
        from audience.adapters.sqs import SqsWorkQueue

        return SqsWorkQueue(url)

    def dead_letters(self, url: str) -> SqsDeadLetters:
        from audience.adapters.sqs import SqsDeadLetters

        return SqsDeadLetters(url)

    def secret(self, name: str) -> Callable[[], list[str]]:
        from audience.adapters.secrets import RotatingSecret

        return RotatingSecret(name).values

    def stats(self) -> StoreStats:
        from audience.adapters.table import StoreStats

        self._stats = self._stats or StoreStats()
        return self._stats

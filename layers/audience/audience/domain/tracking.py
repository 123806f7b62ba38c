"""The Segment HTTP Tracking API's requests, read as Segment reads them.

``POST /v1/batch`` takes ``{"batch": [...], "context", "integrations", "sentAt", "writeKey"}``;
``POST /v1/<call>`` one message of that call type. Unlike the signed webhook, a bad message
does not sink its neighbours: every message is checked on its own, the valid ones are kept
and each refused one is reported with its field paths and reasons.

Time, as Segment does it: a message without ``timestamp`` takes ``originalTimestamp``; when the
sender says when it sent (``sentAt``, the message's or the batch's), its clock's skew is removed:
``timestamp + (receivedAt - sentAt)``. So a client whose clock runs 48 hours ahead is dated
right. What stays absurd after that correction is refused per message: a timestamp more than
one day after receipt, or older than ``MaxEventAgeDays``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from audience.domain.errors import FieldError, InvalidInput
from audience.domain.events import (
    Message,
    as_object,
    batch_items,
    field_errors,
    out_of_range,
    stamp,
    validate_message,
)
from audience.domain.money import Currencies

CALLS = ("track", "identify", "page", "screen", "group", "alias")
# analytics.js 2.0 (standard mode) posts each call to /v1/<its initial>: the same messages
BROWSER_CALLS = {call[0]: call for call in CALLS}
MAX_MESSAGE_BYTES = 32 * 1024  # Segment's limits
MAX_BATCH_BYTES = 500 * 1024


@dataclass
class TrackingBatch:
    """What a request carried: the messages to keep, and every refused one's fields and reasons."""

    messages: list[Message] = field(default_factory=list)
    refused: list[FieldError] = field(default_factory=list)
    refused_items: list[tuple[int, Any]] = field(default_factory=list)  # (position, the item as sent)


def write_key_in(body: Any) -> str | None:
    """The write key a body carries (Segment's Python library puts it there too)."""
    key = body.get("writeKey") if isinstance(body, dict) else None
    return key if isinstance(key, str) and key else None


def read_request(
    body: Any,
    call: str,
    received_at: datetime,
    currencies: Currencies,
    max_age: timedelta | None = None,
) -> TrackingBatch:
    """``body`` of ``POST /v1/<call>`` (``call`` is ``batch`` or one of ``CALLS``), message by
    message. ``InvalidInput`` only when the body cannot be read at all."""
    if not isinstance(body, dict):
        raise InvalidInput([FieldError("body", "must be a JSON object")])
    if call == "batch":
        items = batch_items(body)
        shared = {k: body[k] for k in ("context", "integrations", "sentAt") if k in body}
        prefixes = [f"batch[{i}]" for i in range(len(items))]
    else:
        items, shared, prefixes = [{"type": call, **body}], {}, [""]

    outcome = TrackingBatch()
    for position, (item, prefix) in enumerate(zip(items, prefixes, strict=True)):
        problems = _read_one(item, shared, prefix, received_at, currencies, max_age, outcome)
        if problems:
            outcome.refused += problems
            outcome.refused_items.append((position, item))
    return outcome


def _read_one(
    item: Any,
    shared: dict[str, Any],
    prefix: str,
    received_at: datetime,
    currencies: Currencies,
    max_age: timedelta | None,
    outcome: TrackingBatch,
) -> list[FieldError]:
    where = prefix or "body"
    if not isinstance(item, dict):
        return [FieldError(where, "must be a JSON object (a message)")]
    if len(json.dumps(item, separators=(",", ":")).encode()) > MAX_MESSAGE_BYTES:
        return [FieldError(where, f"a message is at most {MAX_MESSAGE_BYTES // 1024} KB")]
    raw = _normalised(item, shared)
    message, errors = validate_message(raw, currencies)
    if message is None:
        return field_errors(errors, prefix, raw)
    message = _without_skew(stamp(message, received_at), received_at)
    if (problem := out_of_range(message.timestamp, received_at, max_age)) is not None:
        return [FieldError(f"{prefix}.timestamp" if prefix else "timestamp", problem + " (after clock correction)")]
    outcome.messages.append(message)
    return []


def _normalised(item: dict[str, Any], shared: dict[str, Any]) -> dict[str, Any]:
    """The message with the batch's ``context`` and ``integrations`` under its own, its ``sentAt``
    (or the batch's), and RudderStack's top-level ``channel`` kept in ``context``."""
    context = {**as_object(shared.get("context")), **as_object(item.get("context"))}
    if isinstance(item.get("channel"), str):
        context.setdefault("channel", item["channel"])
    integrations = {**as_object(shared.get("integrations")), **as_object(item.get("integrations"))}
    raw = {**item, "context": context}
    if integrations:
        raw["integrations"] = integrations
    if raw.get("sentAt") is None and shared.get("sentAt") is not None:
        raw["sentAt"] = shared["sentAt"]
    return raw


def _without_skew(message: Message, received_at: datetime) -> Message:
    """``timestamp`` moved by the sender's clock skew (receivedAt - sentAt)."""
    if message.timestamp is None or message.sent_at is None:
        return message
    return message.model_copy(update={"timestamp": message.timestamp + (received_at - message.sent_at)})


# What the browser SDKs fetch before they send anything (they stop if it is missing or malformed).


class SegmentIoSettings(BaseModel):
    """Where analytics.js 2.0 sends: ``{protocol}://{apiHost}/t`` (standard) or ``/b`` (batching)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, serialize_by_alias=True)

    api_key: str = Field(alias="apiKey", description="the write key the SDK puts in every request")
    api_host: str = Field(alias="apiHost", description="host[:port][/prefix]/v1, without the scheme")
    protocol: Literal["http", "https"]
    add_bundled_metadata: bool = Field(default=True, alias="addBundledMetadata")
    unbundled_integrations: list[str] = Field(default_factory=list, alias="unbundledIntegrations")


class SegmentIntegrations(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, serialize_by_alias=True)

    segment_io: SegmentIoSettings = Field(alias="Segment.io")


class RemoteMetrics(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, serialize_by_alias=True)

    sample_rate: float = Field(default=0, alias="sampleRate", description="0: the SDK reports no metrics to Segment")


class BrowserSettings(BaseModel):
    """The settings document analytics.js 2.0 GETs from ``{cdnURL}/v1/projects/{writeKey}/settings``:
    our host as its only destination, no device-mode integrations, middleware or remote plugins,
    and no metrics sent to Segment."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, serialize_by_alias=True)

    integrations: SegmentIntegrations
    metrics: RemoteMetrics = Field(default_factory=RemoteMetrics)
    remote_plugins: list[dict[str, Any]] = Field(default_factory=list, alias="remotePlugins")
    enabled_middleware: dict[str, bool] = Field(default_factory=dict, alias="enabledMiddleware")
    middleware_settings: dict[str, Any] = Field(default_factory=dict, alias="middlewareSettings")
    legacy_video_plugins_enabled: bool = Field(default=False, alias="legacyVideoPluginsEnabled")


def browser_settings(write_key: str, api_host: str, protocol: Literal["http", "https"]) -> BrowserSettings:
    segment_io = SegmentIoSettings(api_key=write_key, api_host=api_host, protocol=protocol)
    return BrowserSettings(integrations=SegmentIntegrations(segment_io=segment_io))


class Switch(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, serialize_by_alias=True)

    enabled: bool = False


class StatsCollection(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, serialize_by_alias=True)

    errors: Switch = Field(default_factory=Switch, description="off: the SDK reports no errors to RudderStack")
    metrics: Switch = Field(default_factory=Switch)


class RudderSourceSettings(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, serialize_by_alias=True)

    stats_collection: StatsCollection = Field(default_factory=StatsCollection, alias="statsCollection")


class RudderSource(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, serialize_by_alias=True)

    id: str
    name: str
    write_key: str = Field(alias="writeKey")
    workspace_id: str = Field(default="audience-engine", alias="workspaceId")
    enabled: bool = True
    updated_at: AwareDatetime = Field(alias="updatedAt")
    config: RudderSourceSettings = Field(default_factory=RudderSourceSettings)
    destinations: list[dict[str, Any]] = Field(default_factory=list, description="no device-mode destinations")


class RudderSourceConfig(BaseModel):
    """What RudderStack's JS SDK v3 GETs from ``{configUrl}/sourceConfig/`` (it sends nothing
    without it): an enabled source, its config object, and an empty list of destinations."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, serialize_by_alias=True)

    is_hosted: bool = Field(default=False, alias="isHosted")
    source: RudderSource


def rudderstack_source_config(source: str, write_key: str, created_at: datetime) -> RudderSourceConfig:
    return RudderSourceConfig(source=RudderSource(id=source, name=source, write_key=write_key, updated_at=created_at))

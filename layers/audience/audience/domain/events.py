"""Segment Spec messages (https://segment.com/docs/connections/spec/) as typed models.

``parse_request`` turns an HTTP body (one message, or a ``{"batch": [...]}``) into validated
messages or raises :class:`InvalidInput` listing every failing field; nothing half-valid
gets through.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from audience.domain.errors import FieldError, InvalidInput, TooLarge
from audience.domain.money import Currencies, UnknownCurrency

MAX_BATCH = 500  # messages per request: one Kinesis PutRecords call
MAX_FUTURE = timedelta(days=1)  # clocks drift; a timestamp further ahead is a bug

# The Segment Spec e-commerce and email events that profiles understand; any other track event
# name is counted generically.
ORDER_COMPLETED = "Order Completed"
ORDER_REFUNDED = "Order Refunded"
PRODUCT_VIEWED = "Product Viewed"
PRODUCT_ADDED = "Product Added"
CART_VIEWED = "Cart Viewed"
CHECKOUT_STARTED = "Checkout Started"
EMAIL_OPENED = "Email Opened"
EMAIL_LINK_CLICKED = "Email Link Clicked"
EMAIL_UNSUBSCRIBED = "Email Unsubscribed"
ORDER_EVENTS = frozenset({ORDER_COMPLETED, ORDER_REFUNDED})

# Page behaviour sent as track events by the usual browser plugins (Segment has no spec for
# these; the names below are the ones the common plugins and guides use). The one place that
# says which names and property keys the profile folds into its engagement figures.
SCROLL_EVENTS = frozenset({"Scroll Depth Reached", "Scrolled", "Scroll Depth"})
SCROLL_KEYS = ("percent", "depth", "percentage", "scroll_depth")  # 0-100; "75%" is read as 75
TIME_EVENTS = frozenset({"Time On Page", "Page Unloaded"})  # "Page Unloaded": RudderStack JS v3 autotrack
TIME_KEYS = (("seconds", 1), ("timeOnPage", 1000))  # (property, units per second): RudderStack's timeOnPage is in ms
CLICK_EVENTS = frozenset({"Element Clicked", "Clicked", "Link Clicked", "Button Clicked"})
ENGAGEMENT_EVENTS = SCROLL_EVENTS | TIME_EVENTS | CLICK_EVENTS
CONTENT_CATEGORY_KEY = "category"  # a page's or screen's properties.category (Segment's page(category, name))
SESSION_KEY = "sessionId"  # context.sessionId: RudderStack's SDKs (JS v3, mobile) send it on every event

RECOGNISED_EVENTS = (
    ORDER_EVENTS
    | {
        PRODUCT_VIEWED,
        PRODUCT_ADDED,
        CART_VIEWED,
        CHECKOUT_STARTED,
        EMAIL_OPENED,
        EMAIL_LINK_CLICKED,
        EMAIL_UNSUBSCRIBED,
    }
    | ENGAGEMENT_EVENTS
)

_MESSAGE_ID_NAMESPACE = uuid.UUID("6f1c2d8e-3b4a-4c5d-9e7f-0a1b2c3d4e5f")

Text = Annotated[str, Field(min_length=1, max_length=512)]


def _number_as_text(value: Any) -> Any:
    """Ids sent as JSON numbers (raw HTTP senders do) are the same ids as strings, as the SDKs send them."""
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


Id = Annotated[str, BeforeValidator(_number_as_text), Field(min_length=1, max_length=512)]


def _empty_as_absent(value: Any) -> Any:
    """An empty id is no id: RudderStack's JS SDK sends ``"userId": ""`` until identify."""
    return None if value == "" else value


OptionalId = Annotated[Id | None, BeforeValidator(_empty_as_absent)]


class _Message(BaseModel):
    """Fields common to every Segment Spec message."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    user_id: OptionalId = Field(default=None, alias="userId")
    anonymous_id: OptionalId = Field(default=None, alias="anonymousId")
    message_id: Text | None = Field(default=None, alias="messageId")
    timestamp: AwareDatetime | None = None
    sent_at: AwareDatetime | None = Field(default=None, alias="sentAt")
    received_at: AwareDatetime | None = Field(default=None, alias="receivedAt")
    context: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _original_timestamp(cls, data: Any) -> Any:
        """Segment's libraries send ``originalTimestamp`` when the client's clock set no ``timestamp``."""
        if isinstance(data, dict) and data.get("timestamp") is None and data.get("originalTimestamp") is not None:
            return {**data, "timestamp": data["originalTimestamp"]}
        return data

    @model_validator(mode="after")
    def _needs_an_identity(self) -> _Message:
        if self.user_id is None and self.anonymous_id is None:
            raise ValueError("either userId or anonymousId is required")
        return self

    @property
    def customer_id(self) -> str:
        """The id the sender knows this person by: the user id, else the anonymous id.
        (The stream resolves it to the customer's profile through identity links.)"""
        return self.user_id or self.anonymous_id  # type: ignore[return-value]

    @property
    def identities(self) -> tuple[str, ...]:
        return tuple(i for i in (self.user_id, self.anonymous_id) if i is not None)

    @property
    def occurred_at(self) -> datetime:
        """When the event happened, by the sender's clock, falling back to when we received it."""
        moment = self.timestamp or self.received_at
        assert moment is not None, "stamp() sets receivedAt before a message travels inward"
        return moment


class Track(_Message):
    type: Literal["track"]
    event: Text
    properties: dict[str, Any] = Field(default_factory=dict)


class Identify(_Message):
    type: Literal["identify"]
    traits: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _traits_in_context(cls, data: Any) -> Any:
        """RudderStack's libraries send identify traits in ``context.traits``."""
        if isinstance(data, dict) and not data.get("traits"):
            context = data.get("context")
            if isinstance(context, dict) and isinstance(context.get("traits"), dict):
                return {**data, "traits": context["traits"]}
        return data

    @field_validator("traits")
    @classmethod
    def _check_traits(cls, traits: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        if not (info.context or {}).get("validated"):  # the stream decodes what ingest checked
            # imported here, not at the top: keeps email-validator off the stream function's cold start
            from audience.domain.traits import Traits

            Traits.model_validate(traits)
        return traits


class Alias(_Message):
    """``previousId`` (an anonymous or older user id) and ``userId`` are the same person."""

    type: Literal["alias"]
    user_id: Id = Field(alias="userId")
    previous_id: Id = Field(alias="previousId")

    @property
    def identities(self) -> tuple[str, ...]:
        return (self.user_id, self.previous_id)


class Page(_Message):
    type: Literal["page"]
    name: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)


class Screen(_Message):
    type: Literal["screen"]
    name: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)


class Group(_Message):
    """The customer belongs to an account (a company, a team, a household) with these traits."""

    type: Literal["group"]
    group_id: Id = Field(alias="groupId")
    traits: dict[str, Any] = Field(default_factory=dict)


Message = Annotated[Track | Identify | Page | Screen | Group | Alias, Field(discriminator="type")]
_MESSAGE: TypeAdapter[Message] = TypeAdapter(Message)


class Product(BaseModel):
    model_config = ConfigDict(extra="ignore")

    product_id: str | None = Field(default=None, validation_alias=AliasChoices("product_id", "sku"))
    name: str | None = None
    category: str | None = None
    price: Decimal = Field(default=Decimal(0), ge=0)
    quantity: int = Field(default=1, ge=0)


class Order(BaseModel):
    """The properties of an ``Order Completed`` or ``Order Refunded`` event that profiles use."""

    model_config = ConfigDict(extra="ignore")

    order_id: str | None = None
    total: Decimal | None = Field(default=None, ge=0)
    revenue: Decimal | None = Field(default=None, ge=0)
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    products: list[Product] = Field(default_factory=list)

    @property
    def amount(self) -> Decimal:
        """Segment sends ``total`` (with tax and shipping) or ``revenue``; prefer ``total``."""
        return self.total if self.total is not None else (self.revenue or Decimal(0))


def parse_order(track: Track) -> Order:
    """Read the order of an order event (already checked by ``parse_request``)."""
    return Order.model_validate(track.properties)


def parse_request(
    body: Any,
    received_at: datetime,
    currencies: Currencies | None = None,
    max_age: timedelta | None = None,
) -> list[Message]:
    """Validate a Segment HTTP API body: one message, or ``{"batch": [...]}`` of at most
    ``MAX_BATCH`` (``TooLarge`` beyond).

    Batch-level ``context`` is merged under each message's own, as Segment's batch endpoint does.
    An order's currency must be one ``currencies`` can convert; a ``timestamp`` may be at most
    ``MAX_FUTURE`` ahead of ``received_at`` and ``max_age`` behind it. Raises
    :class:`InvalidInput` with every failing field; returns nothing partial.
    """
    currencies = currencies or Currencies()
    if not isinstance(body, dict):
        raise InvalidInput([FieldError("body", "must be a JSON object")])
    if "batch" in body:
        batch = batch_items(body)
        raw = [with_context(item, as_object(body.get("context"))) for item in batch]
        prefixes = [f"batch[{i}]" for i in range(len(raw))]
    else:
        raw, prefixes = [body], [""]

    messages: list[Message] = []
    errors: list[FieldError] = []
    for item, prefix in zip(raw, prefixes, strict=True):
        message, problems = validate_message(item, currencies)
        errors.extend(field_errors(problems, prefix, item))
        if message is None:
            continue
        if (problem := out_of_range(message.timestamp, received_at, max_age)) is not None:
            errors.append(FieldError(f"{prefix}.timestamp" if prefix else "timestamp", problem))
        messages.append(stamp(message, received_at))
    if errors:
        raise InvalidInput(errors)
    return messages


def out_of_range(timestamp: datetime | None, received_at: datetime, max_age: timedelta | None) -> str | None:
    if timestamp is None:
        return None
    if timestamp > received_at + MAX_FUTURE:
        return f"more than {MAX_FUTURE.days} day in the future (check the sender's clock)"
    if max_age is not None and timestamp < received_at - max_age:
        return f"more than {max_age.days} days in the past (import old history from a file instead)"
    return None


def stamp(message: Message, received_at: datetime) -> Message:
    """Set ``receivedAt``, times in UTC, and a deterministic ``messageId`` when the sender gave none.

    The id is derived from the message's content, so a client that retries the same
    payload produces the same id and the profile engine can recognise the repeat.
    """
    updates: dict[str, Any] = {"received_at": received_at.astimezone(UTC)}
    for name in ("timestamp", "sent_at"):  # stored in UTC, whatever offset the sender wrote
        if (moment := getattr(message, name)) is not None:
            updates[name] = moment.astimezone(UTC)
    if message.message_id is None:
        canonical = json.dumps(message.model_dump(mode="json", by_alias=True, exclude_none=True), sort_keys=True)
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        updates["message_id"] = str(uuid.uuid5(_MESSAGE_ID_NAMESPACE, digest))
    return message.model_copy(update=updates)


def message_from_json(data: bytes | str) -> Message:
    """Decode a message that ingest already validated (as stored on the stream): the envelope
    is checked again (a stream may have other producers), the costly trait checks are not."""
    return _MESSAGE.validate_json(data, context={"validated": True})


def message_to_json(message: Message) -> bytes:
    return message.model_dump_json(by_alias=True, exclude_none=True).encode()


def validate_message(item: Any, currencies: Currencies) -> tuple[Message | None, list[ErrorDetails]]:
    """The message, or every error in it: the envelope's and, for an order, its properties'."""
    message, errors = None, []
    try:
        message = _MESSAGE.validate_python(item)
    except ValidationError as exc:
        errors.extend(exc.errors())
    event = item.get("event") if isinstance(item, dict) else None
    if isinstance(event, str) and item.get("type") == "track" and event in ORDER_EVENTS:
        try:
            order = Order.model_validate(item.get("properties") or {})
        except ValidationError as exc:
            errors.extend({**e, "loc": ("properties", *e["loc"])} for e in exc.errors())
        else:
            try:
                currencies.to_base(Decimal(1), order.currency)
            except UnknownCurrency as unknown:
                errors.append(
                    {"type": "currency", "loc": ("properties", "currency"), "msg": str(unknown), "input": None}
                )
    return (None if errors else message), errors


def batch_items(body: dict[str, Any]) -> list[Any]:
    """The messages of ``{"batch": [...]}``: a non-empty list of at most ``MAX_BATCH``."""
    batch = body.get("batch")
    if not isinstance(batch, list) or not batch:
        raise InvalidInput([FieldError("batch", "must be a non-empty list of messages")])
    if len(batch) > MAX_BATCH:
        raise TooLarge(f"a batch holds at most {MAX_BATCH} messages, this one {len(batch)}")
    return batch


def with_context(item: Any, shared: dict[str, Any]) -> Any:
    if not shared or not isinstance(item, dict):
        return item
    return {**item, "context": {**shared, **as_object(item.get("context"))}}


def as_object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def field_errors(errors: list[ErrorDetails], prefix: str, item: Any) -> list[FieldError]:
    tag = item.get("type") if isinstance(item, dict) else None
    found = []
    for error in errors:
        loc = list(error["loc"])
        if loc and loc[0] == tag:  # the discriminated union puts the tag first; users never wrote it
            loc = loc[1:]
        path = prefix
        for part in loc:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        reason = error["msg"]
        if error["type"] == "union_tag_invalid":
            reason = "type must be one of 'track', 'identify', 'page', 'screen', 'group', 'alias'"
            path = f"{prefix}.type" if prefix else "type"
        elif error["type"] == "union_tag_not_found":
            reason = "type is required ('track', 'identify', 'page', 'screen', 'group' or 'alias')"
            path = f"{prefix}.type" if prefix else "type"
        found.append(FieldError(path or "body", reason.removeprefix("Value error, ")))
    return found

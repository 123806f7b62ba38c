"""The read API's customer answers, built from the profile, so ``docs/openapi.json`` describes
every answer a client gets. Every view is camelCase on the wire through one alias generator
(``View``); the domain entities know nothing of the public shape."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, JsonValue
from pydantic.alias_generators import to_camel

from audience.domain.events import (
    CART_VIEWED,
    CHECKOUT_STARTED,
    EMAIL_LINK_CLICKED,
    EMAIL_OPENED,
    PRODUCT_ADDED,
    PRODUCT_VIEWED,
)
from audience.domain.personalization import Arm, Choice, Content, ContentMapping
from audience.domain.predictions import Driver, Predictions
from audience.domain.privacy import AuditEntry
from audience.domain.profile import OTHER, PURPOSES, WINDOWS_DAYS, Browsing, Profile
from audience.domain.segments import SegmentChange, SegmentEvent, Segments, Tier

TOP_CATEGORIES = 5  # categories the profile shows, by spend


def absent(value: object) -> bool:
    """For ``exclude_if``: a field left out of the answer when it has no value."""
    return value is None


def as_json(value: object) -> JsonValue:
    """Traits as sent, with numbers as JSON numbers (read back from DynamoDB they are ``Decimal``;
    strings, booleans and None are JSON already)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {str(k): as_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_json(v) for v in value]
    return value  # type: ignore[return-value]


def iso(moment: datetime | None) -> str | None:
    """An instant as the API writes it: ISO 8601, UTC as ``Z``."""
    return moment.isoformat().replace("+00:00", "Z") if moment else None


class View(BaseModel):
    """A response body: snake_case in Python, camelCase on the wire (and accepted either way,
    so a view also reads the stored metrics documents, whatever their keys' case)."""

    model_config = ConfigDict(frozen=True, alias_generator=to_camel, populate_by_name=True, serialize_by_alias=True)


class Rfm(View):
    orders: int
    revenue: float
    refunds: int
    refunded: float
    net_revenue: float
    average_order_value: float | None
    first_order_at: str | None
    last_order_at: str | None
    days_since_last_order: int | None
    mean_days_between_orders: float | None

    @classmethod
    def of(cls, profile: Profile, as_of: datetime) -> Rfm:
        average = (profile.revenue / profile.orders).quantize(Decimal("0.01")) if profile.orders else None
        return cls(
            orders=profile.orders,
            revenue=float(profile.revenue),
            refunds=profile.refunds,
            refunded=float(profile.refunded),
            net_revenue=float(profile.revenue - profile.refunded),
            average_order_value=float(average) if average is not None else None,
            first_order_at=iso(profile.first_order_at),
            last_order_at=iso(profile.last_order_at),
            days_since_last_order=(as_of - profile.last_order_at).days if profile.last_order_at else None,
            mean_days_between_orders=profile.mean_days_between_orders,
        )


class Window(View):
    orders: int
    revenue: float


class EngagementWindow(View):
    """Page behaviour over a rolling window (UTC days)."""

    page_views: int = Field(description="page and screen calls")
    sessions: int = Field(
        description="per day: distinct context.sessionId values, plus, for browsing without one, runs of "
        "consecutive active half hours"
    )
    seconds_on_site: int = Field(description="time on page reported by the page's plugins, at most an hour a page")
    clicks: int
    max_scroll_depth: int = Field(description="percent (0: none reported)")

    @classmethod
    def of(cls, seen: Browsing) -> EngagementWindow:
        return cls(page_views=seen.page_views, sessions=seen.sessions, seconds_on_site=seen.seconds,
                   clicks=seen.clicks, max_scroll_depth=seen.max_scroll)  # fmt: skip


class ContentViews(View):
    category: str = Field(description="a page's or screen's properties.category")
    views: int


class Engagement(View):
    page_views: int = Field(description="page and screen calls")
    product_views: int
    cart_adds: int
    cart_views: int
    checkouts_started: int
    email_opens: int
    email_clicks: int
    click_through_rate: float | None
    unsubscribed: bool
    screen_views: int = Field(description="of the page views, the screen calls (apps)")
    seconds_on_site: int = Field(description="all time: time on page reported, at most an hour a page")
    clicks: int = Field(description="all time: clicks reported by the page's plugins")
    max_scroll_depth: int | None = Field(description="all time, percent (none: never reported)")
    last_page_at: str | None = Field(description="the latest page or screen view")
    content_categories: list[ContentViews] = Field(description=f"the {TOP_CATEGORIES} most viewed, by views")
    windows: dict[str, EngagementWindow] = Field(description="rolling windows: 30d, 90d")

    @classmethod
    def of(cls, profile: Profile, as_of: datetime) -> Engagement:
        tracked, counted = profile.track_counts, profile.event_counts
        opens, clicks = tracked.get(EMAIL_OPENED, 0), tracked.get(EMAIL_LINK_CLICKED, 0)
        viewed = sorted((-v, c) for c, v in profile.content_views.items() if c != OTHER)[:TOP_CATEGORIES]
        return cls(
            page_views=counted.get("page", 0) + counted.get("screen", 0),
            product_views=tracked.get(PRODUCT_VIEWED, 0),
            cart_adds=tracked.get(PRODUCT_ADDED, 0),
            cart_views=tracked.get(CART_VIEWED, 0),
            checkouts_started=tracked.get(CHECKOUT_STARTED, 0),
            email_opens=opens,
            email_clicks=clicks,
            click_through_rate=round(clicks / opens, 4) if opens else None,
            unsubscribed=profile.unsubscribed_at is not None,
            screen_views=counted.get("screen", 0),
            seconds_on_site=profile.seconds_on_site,
            clicks=profile.clicks,
            max_scroll_depth=profile.max_scroll_depth,
            last_page_at=iso(profile.last_page_at),
            content_categories=[ContentViews(category=c, views=-v) for v, c in viewed],
            windows={f"{days}d": EngagementWindow.of(profile.browsing(days, as_of)) for days in WINDOWS_DAYS},
        )


class Context(View):
    """The latest values the customer's events carried (each absent until one did)."""

    device_type: str | None = Field(default=None, exclude_if=absent)
    country: str | None = Field(default=None, exclude_if=absent)
    locale: str | None = Field(default=None, exclude_if=absent)
    timezone: str | None = Field(default=None, exclude_if=absent)
    preferred_hour: int | None = Field(description="the local hour most events arrive in")

    @classmethod
    def of(cls, profile: Profile) -> Context:
        hours = profile.hours
        return cls.model_validate(
            {name: stamped.v for name, stamped in profile.context.items()}
            | {"preferredHour": hours.index(max(hours)) if any(hours) else None}
        )


class CategorySpend(View):
    category: str
    spend: float


class GroupView(View):
    group_id: str = Field(description="the account: a company, a team, a household")
    traits: dict[str, JsonValue] = Field(description="the group's traits as last sent")
    at: str = Field(description="when they were sent")


class PurposeConsent(View):
    granted: bool
    at: str | None = Field(default=None, description="when it was decided (absent: never asked)", exclude_if=absent)
    source: str | None = Field(default=None, description="identify, import, api or console", exclude_if=absent)


def consent_of(profile: Profile) -> dict[str, PurposeConsent]:
    """Every purpose's consent: granted unless refused, with when and where it was decided."""
    shown = {}
    for purpose in PURPOSES:
        state = profile.consent.get(purpose)
        decided = {"at": iso(state.at), "source": state.source} if state else {}
        shown[purpose] = PurposeConsent(granted=profile.allows(purpose), **decided)
    return shown


class PredictionsView(Predictions):
    """The value model's predictions, with the top drivers of the churn risk by the model in force
    (occlusion: how much the risk would fall were the customer typical in that one feature)."""

    churn_drivers: list[Driver] = Field(default_factory=list, alias="churnDrivers")


class CustomerView(View):
    """``GET /v1/customers/{customerId}``: the unified profile, as of the request."""

    customer_id: str
    identities: list[str]
    currency: str
    first_seen: str | None
    last_seen: str | None
    rfm: Rfm
    windows: dict[str, Window] = Field(description="rolling windows: 30d, 90d")
    engagement: Engagement
    context: Context
    top_categories: list[CategorySpend]
    traits: dict[str, JsonValue] = Field(description="identify traits as sent (contact details as keyed hashes)")
    groups: list[GroupView] = Field(description="the accounts the customer belongs to (group calls)")
    consent: dict[str, PurposeConsent] = Field(description="analytics, personalization, marketing")
    segments: Segments | None
    tier: Tier | None
    predictions: PredictionsView | None = Field(description="the value model's; absent for customers with no order")
    segment_ids: list[str]
    last_segment_change: SegmentChange | None
    event_counts: dict[str, int]
    track_counts: dict[str, int]

    @classmethod
    def of(cls, profile: Profile, as_of: datetime, currency: str, drivers: Sequence[Driver] = ()) -> CustomerView:
        """The profile with its windows and rates computed at ``as_of``; ``drivers``: the churn
        risk's, by the value model in force."""
        predicted = profile.predictions
        return cls(
            customer_id=profile.customer_id,
            identities=profile.identities,
            currency=currency,
            first_seen=iso(profile.first_seen),
            last_seen=iso(profile.last_seen),
            rfm=Rfm.of(profile, as_of),
            windows={f"{days}d": Window.model_validate(profile.window(days, as_of)) for days in WINDOWS_DAYS},
            engagement=Engagement.of(profile, as_of),
            context=Context.of(profile),
            top_categories=top_categories(profile),
            traits={name: as_json(stamped.v) for name, stamped in sorted(profile.traits.items())},
            groups=[
                GroupView(group_id=group, traits=as_json(stamped.v), at=iso(stamped.at) or "")  # type: ignore[arg-type]
                for group, stamped in sorted(profile.groups.items())
            ],
            consent=consent_of(profile),
            segments=profile.segments,
            tier=profile.tier,
            predictions=PredictionsView(**predicted.model_dump(), churn_drivers=list(drivers)) if predicted else None,
            segment_ids=profile.segment_ids(),
            last_segment_change=profile.segment_history[-1] if profile.segment_history else None,
            event_counts=profile.event_counts,
            track_counts=profile.track_counts,
        )


def top_categories(profile: Profile) -> list[CategorySpend]:
    """The categories the customer spent most in (the overflow bucket left out)."""
    spent = sorted(((s, c) for c, s in profile.category_spend.items() if c != OTHER), reverse=True)
    return [CategorySpend(category=c, spend=float(s)) for s, c in spent[:TOP_CATEGORIES]]


class ConsentView(View):
    """``PUT /v1/customers/{customerId}/consent``: the customer's consent after the change."""

    customer_id: str
    consent: dict[str, PurposeConsent]

    @classmethod
    def of(cls, profile: Profile) -> ConsentView:
        return cls(customer_id=profile.customer_id, consent=consent_of(profile))


class StoredProfile(Profile):
    """The profile as stored, every field (the write bookkeeping left out)."""

    outbox: list[SegmentEvent] = Field(default_factory=list, exclude=True)
    version: int = Field(default=0, exclude=True)


class Export(View):
    """``GET /v1/customers/{customerId}/export``: everything held about the customer."""

    customer_id: str
    exported_at: str = Field(description="ISO 8601")
    profile: StoredProfile = Field(description="the stored profile, every field")
    audit: list[AuditEntry]


class CustomerMatches(View):
    """``GET /v1/customers?email=|phone=``: the customers with that contact detail (often one;
    several profiles may share a household email), in id order."""

    customers: list[str] = Field(description="their customer ids: GET /v1/customers/{id} for each")


class WebPersonalization(View):
    """``GET /v1/web/personalization``: what a page shows its visitor, keyed by a source's write
    key, so anything here is public to whoever holds the page. What to show and why at the
    coarsest: no customer id, no traits, no contact details, no scores, no reason (a segment's
    reason names what the customer did). An unknown visitor gets the default content, an answer
    of the same shape as a known visitor's who is shown the default: the route does not tell
    who exists."""

    personalized: bool = Field(description="false: the default content (unknown visitor, no consent, holdout, no rule)")
    content: Content
    segment: str | None = Field(description="the name of the segment that chose the content")
    experiment: Arm | None = Field(description="the experiment and variant the visitor is in (exposure recorded)")

    @classmethod
    def of(cls, choice: Choice, segment_names: Mapping[str, str]) -> WebPersonalization:
        """The public part of the server route's choice; ``segment_names``: segment id -> name."""
        segment = choice.segment_id
        return cls(
            personalized=choice.personalized,
            content=choice.content,
            segment=segment_names.get(segment, segment.partition(":")[2]) if segment else None,
            experiment=choice.experiment,
        )

    @classmethod
    def default(cls, mapping: ContentMapping) -> WebPersonalization:
        """What a visitor nobody knows is shown."""
        return cls(personalized=False, content=mapping.default, segment=None, experiment=None)

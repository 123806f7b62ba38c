"""The read API's response bodies, so ``docs/openapi.json`` describes every answer a client gets."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from audience.domain.experiments import Experiment
from audience.domain.predictions import Driver, Predictions
from audience.domain.privacy import AuditEntry
from audience.domain.segments import SegmentChange, Segments, Tier


def _absent(value: object) -> bool:
    return value is None


class View(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)


class Rfm(View):
    orders: int
    revenue: float
    refunds: int
    refunded: float
    net_revenue: float = Field(alias="netRevenue")
    average_order_value: float | None = Field(alias="averageOrderValue")
    first_order_at: str | None = Field(alias="firstOrderAt")
    last_order_at: str | None = Field(alias="lastOrderAt")
    days_since_last_order: int | None = Field(alias="daysSinceLastOrder")
    mean_days_between_orders: float | None = Field(alias="meanDaysBetweenOrders")


class Window(View):
    orders: int
    revenue: float


class Engagement(View):
    page_views: int = Field(alias="pageViews")
    product_views: int = Field(alias="productViews")
    cart_adds: int = Field(alias="cartAdds")
    cart_views: int = Field(alias="cartViews")
    checkouts_started: int = Field(alias="checkoutsStarted")
    email_opens: int = Field(alias="emailOpens")
    email_clicks: int = Field(alias="emailClicks")
    click_through_rate: float | None = Field(alias="clickThroughRate")
    unsubscribed: bool


class Context(View):
    """The latest values the customer's events carried (each absent until one did)."""

    device_type: str | None = Field(default=None, alias="deviceType", exclude_if=_absent)
    country: str | None = Field(default=None, exclude_if=_absent)
    locale: str | None = Field(default=None, exclude_if=_absent)
    timezone: str | None = Field(default=None, exclude_if=_absent)
    preferred_hour: int | None = Field(alias="preferredHour", description="the local hour most events arrive in")


class CategorySpend(View):
    category: str
    spend: float


class GroupView(View):
    group_id: str = Field(alias="groupId", description="the account: a company, a team, a household")
    traits: dict[str, Any] = Field(description="the group's traits as last sent")
    at: str = Field(description="when they were sent")


class ConsentState(View):
    granted: bool
    at: str | None = Field(default=None, description="when it was decided (absent: never asked)", exclude_if=_absent)
    source: str | None = Field(default=None, description="identify, import or api", exclude_if=_absent)


class PredictionsView(Predictions):
    """The value model's predictions, with the top drivers of the churn risk by the model in force
    (occlusion: how much the risk would fall were the customer typical in that one feature)."""

    churn_drivers: list[Driver] = Field(default_factory=list, alias="churnDrivers")


class CustomerView(View):
    """``GET /v1/customers/{customerId}``: the unified profile, as of the request."""

    customer_id: str = Field(alias="customerId")
    identities: list[str]
    currency: str
    first_seen: str | None = Field(alias="firstSeen")
    last_seen: str | None = Field(alias="lastSeen")
    rfm: Rfm
    windows: dict[str, Window] = Field(description="rolling windows: 30d, 90d")
    engagement: Engagement
    context: Context
    top_categories: list[CategorySpend] = Field(alias="topCategories")
    traits: dict[str, Any] = Field(description="identify traits as sent (contact details as keyed hashes)")
    groups: list[GroupView] = Field(description="the accounts the customer belongs to (group calls)")
    consent: dict[str, ConsentState] = Field(description="analytics, personalization, marketing")
    segments: Segments | None
    tier: Tier | None
    predictions: PredictionsView | None = Field(description="the value model's; absent for customers with no order")
    segment_ids: list[str] = Field(alias="segmentIds")
    last_segment_change: SegmentChange | None = Field(alias="lastSegmentChange")
    event_counts: dict[str, int] = Field(alias="eventCounts")
    track_counts: dict[str, int] = Field(alias="trackCounts")


class ConsentView(View):
    """``PUT /v1/customers/{customerId}/consent``: the customer's consent after the change."""

    customer_id: str = Field(alias="customerId")
    consent: dict[str, ConsentState]


class Export(View):
    """``GET /v1/customers/{customerId}/export``: everything held about the customer."""

    customer_id: str = Field(alias="customerId")
    exported_at: str = Field(alias="exportedAt", description="ISO 8601")
    profile: dict[str, Any] = Field(description="the stored profile, every field")
    audit: list[AuditEntry]


class PurchaseModelView(View):
    kind: str = Field(description="bgnbd or mbgnbd")
    time_unit: str = Field(alias="timeUnit", description="the unit of t, T and 1/alpha: day")
    name: str
    parameters: dict[str, float] = Field(description="r, alpha, a, b")
    log_likelihood: float = Field(alias="logLikelihood")
    chosen_because: str = Field(alias="chosenBecause")


class SpendModelView(View):
    parameters: dict[str, float] = Field(description="Gamma-Gamma p, q, v")
    log_likelihood: float = Field(alias="logLikelihood")


class HoldoutRow(View):
    x: int | str = Field(description="repeat order days in the calibration period (the last row: 7+)")
    customers: int
    actual: float = Field(description="mean order days in the holdout")
    predicted: float


class HoldoutView(View):
    log_likelihood: float = Field(alias="logLikelihood")
    parameters: dict[str, float]
    mae: float = Field(description="per-customer mean absolute error of order days in the holdout")
    correlation: float | None
    predicted_total: float = Field(alias="predictedTotal")
    actual_total: float = Field(alias="actualTotal")
    by_repeat_days: list[HoldoutRow] = Field(alias="byRepeatDays")


class Holdout(View):
    days: int
    candidates: dict[str, HoldoutView] = Field(description="BG/NBD and MBG/NBD on the same split")


class ValueModelView(View):
    """``GET /v1/models/value``: the value model in force, how it was chosen and how it scored."""

    version: str
    as_of: str = Field(alias="asOf")
    calibration_end: str = Field(alias="calibrationEnd")
    buyers: int
    repeat_buyers: int = Field(alias="repeatBuyers")
    purchase_model: PurchaseModelView = Field(alias="purchaseModel")
    spend_model: SpendModelView = Field(alias="spendModel")
    holdout: Holdout
    churn: dict[str, Any] = Field(description="trees against BG/NBD on the holdout: AUC, log loss, Brier, calibration")
    clv: dict[str, float] = Field(description="buyers' 12-month value: mean, median, p90, total")
    report: str = Field(description="the report's key in the data bucket")


class Stability(View):
    mean: float = Field(description="mean adjusted Rand index of refits on bootstrap resamples")
    worst: float | None = Field(description="the worst refit (none for models trained before it was kept)")


class LearnedSegmentView(View):
    id: str = Field(description="as GET /v1/segments lists it: learned:<slug>")
    segment: int
    name: str
    description: str
    share: float = Field(description="of the customers it was trained on")
    size: int = Field(description="customers in it at training")
    revenue_share: float | None = Field(alias="revenueShare", description="of their net revenue, at training")


class SegmentModelView(View):
    """``GET /v1/models/segments[/{version}]``: a segmentation model, how it was chosen and how it scored."""

    version: str
    active: bool
    kind: str = Field(description="kmeans")
    k: int
    rows: int = Field(description="customers it was trained on")
    choice: str | None = Field(description="why this k")
    silhouette: float
    stability: Stability
    segments: list[LearnedSegmentView]
    candidates: dict[str, list[dict[str, Any]]] = Field(description="every k tried, per family, with its scores")
    decision: dict[str, Any] | None = Field(description="promoted or not, and why")


class ExperimentResults(View):
    """``GET /v1/experiments/{experimentId}/results`` (computed daily by the retrain function's
    ``measure`` action). Each variant row: exposed, converted, conversion, revenuePerCustomer,
    averageOrderValue and, against the control, conversionLift and revenueLift (control,
    treatment, absolute with its 95% interval low/high, relative with relative_low/relative_high,
    p_value, significant)."""

    experiment: str
    as_of: str = Field(alias="asOf")
    control: str
    window_days: int = Field(alias="windowDays")
    windows_still_open: int = Field(
        alias="windowsStillOpen", description="exposed customers whose window has not closed"
    )
    sample_ratio: dict[str, Any] = Field(
        alias="sampleRatio", description="counts, chi-square pValue, mismatch (p < 0.001)"
    )
    variants: dict[str, dict[str, Any]]
    segments: dict[str, dict[str, dict[str, Any]]] = Field(description="the same table per segment at first exposure")


class ExperimentView(Experiment):
    status: Literal["scheduled", "running", "ended"]


class ExperimentList(View):
    """``GET /v1/experiments``: the experiments document in force, each with its status now."""

    holdout: float = Field(description="the share of customers who never get personalized content")
    experiments: list[ExperimentView]

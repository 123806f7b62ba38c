"""``/v1/experiments``' answers: the experiments in force and an experiment's results (read from
the document the measure job stores, its lifts snake_case, and answered camelCase)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from audience.api.views import View, absent
from audience.domain.experiments import Experiment

Interval = tuple[float, float]


class Adjusted(View):
    """The lift corrected for the many comparisons: Holm across the experiment's metrics and
    treatments (the variants table), Benjamini-Hochberg across its segments (the segments')."""

    method: Literal["holm", "benjamini-hochberg"]
    p_value: float = Field(description="the fixed-horizon p-value, adjusted")
    sequential_p_value: float = Field(description="the always-valid p-value, adjusted")
    sequential_low: float = Field(description="the confidence sequence at the adjusted level")
    sequential_high: float
    alpha: float = Field(description="the level of the adjusted sequence: 0.05/m (Holm), 0.05·R/m (BH)")


class Lift(View):
    """A variant against the control: the two arms' figures; fixed horizon (valid read once, at
    the planned end): the absolute lift with its 95% interval, the relative lift with its
    interval (log scale), the p-value; always valid (read at any time, as often as wanted): the
    95% confidence sequences and their p-value. Undefined figures (a control of zero) are null."""

    control: float | None = Field(description="the control's rate or mean")
    treatment: float | None
    absolute: float | None = Field(description="treatment - control")
    low: float | None = Field(description="fixed horizon: the absolute lift's 95% interval")
    high: float | None
    relative: float | None = Field(description="treatment / control - 1")
    relative_low: float | None
    relative_high: float | None
    p_value: float | None = Field(description="fixed horizon")
    significant: bool = Field(description="fixed horizon: p < 0.05")
    # (absent from results stored before issue 27, until the next measure)
    sequential_low: float | None = Field(
        default=None, description="always valid: the absolute lift's 95% confidence sequence"
    )
    sequential_high: float | None = None
    sequential_relative_low: float | None = None
    sequential_relative_high: float | None = None
    sequential_p_value: float | None = Field(
        default=None, description="always valid: the smallest level whose sequence excludes 0"
    )
    sequentially_significant: bool | None = Field(default=None, description="always valid: the sequence excludes 0")
    adjusted: Adjusted | None = Field(default=None, description="corrected for many comparisons", exclude_if=absent)


class AdjustedLift(Lift):
    variance_reduction: float = Field(description="the share of the revenue's variance the covariates explain")


class Guardrail(Lift):
    harmed: bool = Field(description="the refunds' always-valid sequence lies above zero: the variant raised them")


class VariantResult(View):
    """One variant's row (the lifts only for a treatment with more than one customer per arm)."""

    exposed: int
    converted: int = Field(description="ordered within the window")
    conversion: float | None
    revenue_per_customer: float | None = Field(description="net of refunds inside the window")
    average_order_value: float | None
    refunds_per_customer: float | None = Field(default=None, description="refunded inside the window")
    conversion_interval: Interval | None = Field(default=None, description="95% Wald interval", exclude_if=absent)
    revenue_per_customer_interval: Interval | None = Field(
        default=None, description="95% t interval", exclude_if=absent
    )
    conversion_lift: Lift | None = Field(default=None, exclude_if=absent)
    revenue_lift: Lift | None = Field(default=None, exclude_if=absent)
    revenue_lift_cuped: AdjustedLift | None = Field(
        default=None, description="adjusted by pre-exposure revenue (CUPED)", exclude_if=absent
    )
    revenue_lift_cupac: AdjustedLift | None = Field(
        default=None,
        description="adjusted by the predicted value at exposure and pre-exposure revenue (CUPAC): the one to read",
        exclude_if=absent,
    )
    refunds_guardrail: Guardrail | None = Field(
        default=None, description="refunds per customer inside the window: must not rise", exclude_if=absent
    )


class SampleRatio(View):
    counts: dict[str, int] = Field(description="exposed customers by variant")
    p_value: float = Field(description="chi-square against the configured weights")
    mismatch: bool = Field(description="p < 0.001: the assignment or the exposure logging is broken")


class Needed(View):
    customers_fixed_horizon: int | None = Field(description="exposed customers, both arms, read once at the end")
    customers_always_valid: int | None = Field(description="the same, read daily with the confidence sequences")
    days_fixed_horizon: int | None = Field(description="days from the start (exposures, then the window)")
    days_always_valid: int | None


class Planning(View):
    """The days the experiment needs to detect ``plannedLift`` at 80% power, from its segments'
    KPIs (baseline conversion and revenue variance, scaled to the window) and the exposures per
    day so far."""

    days_so_far: float
    available: bool
    reason: str | None = Field(default=None, exclude_if=absent)
    lift: float | None = Field(default=None, description="relative, the experiment's plannedLift", exclude_if=absent)
    power: float | None = Field(default=None, exclude_if=absent)
    exposures_per_day: float | None = Field(default=None, exclude_if=absent)
    baseline_conversion: float | None = Field(default=None, exclude_if=absent)
    baseline_revenue_per_customer: float | None = Field(default=None, exclude_if=absent)
    revenue_variance: float | None = Field(default=None, exclude_if=absent)
    variance_reduction: float | None = Field(default=None, description="CUPAC's, applied to revenue", exclude_if=absent)
    metrics: dict[str, Needed] | None = Field(
        default=None, description="conversion and revenuePerCustomer", exclude_if=absent
    )


class Reading(View):
    use: Literal["alwaysValid", "fixedHorizon"] = Field(description="which figures to read now")
    reason: str


class Decision(View):
    action: Literal["keepRunning", "shipWinner", "stop"]
    variant: str | None = Field(description="the winner to ship")
    reason: str
    alpha: float


class ExperimentResults(View):
    """``GET /v1/experiments/{experimentId}/results`` (computed daily by the retrain function's
    ``measure`` action)."""

    experiment: str
    as_of: str
    control: str
    window_days: int
    windows_still_open: int = Field(description="exposed customers whose window has not closed")
    sample_ratio: SampleRatio
    variants: dict[str, VariantResult] = Field(description="by variant id (lifts Holm-adjusted)")
    segments: dict[str, dict[str, VariantResult]] = Field(
        description="the same table per segment at first exposure (by segment, then variant; lifts BH-adjusted)"
    )
    planning: Planning | None = Field(default=None, exclude_if=absent)
    reading: Reading | None = Field(default=None, description="which figures to read, and why", exclude_if=absent)
    decision: Decision | None = Field(default=None, exclude_if=absent)


class ExperimentView(Experiment):
    status: Literal["scheduled", "running", "ended"]


class ExperimentList(View):
    """``GET /v1/experiments``: the experiments document in force, each with its status now."""

    holdout: float = Field(description="the share of customers who never get personalized content")
    experiments: list[ExperimentView]

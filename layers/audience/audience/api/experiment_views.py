"""``/v1/experiments``' answers: the experiments in force and an experiment's results (read from
the document the measure job stores, its lifts snake_case, and answered camelCase)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from audience.api.views import View, absent
from audience.domain.experiments import Experiment

Interval = tuple[float, float]


class Lift(View):
    """A variant against the control: the two arms' figures, the absolute lift with its 95%
    interval, the relative lift with its interval, the p-value and whether it is below 0.05."""

    control: float = Field(description="the control's rate or mean")
    treatment: float
    absolute: float = Field(description="treatment - control")
    low: float = Field(description="the absolute lift's 95% interval")
    high: float
    relative: float = Field(description="absolute / control")
    relative_low: float
    relative_high: float
    p_value: float
    significant: bool


class CupedLift(Lift):
    variance_reduction: float = Field(description="the share of the variance the pre-exposure revenue explains")


class VariantResult(View):
    """One variant's row (the lifts only for a treatment with more than one customer per arm)."""

    exposed: int
    converted: int = Field(description="ordered within the window")
    conversion: float | None
    revenue_per_customer: float | None
    average_order_value: float | None
    conversion_interval: Interval | None = Field(default=None, description="95% Wald interval", exclude_if=absent)
    revenue_per_customer_interval: Interval | None = Field(
        default=None, description="95% t interval", exclude_if=absent
    )
    conversion_lift: Lift | None = Field(default=None, exclude_if=absent)
    revenue_lift: Lift | None = Field(default=None, exclude_if=absent)
    revenue_lift_cuped: CupedLift | None = Field(
        default=None, description="adjusted by pre-exposure revenue", exclude_if=absent
    )


class SampleRatio(View):
    counts: dict[str, int] = Field(description="exposed customers by variant")
    p_value: float = Field(description="chi-square against the configured weights")
    mismatch: bool = Field(description="p < 0.001: the assignment or the exposure logging is broken")


class ExperimentResults(View):
    """``GET /v1/experiments/{experimentId}/results`` (computed daily by the retrain function's
    ``measure`` action)."""

    experiment: str
    as_of: str
    control: str
    window_days: int
    windows_still_open: int = Field(description="exposed customers whose window has not closed")
    sample_ratio: SampleRatio
    variants: dict[str, VariantResult] = Field(description="by variant id")
    segments: dict[str, dict[str, VariantResult]] = Field(
        description="the same table per segment at first exposure (by segment, then variant)"
    )


class ExperimentView(Experiment):
    status: Literal["scheduled", "running", "ended"]


class ExperimentList(View):
    """``GET /v1/experiments``: the experiments document in force, each with its status now."""

    holdout: float = Field(description="the share of customers who never get personalized content")
    experiments: list[ExperimentView]

"""How long an experiment must run to detect a given lift at 80% power, from its segments' KPIs.

Each arm's window outcome is taken from the KPIs over 30 days, scaled to the window: conversion
1 - (1 - c30)^(w/30) (a steady hazard), the revenue's mean and variance times w/30 (sums of a
steady process); the revenue's variance is further reduced by the adjustment's measured
reduction when there is one. A customer exposed on day d counts once their window has closed,
so the days needed are the exposures needed over the exposures per day, plus the window.

- Fixed horizon: n per arm = (z₁₋alpha/₂ + z_power)² (sigma_c² + sigma_t²) / δ² for equal arms (weights in general).
- Always valid: the smallest N (both arms) at which the confidence sequence's half-width plus
  z_power standard errors is within δ (the sequence is wider than the fixed interval: it pays
  for the daily looks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from audience.measure.statistics import ALPHA, sequential_width

POWER = 0.8
_GRID = np.unique(np.geomspace(10, 1e9, 4_000).astype(np.int64)).astype(float)  # customers, both arms


@dataclass(frozen=True)
class Baseline:
    """What the control does in the window, per exposed customer."""

    conversion: float
    revenue_mean: float
    revenue_var: float

    @classmethod
    def of(cls, kpis: list[dict[str, Any]], window_days: int) -> Baseline | None:
        """From segments' KPIs (pooled by their customers); None without any customer."""
        counted = [k for k in kpis if k.get("customers") and k.get("revenue30dVariance") is not None]
        total = sum(k["customers"] for k in counted)
        if not total:
            return None
        share = window_days / 30
        c30 = sum(k["customers"] * k["conversion30d"] for k in counted) / total
        mean30 = sum(k["customers"] * k["revenue30dPerCustomer"] for k in counted) / total
        second = sum(k["customers"] * (k["revenue30dVariance"] + k["revenue30dPerCustomer"] ** 2) for k in counted)
        var30 = max(second / total - mean30**2, 0.0)
        return cls(1 - (1 - c30) ** share, mean30 * share, var30 * share)


def customers_needed(var_c: float, var_t: float, delta: float, share_c: float, tuning: float) -> tuple[float, float]:
    """Exposed customers (both arms) for power at ``delta``: (fixed horizon, always valid)."""
    if delta <= 0 or var_c + var_t <= 0:
        return math.inf, math.inf
    z_power = stats.norm.ppf(POWER)
    per_customer = var_c / share_c + var_t / (1 - share_c)  # N · se²
    fixed = (stats.norm.ppf(1 - ALPHA / 2) + z_power) ** 2 * per_customer / delta**2
    se = np.sqrt(per_customer / _GRID)
    enough = np.flatnonzero((sequential_width(_GRID, tuning) + z_power) * se <= delta)
    return float(fixed), float(_GRID[enough[0]]) if len(enough) else math.inf


def plan(baseline: Baseline, lift: float, per_day: float, window_days: int, share_control: float, tuning: float,
         variance_reduction: float = 0.0) -> dict[str, Any]:  # fmt: skip
    """The days needed to detect a relative ``lift`` in conversion and in revenue per customer."""
    p = baseline.conversion
    p_t = min(p * (1 + lift), 1.0)
    revenue_var = baseline.revenue_var * (1 - variance_reduction)
    needs = {
        "conversion": customers_needed(p * (1 - p), p_t * (1 - p_t), p_t - p, share_control, tuning),
        "revenuePerCustomer": customers_needed(revenue_var, revenue_var, baseline.revenue_mean * lift,
                                               share_control, tuning),
    }  # fmt: skip

    def days(customers: float) -> int | None:
        return None if not math.isfinite(customers) or per_day <= 0 else math.ceil(customers / per_day) + window_days

    return {
        "lift": lift, "power": POWER, "exposuresPerDay": per_day,
        "baselineConversion": p, "baselineRevenuePerCustomer": baseline.revenue_mean,
        "revenueVariance": baseline.revenue_var, "varianceReduction": variance_reduction,
        "metrics": {metric: {"customersFixedHorizon": _whole(fixed), "customersAlwaysValid": _whole(valid),
                             "daysFixedHorizon": days(fixed), "daysAlwaysValid": days(valid)}
                    for metric, (fixed, valid) in needs.items()},
    }  # fmt: skip


def _whole(customers: float) -> int | None:
    return math.ceil(customers) if math.isfinite(customers) else None

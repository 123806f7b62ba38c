"""The statistics of an experiment's results, as statisticians state them.

- Conversion: the difference of two proportions (treatment minus control) with a 95% Wald
  interval on the unpooled standard error, and the two-sided p-value of the pooled two-proportion
  z-test; the relative lift (difference over the control's rate) with a delta-method interval.
- Revenue per user (every exposed user, zeros included): Welch's t-test (unequal variances,
  Welch-Satterthwaite degrees of freedom), its interval on the difference of means, and the
  relative lift with a delta-method interval.
- CUPED: revenue per user adjusted by the pre-exposure revenue, then the same Welch test; the
  variance reduction is reported beside it.
- Sample-ratio mismatch: Pearson's chi-square of the exposed counts against the configured
  weights; flagged when p < 0.001 (the usual threshold: a broken assignment, not chance).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

ALPHA = 0.05
SRM_ALPHA = 0.001


@dataclass(frozen=True)
class Lift:
    control: float  # the control's rate or mean
    treatment: float
    absolute: float  # treatment - control
    low: float  # the absolute lift's 95% interval
    high: float
    relative: float  # absolute / control
    relative_low: float
    relative_high: float
    p_value: float

    @property
    def significant(self) -> bool:
        return self.p_value < ALPHA

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "significant": self.significant}


def conversion_lift(converted_control: int, n_control: int, converted_treatment: int, n_treatment: int) -> Lift:
    p_c, p_t = converted_control / n_control, converted_treatment / n_treatment
    var_c, var_t = p_c * (1 - p_c) / n_control, p_t * (1 - p_t) / n_treatment
    pooled = (converted_control + converted_treatment) / (n_control + n_treatment)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / n_control + 1 / n_treatment))
    p_value = 2 * stats.norm.sf(abs(p_t - p_c) / se_pooled) if se_pooled > 0 else 1.0
    return _lift(p_c, p_t, var_c, var_t, stats.norm.ppf(1 - ALPHA / 2), float(p_value))


def revenue_lift(control: ArrayLike, treatment: ArrayLike) -> Lift:
    """Per-user revenue (zeros for those who bought nothing) of each arm."""
    c, t = np.asarray(control, dtype=float), np.asarray(treatment, dtype=float)
    var_c, var_t = c.var(ddof=1) / len(c), t.var(ddof=1) / len(t)
    test = stats.ttest_ind(t, c, equal_var=False)
    df = (var_c + var_t) ** 2 / (var_c**2 / (len(c) - 1) + var_t**2 / (len(t) - 1)) if var_c + var_t > 0 else 1.0
    p_value = float(test.pvalue) if np.isfinite(test.pvalue) else 1.0
    return _lift(float(c.mean()), float(t.mean()), float(var_c), float(var_t), stats.t.ppf(1 - ALPHA / 2, df), p_value)


def _lift(control: float, treatment: float, var_c: float, var_t: float, critical: float, p_value: float) -> Lift:
    difference, se = treatment - control, math.sqrt(var_c + var_t)
    relative = difference / control if control else math.nan
    # delta method for (t / c - 1): var ≈ var_t / c² + t² var_c / c⁴
    se_relative = math.sqrt(var_t / control**2 + treatment**2 * var_c / control**4) if control else math.nan
    return Lift(control, treatment, difference, difference - critical * se, difference + critical * se,
                relative, relative - critical * se_relative, relative + critical * se_relative, p_value)  # fmt: skip


def cuped_revenue_lift(
    control: ArrayLike, control_before: ArrayLike, treatment: ArrayLike, treatment_before: ArrayLike
) -> tuple[Lift, float]:
    """Revenue per user adjusted by CUPED (Deng et al. 2013) with the pre-exposure revenue as the
    covariate: y' = y - theta (x - mean x), theta = cov(x, y) / var(x) on both arms pooled (the
    covariate predates exposure, so the adjustment cannot create an effect); then Welch's test on
    y'. Returns the lift and the variance reduction, 1 - var(y') / var(y)."""
    y_c, y_t = np.asarray(control, dtype=float), np.asarray(treatment, dtype=float)
    x_c, x_t = np.asarray(control_before, dtype=float), np.asarray(treatment_before, dtype=float)
    y, x = np.concatenate([y_c, y_t]), np.concatenate([x_c, x_t])
    var_x = x.var(ddof=1)
    theta = float(np.cov(x, y, ddof=1)[0, 1] / var_x) if var_x > 0 else 0.0
    mean_x = x.mean()
    adjusted_c, adjusted_t = y_c - theta * (x_c - mean_x), y_t - theta * (x_t - mean_x)
    var_y = y.var(ddof=1)
    reduction = 1 - np.concatenate([adjusted_c, adjusted_t]).var(ddof=1) / var_y if var_y > 0 else 0.0
    return revenue_lift(adjusted_c, adjusted_t), float(reduction)


def rate_interval(converted: int, n: int) -> tuple[float, float]:
    """One arm's conversion rate with its 95% Wald interval (the plots' error bars)."""
    p = converted / n
    half = stats.norm.ppf(1 - ALPHA / 2) * math.sqrt(p * (1 - p) / n)
    return p - half, p + half


def mean_interval(values: ArrayLike) -> tuple[float, float]:
    """One arm's revenue per user with its 95% t interval."""
    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return float(v.mean()), float(v.mean())
    half = stats.t.ppf(1 - ALPHA / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v))
    return float(v.mean() - half), float(v.mean() + half)


def sample_ratio_mismatch(counts: Sequence[int], weights: Sequence[float]) -> tuple[float, bool]:
    """The chi-square p-value of ``counts`` against ``weights``, and whether it is flagged."""
    total, share = sum(counts), np.asarray(weights, dtype=float) / sum(weights)
    if total == 0:
        return 1.0, False
    p_value = float(stats.chisquare(np.asarray(counts, dtype=float), f_exp=share * total).pvalue)
    return p_value, p_value < SRM_ALPHA

"""The statistics of an experiment's results, as statisticians state them, on arrays: every
function takes each arm's sums (``Sample``) of any one shape, so one experiment (0-d arrays) and
a thousand simulated ones, or thirty daily looks at each, go through the same code.

Fixed-horizon figures (valid when read once, at the planned end):

- Conversion: the difference of two proportions (treatment minus control) with a 95% Wald
  interval on the unpooled standard error, and the two-sided p-value of the pooled two-proportion
  z-test.
- Revenue per user (every exposed user, zeros included): Welch's t-test (unequal variances,
  Welch-Satterthwaite degrees of freedom) and its interval on the difference of means.
- The relative lift (treatment over control, minus one) on the log scale: log(t / c) with the
  delta-method variance var_t / t² + var_c / c², its interval exponentiated (asymmetric, never
  below -100%; it keeps its coverage with few conversions where the symmetric one does not).
- Regression adjustment (CUPED, Deng et al. 2013; CUPAC, Tang et al. 2020): y - (x - mean x)·theta
  with theta from both arms pooled (the covariates predate exposure, so the adjustment cannot
  create an effect); the variance reduction, 1 - var(adjusted) / var(y), is reported beside it.

Always-valid figures (valid at every look, however often read): the asymptotic confidence
sequence of Waudby-Smith, Arnold, Wu, Wang and Ramdas (2024), as GrowthBook's sequential mode
states it, around the same estimate and standard error: half-width
se·sqrt(2(Nrho²+1)/(Nrho²)·log(sqrt(Nrho²+1)/alpha)), N the exposed customers of both arms and rho tuned to
be tightest at ``tuning`` customers (fixed when the experiment starts). Its p-value is the
smallest alpha whose sequence excludes zero.

- Sample-ratio mismatch: Pearson's chi-square of the exposed counts against the configured
  weights; flagged when p < 0.001 (the usual threshold: a broken assignment, not chance).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

ALPHA = 0.05
SRM_ALPHA = 0.001
TUNING = 5_000  # GrowthBook's default: the sequences are tightest at this many exposed customers

Array = NDArray[np.float64]


@dataclass(frozen=True)
class Sample:
    """One arm's sums: customers, outcome, covariates (k of them) and their products. Any
    leading shape (experiments, looks); sums of disjoint parts add up."""

    n: Array
    y: Array  # Σy
    yy: Array  # Σy²
    x: Array  # Σx, (..., k)
    xx: Array  # Σxxᵀ, (..., k, k)
    xy: Array  # Σxy, (..., k)

    @classmethod
    def of(cls, y: ArrayLike, x: ArrayLike | None = None) -> Sample:
        """From outcomes (..., customers) and covariates (..., customers, k)."""
        out = np.asarray(y, dtype=float)
        cov = np.zeros((*out.shape, 0)) if x is None else np.asarray(x, dtype=float)
        return cls(np.full(out.shape[:-1], float(out.shape[-1])), out.sum(-1), (out**2).sum(-1), cov.sum(-2),
                   np.einsum("...ik,...il->...kl", cov, cov), np.einsum("...ik,...i->...k", cov, out))  # fmt: skip

    def __add__(self, other: Sample) -> Sample:
        return Sample(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def columns(self, keep: Sequence[int]) -> Sample:
        """The same outcome with only the covariates ``keep``."""
        k = list(keep)
        return Sample(self.n, self.y, self.yy, self.x[..., k], self.xx[..., k, :][..., k], self.xy[..., k])

    @property
    def mean(self) -> Array:
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.y / self.n  # type: ignore[no-any-return]

    @property
    def var(self) -> Array:
        """The sample variance of y (ddof 1; 0 below two customers)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.n > 1, (self.yy - self.y**2 / self.n) / (self.n - 1), 0.0).clip(0)


@dataclass(frozen=True)
class Arm:
    """What a test needs of an arm: customers, the (adjusted) mean and its variance per customer."""

    n: Array
    mean: Array
    var: Array


def arm(sample: Sample) -> Arm:
    return Arm(sample.n, sample.mean, sample.var)


def adjusted(control: Sample, treatment: Sample) -> tuple[Arm, Arm, Array]:
    """Both arms' outcome adjusted by their covariates (theta from the arms pooled), and the
    variance reduction 1 - var(adjusted) / var(y) over both arms."""
    both = control + treatment

    def moments(s: Sample) -> tuple[Array, Array, Array]:  # cov(x, x), cov(x, y), mean x
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_x = s.x / s.n[..., None]
            dof = np.maximum(s.n - 1, 1)[..., None]
            cov_xx = (s.xx - s.x[..., :, None] * s.x[..., None, :] / s.n[..., None, None]) / dof[..., None]
            cov_xy = (s.xy - s.x * s.y[..., None] / s.n[..., None]) / dof
        return np.nan_to_num(cov_xx), np.nan_to_num(cov_xy), np.nan_to_num(mean_x)

    pooled_xx, pooled_xy, pooled_mean = moments(both)
    theta = np.einsum("...kl,...l->...k", np.linalg.pinv(pooled_xx, rcond=1e-10), pooled_xy)

    def shifted(s: Sample) -> Arm:
        cov_xx, cov_xy, mean_x = moments(s)
        mean = s.mean - np.einsum("...k,...k->...", theta, mean_x - pooled_mean)
        var = s.var - 2 * np.einsum("...k,...k->...", theta, cov_xy)
        var = var + np.einsum("...k,...kl,...l->...", theta, cov_xx, theta)
        return Arm(s.n, mean, np.maximum(var, 0.0))

    explained = np.einsum("...k,...k->...", theta, pooled_xy)
    with np.errstate(invalid="ignore", divide="ignore"):
        reduction = np.where(both.var > 0, explained / both.var, 0.0)
    return shifted(control), shifted(treatment), np.clip(reduction, 0.0, 1.0)


def rho(tuning: float, alpha: float = ALPHA) -> float:
    """The mixture's rho that makes the sequence tightest at ``tuning`` customers (Waudby-Smith et al.)."""
    return math.sqrt((-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning)


def sequential_width(n: ArrayLike, tuning: float, alpha: ArrayLike = ALPHA) -> Array:
    """The confidence sequence's half-width in standard errors at ``n`` customers (both arms)."""
    big_n, r2 = np.maximum(np.asarray(n, dtype=float), 1.0), rho(tuning) ** 2
    width: Array = np.sqrt(2 * (big_n * r2 + 1) / (big_n * r2) * np.log(np.sqrt(big_n * r2 + 1) / np.asarray(alpha)))
    return width


def sequential_p_value(z: ArrayLike, n: ArrayLike, tuning: float) -> Array:
    """The smallest alpha whose confidence sequence excludes zero (always valid: reject at any look)."""
    big_n, r2 = np.maximum(np.asarray(n, dtype=float), 1.0), rho(tuning) ** 2
    shrink = big_n * r2 / (big_n * r2 + 1)
    p_value: Array = np.minimum(1.0, np.sqrt(big_n * r2 + 1) * np.exp(-(np.asarray(z) ** 2) * shrink / 2))
    return p_value


@dataclass(frozen=True)
class Lift:
    """A treatment against the control, every field an array of the arms' shape."""

    control: Array  # the control's rate or mean
    treatment: Array
    absolute: Array  # treatment - control
    se: Array  # its standard error
    low: Array  # fixed horizon: the absolute lift's 95% interval
    high: Array
    relative: Array  # absolute / control
    relative_low: Array  # its 95% interval (log scale)
    relative_high: Array
    p_value: Array
    sequential_low: Array  # always valid: the 95% confidence sequence of the absolute lift
    sequential_high: Array
    sequential_relative_low: Array
    sequential_relative_high: Array
    sequential_p_value: Array

    @property
    def significant(self) -> NDArray[np.bool_]:
        """Fixed horizon: p < 0.05 (valid read once)."""
        return self.p_value < ALPHA  # type: ignore[no-any-return]

    @property
    def sequentially_significant(self) -> NDArray[np.bool_]:
        """Always valid: the confidence sequence excludes zero."""
        return self.sequential_p_value < ALPHA  # type: ignore[no-any-return]

    def to_json(self) -> dict[str, Any]:
        """One experiment's lift (0-d arrays) as JSON numbers (None where undefined)."""
        found: dict[str, Any] = {f.name: _number(getattr(self, f.name)) for f in fields(self) if f.name != "se"}
        return {**found, "significant": bool(self.significant), "sequentially_significant":
                bool(self.sequentially_significant)}  # fmt: skip


def _number(value: Array) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def compare(control: Arm, treatment: Arm, tuning: float, critical: ArrayLike, p_value: ArrayLike) -> Lift:
    """The lift of ``treatment`` over ``control``: the fixed-horizon interval with ``critical``
    and ``p_value`` (the test's own), and the always-valid sequence tuned at ``tuning``."""
    with np.errstate(invalid="ignore", divide="ignore"):
        var_c, var_t = control.var / control.n, treatment.var / treatment.n
        difference, se = treatment.mean - control.mean, np.sqrt(var_c + var_t)
        c, t = control.mean, treatment.mean
        log_ratio = np.log(t / c)
        se_log = np.sqrt(var_t / t**2 + var_c / c**2)
        width = sequential_width(control.n + treatment.n, tuning) * se
        log_width = sequential_width(control.n + treatment.n, tuning) * se_log
        z = np.where(se > 0, difference / se, 0.0)
        critical_ = np.asarray(critical, dtype=float)
        return Lift(
            control=c, treatment=t, absolute=difference, se=se,
            low=difference - critical_ * se, high=difference + critical_ * se,
            relative=t / c - 1, relative_low=np.expm1(log_ratio - critical_ * se_log),
            relative_high=np.expm1(log_ratio + critical_ * se_log), p_value=np.asarray(p_value, dtype=float),
            sequential_low=difference - width, sequential_high=difference + width,
            sequential_relative_low=np.expm1(log_ratio - log_width),
            sequential_relative_high=np.expm1(log_ratio + log_width),
            sequential_p_value=np.where(se > 0, sequential_p_value(z, control.n + treatment.n, tuning), 1.0),
        )  # fmt: skip


def proportion_lift(control: Arm, treatment: Arm, tuning: float = TUNING) -> Lift:
    """Conversion (``mean`` a rate): the Wald interval and the pooled two-proportion z-test."""
    with np.errstate(invalid="ignore", divide="ignore"):
        p_c, p_t = control.mean, treatment.mean
        binomial_c, binomial_t = _binomial(control), _binomial(treatment)
        pooled = (p_c * control.n + p_t * treatment.n) / (control.n + treatment.n)
        se_pooled = np.sqrt(pooled * (1 - pooled) * (1 / control.n + 1 / treatment.n))
        p_value = np.where(se_pooled > 0, 2 * stats.norm.sf(np.abs(p_t - p_c) / se_pooled), 1.0)
    lift = compare(binomial_c, binomial_t, tuning, stats.norm.ppf(1 - ALPHA / 2), p_value)
    # a difference of proportions lies in [-1, 1]: intervals cut there (wide sequences of small arms)
    return replace(lift, low=np.maximum(lift.low, -1.0), high=np.minimum(lift.high, 1.0),
                   sequential_low=np.maximum(lift.sequential_low, -1.0),
                   sequential_high=np.minimum(lift.sequential_high, 1.0))  # fmt: skip


def _binomial(a: Arm) -> Arm:
    return Arm(a.n, a.mean, a.mean * (1 - a.mean))  # the unpooled Wald variance (ddof 0)


def mean_lift(control: Arm, treatment: Arm, tuning: float = TUNING) -> Lift:
    """A mean per customer (revenue, refunds): Welch's t-test and interval."""
    with np.errstate(invalid="ignore", divide="ignore"):
        var_c, var_t = control.var / control.n, treatment.var / treatment.n
        df = (var_c + var_t) ** 2 / (var_c**2 / (control.n - 1) + var_t**2 / (treatment.n - 1))
        df = np.where(np.isfinite(df) & (df > 0), df, 1.0)
        se = np.sqrt(var_c + var_t)
        t = np.where(se > 0, (treatment.mean - control.mean) / se, 0.0)
        p_value = 2 * stats.t.sf(np.abs(t), df)
    return compare(control, treatment, tuning, stats.t.ppf(1 - ALPHA / 2, df), p_value)


# ---------------------------------------------------------------- one experiment, from values


def conversion_lift(converted_control: int, n_control: int, converted_treatment: int, n_treatment: int) -> Lift:
    """The conversion lift from the counts (0-d arrays)."""
    return proportion_lift(_rate(converted_control, n_control), _rate(converted_treatment, n_treatment))


def _rate(converted: int, n: int) -> Arm:
    return Arm(np.asarray(float(n)), np.asarray(converted / n), np.asarray(0.0))


def revenue_lift(control: ArrayLike, treatment: ArrayLike) -> Lift:
    """Per-user revenue (zeros for those who bought nothing) of each arm."""
    return mean_lift(arm(Sample.of(control)), arm(Sample.of(treatment)))


def cuped_revenue_lift(
    control: ArrayLike, control_before: ArrayLike, treatment: ArrayLike, treatment_before: ArrayLike
) -> tuple[Lift, float]:
    """Revenue per user adjusted by the pre-exposure revenue (CUPED), and the variance reduction."""
    c = Sample.of(control, np.asarray(control_before, dtype=float)[:, None])
    t = Sample.of(treatment, np.asarray(treatment_before, dtype=float)[:, None])
    adjusted_c, adjusted_t, reduction = adjusted(c, t)
    return mean_lift(adjusted_c, adjusted_t), float(reduction)


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

"""An experiment's results from the profiles: per variant and per segment, exposed customers,
conversion (ordered within the window), revenue per customer (net of refunds in the window) and
average order value; the lift of each variant over the control, fixed-horizon and always valid,
plain, CUPED (pre-exposure revenue) and CUPAC (the value model's prediction at exposure and
pre-exposure revenue); the refunds guardrail; Holm across the experiment's metrics and
Benjamini-Hochberg across its segments; the sample-ratio check; the days the experiment needs
(planning); and the decision with its reason.

``Arms`` and ``versus`` work on arrays of any shape, so the simulations in the tests put a
thousand experiments (and thirty daily looks at each) through the code that computes one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from audience.domain.experiments import Experiment
from audience.domain.profile import Exposure
from audience.measure.corrections import benjamini_hochberg, bh_alpha, holm, holm_alpha
from audience.measure.planning import Baseline, plan
from audience.measure.statistics import (
    ALPHA,
    Array,
    Lift,
    Sample,
    adjusted,
    arm,
    mean_interval,
    mean_lift,
    proportion_lift,
    rate_interval,
    sample_ratio_mismatch,
    sequential_width,
)

PRIMARY = ("conversionLift", "revenueLiftCupac")  # what the corrections and the decision read
MIN_CONVERSIONS = 30  # below, per arm, the normal approximations lose coverage: no decision yet
READ_ALWAYS_VALID = ("alwaysValid", "the experiment is read every day: the always-valid intervals and p-values stay at "
                     "95% however often they are read; a fixed-horizon interval read daily for 30 days finds an "
                     "effect that is not there about 29% of the time instead of 5%")  # fmt: skip
READ_FIXED = ("fixedHorizon", "the experiment has ended and every window has closed: the fixed-horizon figures are "
              "valid, and narrower, if this is the one look a decision is taken on; if an earlier look already "
              "decided anything, read the always-valid ones")  # fmt: skip


@dataclass(frozen=True)
class Arms:
    """One variant's sums for every metric (any leading shape: experiments, looks)."""

    conversion: Sample
    revenue: Sample  # covariates: pre-exposure revenue, predicted value at exposure
    refunds: Sample

    @classmethod
    def of(cls, converted: ArrayLike, revenue: ArrayLike, refunded: ArrayLike, before: ArrayLike,
           predicted: ArrayLike) -> Arms:  # fmt: skip
        """From per-customer values (..., customers)."""
        covariates = np.stack([np.asarray(before, dtype=float), np.asarray(predicted, dtype=float)], axis=-1)
        return cls(Sample.of(converted), Sample.of(revenue, covariates), Sample.of(refunded))

    def __add__(self, other: Arms) -> Arms:
        return Arms(self.conversion + other.conversion, self.revenue + other.revenue, self.refunds + other.refunds)


@dataclass(frozen=True)
class Versus:
    """A treatment against the control, every lift an array of the arms' shape."""

    conversion: Lift
    revenue: Lift
    revenue_cuped: Lift
    cuped_reduction: Array
    revenue_cupac: Lift
    cupac_reduction: Array
    refunds: Lift  # the guardrail: must not rise

    @property
    def harmed(self) -> NDArray[np.bool_]:
        """The guardrail: the refunds' confidence sequence lies above zero."""
        return self.refunds.sequential_low > 0  # type: ignore[no-any-return]


def versus(control: Arms, treatment: Arms, tuning: float) -> Versus:
    cuped_c, cuped_t, cuped = adjusted(control.revenue.columns([0]), treatment.revenue.columns([0]))
    cupac_c, cupac_t, cupac = adjusted(control.revenue, treatment.revenue)
    return Versus(
        conversion=proportion_lift(arm(control.conversion), arm(treatment.conversion), tuning),
        revenue=mean_lift(arm(control.revenue), arm(treatment.revenue), tuning),
        revenue_cuped=mean_lift(cuped_c, cuped_t, tuning), cuped_reduction=cuped,
        revenue_cupac=mean_lift(cupac_c, cupac_t, tuning), cupac_reduction=cupac,
        refunds=mean_lift(arm(control.refunds), arm(treatment.refunds), tuning),
    )  # fmt: skip


def adjusted_sequence(lift: Lift, n: ArrayLike, tuning: float, alpha: ArrayLike) -> tuple[Array, Array]:
    """The confidence sequence of ``lift`` at level ``alpha`` (a correction's)."""
    width = sequential_width(n, tuning, alpha) * lift.se
    return lift.absolute - width, lift.absolute + width


# ---------------------------------------------------------------- one experiment, as JSON


@dataclass(frozen=True)
class _Columns:
    """The exposures as columns."""

    variant: np.ndarray[Any, np.dtype[np.str_]]
    segment: np.ndarray[Any, np.dtype[np.str_]]
    orders: Array
    revenue: Array
    refunded: Array
    before: Array
    predicted: Array

    @classmethod
    def of(cls, exposures: list[Exposure]) -> _Columns:
        def column(field: str) -> Array:
            return np.array([float(getattr(e, field)) for e in exposures], dtype=float)

        return cls(np.array([e.variant for e in exposures], dtype=str),
                   np.array([e.segment or "(none)" for e in exposures], dtype=str),
                   *(column(f) for f in ("orders", "revenue", "refunded", "before", "predicted")))  # fmt: skip

    def arms(self, keep: np.ndarray[Any, np.dtype[np.bool_]]) -> Arms:
        return Arms.of(self.orders[keep] > 0, self.revenue[keep], self.refunded[keep], self.before[keep],
                       self.predicted[keep])  # fmt: skip


def results(
    experiment: Experiment, exposures: list[Exposure], now: datetime, kpis: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``exposures``: every exposed customer's record of this experiment; ``kpis``: the segments'
    KPIs by segment id (the measure job's, for planning)."""
    ids, control = [v.id for v in experiment.variants], experiment.control
    columns = _Columns.of(exposures)
    counts = [int((columns.variant == v).sum()) for v in ids]
    srm_p, srm = sample_ratio_mismatch(counts, [v.weight for v in experiment.variants])
    overall = _table(columns, np.ones(len(exposures), dtype=bool), ids, control, experiment.sequential_tuning)
    _correct(overall, [(v, m) for v in ids if v != control for m in PRIMARY], holm, holm_alpha, "holm",
             experiment.sequential_tuning)  # fmt: skip
    segments = {s: _table(columns, columns.segment == s, ids, control, experiment.sequential_tuning)
                for s in sorted(set(columns.segment.tolist()))}  # fmt: skip
    _correct_segments(segments, ids, control, experiment.sequential_tuning)
    planning = _planning(experiment, overall, len(exposures), now, kpis)
    found = {
        "experiment": experiment.id, "asOf": now.isoformat(), "control": control,
        "windowDays": experiment.window_days, "windowsStillOpen": sum(e.until > now for e in exposures),
        "sampleRatio": {"counts": dict(zip(ids, counts, strict=True)), "pValue": srm_p, "mismatch": srm},
        "variants": overall, "segments": segments, "planning": planning,
    }  # fmt: skip
    use, why = READ_FIXED if now >= experiment.end and found["windowsStillOpen"] == 0 else READ_ALWAYS_VALID
    found["reading"] = {"use": use, "reason": why}
    found["decision"] = decide(experiment, overall, planning, srm, now)
    return found


def _table(columns: _Columns, keep: Any, ids: list[str], control: str, tuning: float) -> dict[str, Any]:
    arms = {v: columns.arms(keep & (columns.variant == v)) for v in ids}
    base = arms[control]
    table: dict[str, Any] = {}
    for variant in ids:
        inside = keep & (columns.variant == variant)
        n, converted = int(inside.sum()), int((columns.orders[inside] > 0).sum())
        revenue, orders = columns.revenue[inside], float(columns.orders[inside].sum())
        row: dict[str, Any] = {"exposed": n, "converted": converted, "conversion": converted / n if n else None,
                               "revenuePerCustomer": float(revenue.sum()) / n if n else None,
                               "averageOrderValue": float(revenue.sum()) / orders if orders else None,
                               "refundsPerCustomer": float(columns.refunded[inside].sum()) / n if n else None,
                               }  # fmt: skip
        if n:
            row["conversionInterval"], row["revenuePerCustomerInterval"] = (
                rate_interval(converted, n),
                mean_interval(revenue),
            )
        if variant != control and n > 1 and float(base.conversion.n) > 1:
            found = versus(base, arms[variant], tuning)
            row["conversionLift"] = found.conversion.to_json()
            row["revenueLift"] = found.revenue.to_json()
            row["revenueLiftCuped"] = {
                **found.revenue_cuped.to_json(),
                "varianceReduction": float(found.cuped_reduction),
            }
            row["revenueLiftCupac"] = {
                **found.revenue_cupac.to_json(),
                "varianceReduction": float(found.cupac_reduction),
            }
            row["refundsGuardrail"] = {**found.refunds.to_json(), "harmed": bool(found.harmed)}
            row["_lifts"] = {"conversionLift": found.conversion, "revenueLiftCupac": found.revenue_cupac,
                             "n": float(base.conversion.n) + n}  # fmt: skip
        table[variant] = row
    return table


def _correct(table: dict[str, Any], family: list[tuple[str, str]], adjust: Any, level: Any, method: str,
             tuning: float) -> None:  # fmt: skip
    """Adjust the lifts ``family`` (variant, metric) of ``table`` in place, and drop the arrays."""
    present = [(v, m) for v, m in family if m in table[v]]
    if present:
        fixed = np.array([_p(table[v][m]["p_value"]) for v, m in present])
        valid = np.array([_p(table[v][m]["sequential_p_value"]) for v, m in present])
        alpha = float(level(valid))
        for (v, m), p, q in zip(present, adjust(fixed), adjust(valid), strict=True):
            low, high = _bounded(m, *adjusted_sequence(table[v]["_lifts"][m], table[v]["_lifts"]["n"], tuning, alpha))
            table[v][m]["adjusted"] = {"method": method, "p_value": float(p), "sequential_p_value": float(q),
                                       "sequential_low": float(low), "sequential_high": float(high),
                                       "alpha": alpha}  # fmt: skip
    for row in table.values():
        row.pop("_lifts", None)


def _bounded(metric: str, low: Array, high: Array) -> tuple[float, float]:
    """A difference of proportions lies in [-1, 1]."""
    if metric == "conversionLift":
        return max(float(low), -1.0), min(float(high), 1.0)
    return float(low), float(high)


def _p(value: float | None) -> float:
    """A p-value, 1 where it is undefined (no variance: nothing to find)."""
    return 1.0 if value is None else value


def _correct_segments(segments: dict[str, dict[str, Any]], ids: list[str], control: str, tuning: float) -> None:
    """Benjamini-Hochberg across the segments, for each treatment and primary metric."""
    for variant in (v for v in ids if v != control):
        for metric in PRIMARY:
            family = [s for s, table in segments.items() if metric in table[variant]]
            if not family:
                continue
            fixed = np.array([_p(segments[s][variant][metric]["p_value"]) for s in family])
            valid = np.array([_p(segments[s][variant][metric]["sequential_p_value"]) for s in family])
            alpha = float(bh_alpha(valid))
            for s, p, q in zip(family, benjamini_hochberg(fixed), benjamini_hochberg(valid), strict=True):
                lifts = segments[s][variant]["_lifts"]
                low, high = _bounded(metric, *adjusted_sequence(lifts[metric], lifts["n"], tuning, alpha))
                segments[s][variant][metric]["adjusted"] = {
                    "method": "benjamini-hochberg", "p_value": float(p), "sequential_p_value": float(q),
                    "sequential_low": float(low), "sequential_high": float(high), "alpha": alpha}  # fmt: skip
    for table in segments.values():
        for row in table.values():
            row.pop("_lifts", None)


def _planning(experiment: Experiment, overall: dict[str, Any], exposed: int, now: datetime,
              kpis: dict[str, Any] | None) -> dict[str, Any]:  # fmt: skip
    """The days needed to detect the experiment's ``plannedLift`` from its segments' KPIs (every
    learned segment for an experiment on everyone) and the exposures per day so far."""
    held = kpis or {}
    chosen = experiment.segments or [s for s in held if s.startswith("learned:")]
    baseline = Baseline.of([held[s] for s in chosen if s in held], experiment.window_days)
    elapsed = max((min(now, experiment.end) - experiment.start).total_seconds() / 86_400, 1.0)
    so_far = {"daysSoFar": round(max((now - experiment.start).total_seconds() / 86_400, 0.0), 1)}
    if baseline is None:
        return {**so_far, "available": False, "reason": "no KPIs for the experiment's segments yet (the measure job's)"}
    reductions = [row["revenueLiftCupac"]["varianceReduction"] for row in overall.values() if "revenueLiftCupac" in row]
    weights = {v.id: v.weight for v in experiment.variants}
    share = weights[experiment.control] / (weights[experiment.control] + max(
        (w for v, w in weights.items() if v != experiment.control), default=1.0))  # fmt: skip
    found = plan(baseline, experiment.planned_lift, exposed / elapsed, experiment.window_days, share,
                 experiment.sequential_tuning, min(reductions, default=0.0))  # fmt: skip
    return {**so_far, "available": True, **found}


def decide(experiment: Experiment, overall: dict[str, Any], planning: dict[str, Any], mismatch: bool,
           now: datetime) -> dict[str, Any]:  # fmt: skip
    """Keep running, ship the winner or stop, from the always-valid sequences (Holm-adjusted)
    and the guardrail, with the reason."""
    treatments = {v: row for v, row in overall.items() if v != experiment.control}
    if mismatch:
        return _decision("stop", None, "the sample ratio is off (chi-square p < 0.001): the assignment or the "
                         "exposure logging is broken, so no lift can be trusted")  # fmt: skip
    if any("conversionLift" not in row for row in treatments.values()):
        return _decision("keepRunning", None, "not every arm has exposed customers yet")
    harmed = [v for v, row in treatments.items() if row["refundsGuardrail"]["harmed"]]
    few = min(row["converted"] for row in overall.values())
    if few < MIN_CONVERSIONS and not harmed:
        return _decision("keepRunning", None, f"an arm has {few} conversions, fewer than {MIN_CONVERSIONS}: the "
                         "intervals' normal approximation does not yet hold its coverage")  # fmt: skip
    bounds = {v: {m: (row[m]["adjusted"]["sequential_low"], row[m]["adjusted"]["sequential_high"]) for m in PRIMARY}
              for v, row in treatments.items()}  # fmt: skip
    winners = [v for v in treatments if v not in harmed and any(low > 0 for low, _ in bounds[v].values())
               and all(low > 0 or high > 0 for low, high in bounds[v].values())]  # fmt: skip
    if winners:
        best = max(winners, key=lambda v: treatments[v]["conversionLift"]["relative"] or 0.0)
        return _decision("shipWinner", best, f"{best}'s always-valid interval (Holm-adjusted) excludes zero on "
                         "conversion or revenue per customer, neither is below zero, and refunds did not rise",
                         )  # fmt: skip
    if harmed and len(harmed) == len(treatments):
        return _decision("stop", None, f"refunds per customer rose in {', '.join(harmed)} (the guardrail's "
                         "always-valid interval is above zero)")  # fmt: skip
    lift = experiment.planned_lift
    futile = [v for v in treatments if v in harmed or any(high < 0 for _, high in bounds[v].values()) or all(
        _relative_within(treatments[v][m], lift) for m in PRIMARY)]  # fmt: skip
    if len(futile) == len(treatments):
        return _decision("stop", None, f"no effect likely: every treatment is worse, harms the guardrail, or its "
                         f"always-valid intervals rule out a lift of {lift:.0%} either way")  # fmt: skip
    if now >= experiment.end:
        return _decision("stop", None, "the experiment has ended and no always-valid interval excludes zero")
    days = planning.get("metrics", {}).get("conversion", {}).get("daysAlwaysValid")
    more = f"; planning: about {days} days in all to detect {lift:.0%} on conversion" if days else ""
    return _decision("keepRunning", None, f"no always-valid interval excludes zero yet{more}")


def _relative_within(lift: dict[str, Any], bound: float) -> bool:
    low, high = lift["sequential_relative_low"], lift["sequential_relative_high"]
    return low is not None and high is not None and -bound < low and high < bound


def _decision(action: str, variant: str | None, reason: str) -> dict[str, Any]:
    return {"action": action, "variant": variant, "reason": reason, "alpha": ALPHA}

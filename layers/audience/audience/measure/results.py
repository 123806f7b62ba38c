"""An experiment's results from the profiles: per variant and per segment, exposed customers,
conversion (ordered within the window), revenue per customer and average order value, the lift
of each variant over the control with its interval and p-value, and the sample-ratio check."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from audience.domain.experiments import Experiment
from audience.domain.profile import Exposure
from audience.measure.statistics import (
    conversion_lift,
    cuped_revenue_lift,
    mean_interval,
    rate_interval,
    revenue_lift,
    sample_ratio_mismatch,
)


def results(experiment: Experiment, exposures: Iterable[Exposure], now: datetime) -> dict[str, Any]:
    """``exposures``: every exposed customer's record of this experiment."""
    by_variant: dict[str, list[Exposure]] = defaultdict(list)
    for exposure in exposures:
        by_variant[exposure.variant].append(exposure)
    ids = [v.id for v in experiment.variants]
    srm_p, srm = sample_ratio_mismatch([len(by_variant[v]) for v in ids], [v.weight for v in experiment.variants])
    everyone = [e for group in by_variant.values() for e in group]
    segments = sorted({e.segment or "(none)" for e in everyone})
    return {
        "experiment": experiment.id, "asOf": now.isoformat(), "control": experiment.control,
        "windowDays": experiment.window_days, "windowsStillOpen": sum(e.until > now for e in everyone),
        "sampleRatio": {"counts": {v: len(by_variant[v]) for v in ids}, "pValue": srm_p, "mismatch": srm},
        "variants": _compare(by_variant, ids, experiment.control),
        "segments": {s: _compare({v: [e for e in by_variant[v] if (e.segment or "(none)") == s] for v in ids}, ids,
                                 experiment.control) for s in segments},
    }  # fmt: skip


def _compare(by_variant: dict[str, list[Exposure]], ids: list[str], control: str) -> dict[str, Any]:
    table: dict[str, Any] = {}
    base = by_variant[control]
    base_converted, base_revenue = sum(e.orders > 0 for e in base), [float(e.revenue) for e in base]
    base_before = [float(e.before) for e in base]
    for variant in ids:
        group = by_variant[variant]
        n, converted = len(group), sum(e.orders > 0 for e in group)
        revenue, orders = [float(e.revenue) for e in group], sum(e.orders for e in group)
        row: dict[str, Any] = {"exposed": n, "converted": converted, "conversion": converted / n if n else None,
                               "revenuePerCustomer": sum(revenue) / n if n else None,
                               "averageOrderValue": sum(revenue) / orders if orders else None}  # fmt: skip
        if n:
            row["conversionInterval"], row["revenuePerCustomerInterval"] = (
                rate_interval(converted, n),
                mean_interval(revenue),
            )
        if variant != control and n > 1 and len(base) > 1:
            row["conversionLift"] = conversion_lift(base_converted, len(base), converted, n).to_json()
            row["revenueLift"] = revenue_lift(base_revenue, revenue).to_json()
            cuped, reduction = cuped_revenue_lift(base_revenue, base_before, revenue, [float(e.before) for e in group])
            row["revenueLiftCuped"] = {**cuped.to_json(), "varianceReduction": reduction}
        table[variant] = row
    return table

"""How often the prediction intervals held what happened: on the holdout after the calibration
end, each buyer's interval of orders and of spend over the holdout's days (the same functions as
the 90-day and 12-month intervals on the profile, at the holdout's length and undiscounted),
against the order days and the spend that came."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from audience.value import intervals
from audience.value.btyd import BetaGeo, GammaGamma
from audience.value.orders import AsOf

Vector = NDArray[np.float64]
SAMPLE = 20_000  # customers scored for the coverage (plain Python, ~0.2 ms each)


def holdout_coverage(
    draws: Sequence[BetaGeo], spend: GammaGamma, before: AsOf, orders: Vector, spent: Vector, days: int, seed: int = 0
) -> dict[str, Any]:
    """The share of buyers (at most ``SAMPLE``, drawn at random) whose order days (``orders``)
    and spend (``spent``) in the ``days`` after the calibration fell in their 80 % and 95 %
    intervals, fitted on ``before``; with the intervals' mean width."""
    buyers = np.flatnonzero(before.buyer)
    if len(buyers) > SAMPLE:
        buyers = np.sort(np.random.default_rng(seed).choice(buyers, SAMPLE, replace=False))
    params = [(m.r, m.alpha, m.a, m.b) for m in draws]
    modified = draws[0].modified
    held = {kind: {level: 0 for level in intervals.LEVELS} for kind in ("orders", "value")}
    widths = {kind: {level: 0.0 for level in intervals.LEVELS} for kind in ("orders", "value")}
    for i in buyers:
        x, t_x, big_t, zbar = (float(v[i]) for v in (before.x, before.t_x, before.big_t, before.zbar))
        pmf = intervals.order_counts(params, days, x, t_x, big_t, modified)
        values = intervals.value_intervals(pmf, spend.p, spend.q, spend.v, x, zbar)
        for level, (low_value, high_value) in zip(intervals.LEVELS, values, strict=True):
            low, high = intervals.count_interval(pmf, level)
            held["orders"][level] += int(low <= orders[i] <= high)
            widths["orders"][level] += high - low
            held["value"][level] += int(low_value * (1 - 1e-9) <= spent[i] <= high_value * (1 + 1e-9))
            widths["value"][level] += high_value - low_value
    n = max(len(buyers), 1)
    return {
        "days": days,
        "customers": len(buyers),
        "parameterDraws": len(params),
        **{
            kind: {
                f"p{round(level * 100)}": {"coverage": held[kind][level] / n, "meanWidth": widths[kind][level] / n}
                for level in intervals.LEVELS
            }
            for kind in ("orders", "value")
        },
    }

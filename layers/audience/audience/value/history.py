"""Customers' purchase histories as the BTYD models' sufficient statistics.

For each customer: ``x`` repeat purchases in the calibration period (purchases on the same day
count once), ``t_x`` the time of the last of them and ``T`` the time to the end of calibration,
both from the first purchase, in ``unit`` (a week for CDNOW, a day or a week here); and the
purchases in the holdout period after it, for backtests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class Histories:
    customers: list[str]
    x: NDArray[np.float64]
    t_x: NDArray[np.float64]
    big_t: NDArray[np.float64]
    holdout: NDArray[np.float64]  # purchases after calibration, up to the end


def summarise(
    purchases: Mapping[str, Iterable[date]],
    calibration_end: date,
    end: date | None = None,
    unit: timedelta = timedelta(days=7),
) -> Histories:
    """Customers whose first purchase is on or before ``calibration_end``, summarised."""
    days = unit / timedelta(days=1)
    customers, x, t_x, big_t, holdout = [], [], [], [], []
    for customer, dates in purchases.items():
        ordered = sorted(set(dates))
        calibration = [d for d in ordered if d <= calibration_end]
        if not calibration:
            continue
        first = calibration[0]
        customers.append(customer)
        x.append(len(calibration) - 1)
        t_x.append((calibration[-1] - first).days / days)
        big_t.append((calibration_end - first).days / days)
        holdout.append(sum(1 for d in ordered if calibration_end < d <= (end or date.max)))
    return Histories(customers, *(np.array(values, dtype=float) for values in (x, t_x, big_t, holdout)))

"""Corrections for many comparisons, on arrays (the family along the last axis):

- Holm (1979) across an experiment's metrics (and its treatments): the family-wise error rate.
  Adjusted p-values by the step-down; adjusted intervals at alpha/m (Bonferroni: simultaneous, and
  consistent with Holm wherever Holm rejects only what Bonferroni does).
- Benjamini-Hochberg (1995) across its segments: the false discovery rate. Adjusted p-values by
  the step-up; adjusted intervals at alpha·R/m, R the rejections (Benjamini and Yekutieli 2005: the
  false coverage rate of the selected intervals stays at alpha); alpha/m when nothing is rejected.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from audience.measure.statistics import ALPHA

Array = NDArray[np.float64]


def holm(p_values: ArrayLike) -> Array:
    """Holm's adjusted p-values of each family (the last axis)."""
    p = np.asarray(p_values, dtype=float)
    m = p.shape[-1]
    order = np.argsort(p, axis=-1)
    ranked = np.take_along_axis(p, order, -1) * (m - np.arange(m))
    adjusted = np.minimum(np.maximum.accumulate(ranked, axis=-1), 1.0)
    return _unsorted(adjusted, order)


def benjamini_hochberg(p_values: ArrayLike) -> Array:
    """Benjamini-Hochberg's adjusted p-values (q-values) of each family (the last axis)."""
    p = np.asarray(p_values, dtype=float)
    m = p.shape[-1]
    order = np.argsort(p, axis=-1)
    ranked = np.take_along_axis(p, order, -1) * m / np.arange(1, m + 1)
    adjusted = np.minimum(np.flip(np.minimum.accumulate(np.flip(ranked, -1), axis=-1), -1), 1.0)
    return _unsorted(adjusted, order)


def _unsorted(values: Array, order: NDArray[np.intp]) -> Array:
    found = np.empty_like(values)
    np.put_along_axis(found, order, values, -1)
    return found


def holm_alpha(p_values: ArrayLike, alpha: float = ALPHA) -> Array:
    """The level of each family's adjusted intervals under Holm: alpha/m."""
    p = np.asarray(p_values, dtype=float)
    return np.full(p.shape[:-1], alpha / p.shape[-1])


def bh_alpha(p_values: ArrayLike, alpha: float = ALPHA) -> Array:
    """The level of each family's adjusted intervals under Benjamini-Hochberg: alpha·R/m (alpha/m if R = 0)."""
    p = np.asarray(p_values, dtype=float)
    m = p.shape[-1]
    rejected = (benjamini_hochberg(p) <= alpha).sum(-1)
    return alpha * np.maximum(rejected, 1) / m  # type: ignore[no-any-return]

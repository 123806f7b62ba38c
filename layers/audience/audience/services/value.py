"""The value model's lifecycle: fitted by the retrain function from every buyer's order days,
stored with its metrics beside the segmentation model of the same run (``models/<version>/``
``value-spec.json`` and ``value-metrics.json``), put in force (``live/value-model.json``, which
the stream, imports and the rescore read), and served by ``GET /v1/models/value``. A backtest
(``asOf`` or ``calibrationEnd`` in the request) is fitted, stored and reported, never put in
force.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from audience.services.artifacts import Artifacts, model_report_key
from audience.value.spec import OrderHistory

if TYPE_CHECKING:  # numpy and scipy load only where a model is fitted (not in the read API)
    import numpy as np
    from numpy.typing import NDArray

    from audience.value.training import ValueFit

logger = logging.getLogger(__name__)


def fit_and_store(
    orders: Sequence[OrderHistory | None],
    now: datetime,
    version: str,
    artifacts: Artifacts,
    segments: dict[str, NDArray[np.bool_]],
    calibration_end: date | None = None,
    activate: bool = True,
) -> tuple[ValueFit | None, str]:
    """Fit on the customers' ``orders`` as of ``now``, store, report and (``activate``) put in
    force. Returns the fit (None when there was too little history to fit, said in the log) and
    the report's HTML section."""
    from audience.value.btyd import FitFailed
    from audience.value.orders import OrderLog
    from audience.value.report import render_value_report, value_section
    from audience.value.training import NotEnoughBuyers, fit_value

    log = OrderLog.of([history or OrderHistory([], []) for history in orders])
    try:
        fit = fit_value(log, now, version, calibration_end=calibration_end)
    except (NotEnoughBuyers, FitFailed) as exc:
        logger.warning("no value model fitted: %s", exc)
        return None, f"<p>No value model fitted: {exc}</p>"
    section = value_section(fit, segments)
    report_key = model_report_key(version)  # a backtest's is the value section alone
    if not activate:
        artifacts.put_model_report(version, render_value_report(fit, segments))
    artifacts.values.save(fit.spec, {**fit.metrics, "report": report_key})
    if activate:
        artifacts.values.activate(fit.spec)
    return fit, section


def summary(fit: ValueFit | None) -> dict[str, Any] | None:
    """What a retrain's outcome says of the value model."""
    if fit is None:
        return None
    metrics = fit.metrics
    return {
        "version": fit.spec.version,
        "purchaseModel": metrics["purchaseModel"]["name"],
        "churnModel": metrics["churn"]["chosen"],
        "buyers": metrics["buyers"],
        "holdoutMae": metrics["holdout"]["candidates"][metrics["purchaseModel"]["name"]]["mae"],
    }

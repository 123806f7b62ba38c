"""The value model's lifecycle: fitted by the retrain function from every buyer's order days,
stored with its metrics beside the segmentation model of the same run (``models/<version>/``
``value-spec.json`` and ``value-metrics.json``), put in force (``live/value-model.json``, which
the stream, imports and the rescore read), and served by ``GET /v1/models/value``. A backtest
(``asOf`` or ``calibrationEnd`` in the request) is fitted, stored and reported, never put in
force.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from audience.ports import ObjectStore
from audience.services.artifacts import Artifacts, model_report_key
from audience.services.scoring import LiveValue
from audience.value.spec import OrderHistory

if TYPE_CHECKING:  # numpy and scipy load only where a model is fitted (not in the read API)
    import numpy as np
    from numpy.typing import NDArray

    from audience.value.training import ValueFit

logger = logging.getLogger(__name__)

PREFIX = "models/"


@dataclass(frozen=True)
class ValueModels:
    """Value models in the data bucket."""

    store: ObjectStore

    def save(self, fit: ValueFit, report_key: str) -> None:
        prefix = f"{PREFIX}{fit.spec.version}/"
        self.store.put_text(prefix + "value-spec.json", fit.spec.model_dump_json(indent=1))
        self.store.put_text(prefix + "value-metrics.json", json.dumps({**fit.metrics, "report": report_key}, indent=1))

    def activate(self, fit: ValueFit) -> bool:
        """Put ``fit`` in force unless a later one is (a fanned-out run that started earlier may
        finish after a newer run: versions sort by their start time)."""
        live = self.store.read_text(LiveValue.KEY)
        if live is not None and json.loads(live)["version"] > fit.spec.version:
            logger.info("value model %s not put in force: a later one is", fit.spec.version)
            return False
        self.store.put_text(LiveValue.KEY, fit.spec.model_dump_json())
        return True

    def active(self) -> dict[str, Any] | None:
        """The metrics of the model in force (what ``GET /v1/models/value`` answers), or None."""
        live = self.store.read_text(LiveValue.KEY)
        if live is None:
            return None
        version = json.loads(live)["version"]
        metrics = self.store.read_text(f"{PREFIX}{version}/value-metrics.json")
        return json.loads(metrics) if metrics else None


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

"""The value section of the model report: the holdout's calibration plot, the 12-month value by
segment, and what drives the churn risk (a page of its own for a backtest)."""

from __future__ import annotations

import html
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from numpy.typing import NDArray

from audience.reports import figure_html, table_html
from audience.value.training import ValueFit


def value_section(fit: ValueFit, segments: dict[str, NDArray[np.bool_]]) -> str:
    """HTML for ``fit``; ``segments``: segment name -> which customers are in it."""
    metrics = fit.metrics
    chosen = metrics["purchaseModel"]
    holdout = metrics["holdout"]["candidates"][chosen["name"]]
    parameters = ", ".join(f"{k} = {v:.4g}" for k, v in chosen["parameters"].items())
    spend = ", ".join(f"{k} = {v:.4g}" for k, v in metrics["spendModel"]["parameters"].items())
    parts = [
        f"<p>{metrics['buyers']:,} buyers ({metrics['repeatBuyers']:,} repeat) as of {html.escape(metrics['asOf'])}. "
        f"Purchases: {html.escape(chosen['name'])} ({parameters}; log-likelihood {chosen['logLikelihood']:.2f}), "
        f"chosen because {html.escape(chosen['chosenBecause'])}. Spend: Gamma-Gamma ({spend}).</p>",
        "<h3>Holdout: predicted against actual order days after the calibration end</h3>",
        f"<p>Calibration end {html.escape(metrics['calibrationEnd'])}, {metrics['holdout']['days']} days after it: "
        f"{holdout['predictedTotal']:,.1f} order days predicted, {holdout['actualTotal']:,.0f} happened; "
        f"per-customer MAE {holdout['mae']:.3f}, correlation {holdout['correlation'] or float('nan'):.3f}.</p>",
        figure_html(_calibration_plot(holdout["byRepeatDays"], chosen["name"])),
        table_html(
            ["repeat order days before", "customers", "actual (mean)", "predicted (mean)"],
            [
                [r["x"], f"{r['customers']:,}", f"{r['actual']:.3f}", f"{r['predicted']:.3f}"]
                for r in holdout["byRepeatDays"]
            ],
        ),
        *_intervals(metrics.get("intervals")),
        "<h3>12-month value by segment (discounted, base currency)</h3>",
        _clv_by_segment(fit.clv, segments),
        "<h3>Churn risk</h3>",
        _churn(metrics["churn"]),
    ]
    return "\n".join(parts)


def _intervals(coverage: dict[str, Any] | None) -> list[str]:
    """The prediction intervals' coverage on the holdout (nothing for a fit before them)."""
    if not coverage:
        return []
    if "skipped" in coverage:
        return [f"<p>Prediction intervals not checked: {html.escape(coverage['skipped'])}</p>"]
    rows = []
    for kind, what in (("orders", "order days"), ("value", "spend")):
        for level in ("p80", "p95"):
            held = coverage[kind][level]
            rows.append([what, f"{level[1:]} %", f"{held['coverage']:.1%}", f"{held['meanWidth']:,.2f}"])
    return [
        "<h3>Prediction intervals: how often they held what happened</h3>",
        f"<p>{coverage['customers']:,} buyers, the {coverage['days']} days after the calibration end, by the models "
        f"fitted before it ({coverage['parameterDraws']} parameter draws); a well-calibrated interval holds its "
        "level's share.</p>",
        table_html(["of", "interval", "held", "mean width"], rows),
    ]


def render_value_report(fit: ValueFit, segments: dict[str, NDArray[np.bool_]]) -> str:
    """A page of its own (a backtest: ``asOf`` or ``calibrationEnd`` given)."""
    title = f"Value model {html.escape(fit.spec.version)}"
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>'
        f"<body><h1>{title}</h1>{value_section(fit, segments)}</body></html>"
    )


def _calibration_plot(table: list[dict[str, Any]], name: str) -> Any:
    figure, axis = plt.subplots(figsize=(7, 3.5))
    labels = [str(r["x"]) for r in table]
    axis.plot(labels, [r["actual"] for r in table], marker="o", label="actual")
    axis.plot(labels, [r["predicted"] for r in table], marker="s", linestyle="--", label=f"{name} predicted")
    axis.set_xlabel("repeat order days in the calibration period")
    axis.set_ylabel("mean order days in the holdout")
    axis.legend()
    return figure


def _clv_by_segment(clv: NDArray[np.float64], segments: dict[str, NDArray[np.bool_]]) -> str:
    rows = []
    for name, members in segments.items():
        values = clv[members & ~np.isnan(clv)]
        if len(values):
            rows.append(
                [
                    name,
                    f"{len(values):,}",
                    f"{values.mean():,.2f}",
                    f"{np.median(values):,.2f}",
                    f"{np.percentile(values, 90):,.2f}",
                    f"{values.sum():,.0f}",
                ]
            )
    return table_html(["segment", "buyers", "mean", "median", "90th percentile", "total"], rows)


def _churn(churn: dict[str, Any]) -> str:
    if "btyd" not in churn:
        return f"<p>Not compared: {html.escape(churn['why'])}.</p>"
    models = [churn[k] for k in ("trees", "btyd", "pAlive") if k in churn]
    rows = [[m["name"], f"{m['auc']:.3f}", f"{m['log_loss']:.4f}", f"{m['brier']:.4f}", _ece(m)] for m in models]
    parts = [
        f"<p>Label: no order in the {churn['horizonDays']} days after the calibration end "
        f"({churn['churned']:.1%} of {churn['holdoutCustomers']:,} buyers). Chosen: {html.escape(churn['chosen'])} "
        f"({html.escape(churn['why'])}).</p>",
        table_html(["model", "AUC", "log loss", "Brier", "calibration error (ECE)"], rows),
        "<p>Calibration by decile of predicted risk (predicted → observed churn):</p>",
        table_html(
            ["model", *(f"decile {i + 1}" for i in range(len(models[0]["calibration"])))],
            [[m["name"], *(f"{b['predicted']:.2f} → {b['observed']:.2f}" for b in m["calibration"])] for m in models],
        ),
    ]
    if "trees" in churn:
        parts.append(
            "<p>Global drivers: permutation importance on the holdout (increase in log loss when a "
            "feature is shuffled). Per customer, <code>GET /v1/customers/{id}</code> lists the top drivers "
            "by occlusion (the risk with that one feature set to the population median).</p>"
        )
        parts.append(
            table_html(
                ["feature", "importance", "std"],
                [[r["feature"], f"{r['importance']:.4f}", f"{r['std']:.4f}"] for r in churn["trees"]["importance"]],
            )
        )
        figure, axis = plt.subplots(figsize=(6, 3.5))
        for model in models:
            points = model["calibration"]
            axis.plot(
                [p["predicted"] for p in points], [p["observed"] for p in points], marker="o", label=model["name"]
            )
        axis.plot([0, 1], [0, 1], color="grey", linestyle=":")
        axis.set_xlabel("predicted churn risk")
        axis.set_ylabel("observed churn rate")
        axis.legend(fontsize=7)
        parts.append(figure_html(figure))
    return "\n".join(parts)


def _ece(scores: dict[str, Any]) -> str:
    return f"{scores['ece']:.4f}" if "ece" in scores else ""

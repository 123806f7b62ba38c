"""The training report: one self-contained HTML page (plots inlined as PNG) per model version."""

from __future__ import annotations

import html
import json
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display in Lambda
import matplotlib.pyplot as plt
import numpy as np
from numpy.typing import NDArray
from sklearn.decomposition import PCA

from audience.reports import figure_html, page_html, table_html
from audience.segmentation.features import FEATURES
from audience.segmentation.training import Matrix, Trained, model_space

PLOT_SAMPLE = 5_000  # points in the projection and the distributions


def render_report(trained: Trained, x: Matrix, decision: dict[str, Any], value: str = "") -> str:
    """The page; ``value``: the value model's section (``value/report.py``) when one was fitted."""
    spec, metrics = trained.spec, trained.metrics
    names = spec.clusters.names
    rng = np.random.default_rng(0)
    rows = rng.choice(len(x), min(len(x), PLOT_SAMPLE), replace=False)
    sections = [
        ("Decision", _decision_table(decision)),
        ("Segments", _segments_table(names, trained.labels, x) + figure_html(_sizes(names, trained.labels))),
        ("Choosing k", figure_html(_k_curves(metrics["candidates"])) + _scores_table(metrics)),
        ("Buyers in two dimensions (PCA of their R, F and M ranks)",
         figure_html(_projection(model_space(trained.pipeline, x[rows]), trained.labels[rows], names))),
        ("Features by segment", figure_html(_distributions(x[rows], trained.labels[rows], names))),
    ]  # fmt: skip
    if metrics.get("over_time"):
        sections.append(("Segments over time", _over_time(metrics["over_time"])))
    drift = decision.get("drift")
    if drift:
        sections.append(("Drift against the active model", figure_html(_drift_charts(drift)) + _moves_table(drift)))
    if value:
        sections.append(("Value: lifetime value, probability alive, churn risk", value))
    intro = f"""<p>{metrics["rows"]:,} customers; {metrics["kind"]} with k = {metrics["k"]};
silhouette {metrics["silhouette"]:.3f}, stability (bootstrap ARI) {metrics["stability"]:.3f},
worst refit {metrics["stability_worst"]:.3f};
{metrics["buyers"]:,} buyers clustered, {metrics["prospects"]:,} customers with no order in their own segment.
{html.escape(metrics["choice"])}.</p>"""
    spec_json = html.escape(spec.model_dump_json(indent=1))
    sections.append(
        ("", f"<details><summary>Spec (what the stream scores with)</summary><pre>{spec_json}</pre></details>")
    )
    return page_html(f"Segmentation model {spec.version}", intro, sections)


def _decision_table(decision: dict[str, Any]) -> str:
    rows = [["promoted", decision["promoted"]], ["reason", decision["reason"]],
            ["active before", decision["active_before"] or "none"], ["at", decision["at"]]]  # fmt: skip
    return table_html(["", ""], rows)


def _segments_table(names: list[str], labels: NDArray[np.int64], x: Matrix) -> str:
    monetary = np.nan_to_num(x[:, FEATURES.index("monetary")])
    total = monetary.sum() or 1.0
    rows = []
    for i, name in enumerate(names):
        members = labels == i
        rows.append([i, name, f"{members.sum():,}", f"{members.mean():.1%}", f"{monetary[members].sum() / total:.1%}"])
    return table_html(["id", "segment", "customers", "share", "revenue share"], rows)


def _scores_table(metrics: dict[str, Any]) -> str:
    rows = [[f"{s['k']}{' (chosen)' if s['k'] == metrics['k'] else ''}", f"{s['silhouette']:.3f}",
             f"{s['stability']:.3f}", f"{s['stability_worst']:.3f}", f"{s['min_share']:.1%}",
             f"{s['calinski_harabasz']:.0f}", f"{s['davies_bouldin']:.3f}"]
            for s in metrics["candidates"]["kmeans"]]  # fmt: skip
    header = ["k", "silhouette", "stability", "worst refit", "smallest segment", "Calinski-Harabasz", "Davies-Bouldin"]
    return table_html(header, rows)


def _sizes(names: list[str], labels: NDArray[np.int64]) -> Any:
    figure, axis = plt.subplots(figsize=(8, 3))
    counts = np.bincount(labels, minlength=len(names))
    axis.barh(names, counts, color=plt.cm.tab10(np.arange(len(names)) % 10))
    axis.set_xlabel("customers")
    return figure


def _k_curves(candidates: dict[str, list[dict[str, Any]]]) -> Any:
    figure, axes = plt.subplots(1, 4, figsize=(14, 3))
    kmeans = candidates["kmeans"]
    for axis, key in zip(axes, ("silhouette", "stability", "stability_worst", "min_share"), strict=True):
        axis.plot([s["k"] for s in kmeans], [s[key] for s in kmeans], marker="o")
        axis.set_title(key.replace("_", " "), fontsize=9)
        axis.set_xlabel("k")
    return figure


def _projection(z: Matrix, labels: NDArray[np.int64], names: list[str]) -> Any:
    clustered = ~np.isnan(z).any(axis=1)
    z, labels = z[clustered], labels[clustered]
    points = PCA(n_components=2, random_state=0).fit_transform(z)
    figure, axis = plt.subplots(figsize=(7, 5))
    for i, name in enumerate(names):
        members = labels == i
        axis.scatter(points[members, 0], points[members, 1], s=4, alpha=0.6, label=name)
    axis.legend(markerscale=3, fontsize=8)
    return figure


def _distributions(x: Matrix, labels: NDArray[np.int64], names: list[str]) -> Any:
    shown = ("recency_days", "frequency", "monetary", "average_order_value")
    figure, axes = plt.subplots(1, len(shown), figsize=(14, 3.5))
    for axis, feature in zip(axes, shown, strict=True):
        column = np.log1p(np.clip(np.nan_to_num(x[:, FEATURES.index(feature)]), 0, None))
        axis.boxplot([column[labels == i] for i in range(len(names))], showfliers=False)
        axis.set_title(f"log(1 + {feature})", fontsize=9)
        axis.set_xticks(range(1, len(names) + 1), [str(i) for i in range(len(names))])
        axis.set_xlabel("segment id")
    return figure


def _drift_charts(drift: dict[str, Any]) -> Any:
    figure, (psi_axis, share_axis) = plt.subplots(1, 2, figsize=(12, 3.5))
    psi = drift["psi"]
    psi_axis.barh(list(psi), list(psi.values()))
    psi_axis.axvline(0.2, color="red", linestyle="--")
    psi_axis.set_title("population stability index by feature", fontsize=9)
    before, after = drift["active_shares"], drift["candidate_shares"]
    share_axis.bar(np.arange(len(before)) - 0.2, before, width=0.4, label="active model")
    matched = [0.0] * len(before)
    for candidate, active in drift["matching"].items():
        matched[int(active)] = after[int(candidate)]
    share_axis.bar(np.arange(len(before)) + 0.2, matched, width=0.4, label="candidate (matched)")
    share_axis.set_title("segment shares", fontsize=9)
    share_axis.legend(fontsize=8)
    return figure


def _moves_table(drift: dict[str, Any]) -> str:
    rows = [[move, f"{count:,}"] for move, count in sorted(drift["moves"].items(), key=lambda kv: -kv[1])]
    shift = json.dumps(drift["centre_shift"])
    return (f"<p>{drift['moved']:,} customers would move. Centre shift by candidate segment: {html.escape(shift)}</p>"
            + table_html(["from -> to", "customers"], rows[:30]))  # fmt: skip


def _over_time(found: dict[str, Any]) -> str:
    """Month-to-month membership churn of the customers who barely moved, and retention by segment."""
    membership, retention = found["membership"], found["retention"]
    churn = membership["churn"]
    parts = [
        f"<p>Month to month (this model placing the buyers as they were at each month's ends, rebuilt "
        f"from their order days): of the buyers whose recency, frequency and spend ranks all moved less than "
        f"{membership['rank_step']:.0%}, <b>{'n/a' if churn is None else f'{churn:.1%}'}</b> changed segment "
        f"(goal: at most {membership['goal']:.0%}); of all buyers, "
        f"{'n/a' if membership['all_churn'] is None else format(membership['all_churn'], '.1%')}.</p>",
        table_html(
            ["month", "buyers", "ranks moved < a decile", "of them, changed segment", "all who changed"],
            [[f"{m['start']} → {m['end']}", f"{m['buyers']:,}", f"{m['steady']:,}",
              f"{m['steady_changed']:,} ({m['steady_changed'] / max(m['steady'], 1):.1%})", f"{m['changed']:,}"]
             for m in membership["months"]],
        ),
    ]  # fmt: skip
    if retention is None:
        return "\n".join([*parts, "<p>Retention by segment: too few buyers at the cut-off.</p>"])
    parts += [
        f"<p>Retention: a model with k = {retention['k']} fitted on the buyers as of {retention['cutoff']}, then who "
        f"ordered in the {retention['horizon_days']} days after. {html.escape(retention['best'])} retained the "
        f"most, {html.escape(retention['worst'])} the least: a gap of <b>{retention['gap']:.1%}</b>.</p>",
        table_html(
            ["segment", "customers", f"ordered in the next {retention['horizon_days']} days"],
            [[s["name"], f"{s['customers']:,}", f"{s['retained']:.1%}"]
             for s in sorted(retention["segments"], key=lambda s: -s["retained"])],
        ),
    ]  # fmt: skip
    return "\n".join(parts)

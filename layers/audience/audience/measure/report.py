"""An experiment's report: one self-contained HTML page beside its results.json, with conversion
and revenue per user per variant (95% intervals), the conversion lift per segment, the
sample-ratio check, and the segments' KPIs."""

from __future__ import annotations

import html
from typing import Any

import matplotlib.pyplot as plt

from audience.reports import figure_html, page_html, table_html


def render_experiment_report(results: dict[str, Any], kpis: dict[str, Any] | None) -> str:
    variants, ratio = results["variants"], results["sampleRatio"]
    srm = "MISMATCH: the assignment or the exposure logging is broken" if ratio["mismatch"] else "no mismatch"
    intro = (f"<p>As of {html.escape(results['asOf'])}; control <b>{html.escape(results['control'])}</b>;"
             f" outcomes within {results['windowDays']} days of first exposure ({results['windowsStillOpen']:,}"
             f" windows still open). Sample ratio: {html.escape(str(ratio['counts']))}, chi-square p ="
             f" {ratio['pValue']:.3g}: {srm}.</p>")  # fmt: skip
    conversion = _arms(variants, "conversionInterval", "conversion", "Conversion within the window")
    revenue = _arms(variants, "revenuePerCustomerInterval", "revenuePerCustomer", "Revenue per exposed customer")
    sections = [
        ("Variants", _variant_table(variants) + figure_html(conversion) + figure_html(revenue)),
        ("Conversion lift by segment at first exposure", figure_html(_segment_lifts(results["segments"]))
         + "".join(f"<h3>{html.escape(s)}</h3>" + _variant_table(t) for s, t in results["segments"].items())),
    ]  # fmt: skip
    if kpis:
        sections.append((f"Segment KPIs (as of {kpis['asOf']})", _kpi_table(kpis["segments"])))
    return page_html(f"Experiment {results['experiment']}", intro, sections)


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:.1%}"


def _money(value: float | None) -> str:
    return "" if value is None else f"{value:,.2f}"


def _variant_table(variants: dict[str, dict[str, Any]]) -> str:
    rows = []
    for name, row in variants.items():
        lift, rev, cuped = row.get("conversionLift"), row.get("revenueLift"), row.get("revenueLiftCuped")
        rows.append([
            name, row["exposed"], row["converted"], _pct(row["conversion"]), _money(row["revenuePerCustomer"]),
            _money(row["averageOrderValue"]),
            _lift(lift, "+.1%"), _lift(rev, "+,.2f"),
            f"{_lift(cuped, '+,.2f')} (variance -{cuped['varianceReduction']:.0%})" if cuped else "",
        ])  # fmt: skip
    header = ["variant", "exposed", "converted", "conversion", "revenue / customer", "AOV",
              "conversion lift [95% CI]", "revenue / customer lift [95% CI]", "the same, CUPED [95% CI]"]  # fmt: skip
    return table_html(header, rows)


def _lift(lift: dict[str, Any] | None, form: str) -> str:
    if lift is None:
        return ""
    low, high = format(lift["low"], form), format(lift["high"], form)
    return f"{format(lift['absolute'], form)} [{low}, {high}] p={lift['p_value']:.3g}"


def _arms(variants: dict[str, dict[str, Any]], interval: str, value: str, title: str) -> Any:
    shown = [(name, row) for name, row in variants.items() if row.get(interval)]
    figure, axis = plt.subplots(figsize=(6, 0.6 + 0.5 * len(shown)))
    for y, (_, row) in enumerate(shown):
        low, high = row[interval]
        axis.errorbar(row[value], y, xerr=[[row[value] - low], [high - row[value]]], fmt="o", capsize=4)
    axis.set_yticks(range(len(shown)), [name for name, _ in shown])
    axis.set_title(f"{title} (95% interval)")
    return figure


def _segment_lifts(segments: dict[str, dict[str, dict[str, Any]]]) -> Any:
    points = [(f"{segment} · {variant}", row["conversionLift"]) for segment, table in segments.items()
              for variant, row in table.items() if "conversionLift" in row]  # fmt: skip
    figure, axis = plt.subplots(figsize=(7, 0.8 + 0.4 * max(len(points), 1)))
    for y, (_, lift) in enumerate(points):
        axis.errorbar(lift["absolute"], y, xerr=[[lift["absolute"] - lift["low"]], [lift["high"] - lift["absolute"]]],
                      fmt="o", capsize=4, color="tab:green" if lift["significant"] else "tab:gray")  # fmt: skip
    axis.axvline(0, color="black", linewidth=0.8)
    axis.set_yticks(range(len(points)), [label for label, _ in points])
    axis.set_title("Conversion lift against control (absolute, 95% interval; green: p < 0.05)")
    return figure


def _kpi_table(segments: dict[str, dict[str, Any]]) -> str:
    rows = [[s, k["customers"], _pct(k["conversion30d"]), _money(k["revenuePerCustomer"]),
             _money(k["averageOrderValue"]), _pct(k["retention90d"])] for s, k in segments.items()]  # fmt: skip
    return table_html(["segment", "customers", "conversion 30 d", "revenue / customer", "AOV", "retention 90 d"], rows)

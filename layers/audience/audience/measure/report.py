"""An experiment's report: one self-contained HTML page beside its results.json, with the
decision and which figures to read, conversion and revenue per user per variant (95% intervals),
the lifts (always valid and fixed horizon, corrected for many comparisons), the refunds
guardrail, the conversion lift per segment, the planning, the sample-ratio check, and the
segments' KPIs."""

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
    decision, reading = results.get("decision"), results.get("reading")
    if decision:
        shown = decision["action"] + (f" ({decision['variant']})" if decision.get("variant") else "")
        intro += f"<p><b>Decision: {html.escape(shown)}</b>: {html.escape(decision['reason'])}.</p>"
    if reading:
        intro += f"<p>Read the <b>{html.escape(reading['use'])}</b> figures: {html.escape(reading['reason'])}.</p>"
    sections = [
        ("Variants", _variant_table(variants) + _sequential_table(variants) + figure_html(conversion)
         + figure_html(revenue)),
        ("Conversion lift by segment at first exposure", figure_html(_segment_lifts(results["segments"]))
         + "".join(f"<h3>{html.escape(s)}</h3>" + _variant_table(t) for s, t in results["segments"].items())),
    ]  # fmt: skip
    if results.get("planning"):
        sections.append(("Planning", _planning(results["planning"])))
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


def _sequential_table(variants: dict[str, dict[str, Any]]) -> str:
    """The always-valid sequences (the figures to read while it runs), Holm-adjusted, and the guardrail."""
    rows = []
    for name, row in variants.items():
        if "conversionLift" not in row:
            continue
        guard = row["refundsGuardrail"]
        cuped, cupac = row["revenueLiftCuped"]["varianceReduction"], row["revenueLiftCupac"]["varianceReduction"]
        harm = "HARMED " if guard["harmed"] else "ok "
        rows.append([name, _valid(row["conversionLift"], "+.1%"), _valid(row["revenueLiftCupac"], "+,.2f"),
                     f"{cuped:.0%} / {cupac:.0%}", harm + _valid(guard, "+,.2f")])  # fmt: skip
    header = ["variant", "conversion lift, always valid [95% CS] (Holm)",
              "revenue / customer lift, CUPAC, always valid", "variance reduction CUPED / CUPAC",
              "refunds / customer (guardrail)"]  # fmt: skip
    return table_html(header, rows) if rows else ""


def _valid(lift: dict[str, Any], form: str) -> str:
    low, high = _form(lift["sequential_low"], form), _form(lift["sequential_high"], form)
    text = f"{_form(lift['absolute'], form)} [{low}, {high}] p={_form(lift['sequential_p_value'], '.3g')}"
    adjusted = lift.get("adjusted")
    if adjusted:
        text += (f"; adjusted [{_form(adjusted['sequential_low'], form)}, {_form(adjusted['sequential_high'], form)}]"
                 f" p={adjusted['sequential_p_value']:.3g}")  # fmt: skip
    return text


def _form(value: float | None, form: str) -> str:
    return "n/a" if value is None else format(value, form)


def _planning(planning: dict[str, Any]) -> str:
    if not planning.get("available"):
        return f"<p>{html.escape(planning.get('reason', 'not available'))}</p>"
    intro = (f"<p>To detect a {planning['lift']:.0%} lift at {planning['power']:.0%} power: baseline conversion "
             f"{planning['baselineConversion']:.1%} in the window, revenue per customer "
             f"{planning['baselineRevenuePerCustomer']:,.2f} (variance {planning['revenueVariance']:,.0f}, less "
             f"{planning['varianceReduction']:.0%} by CUPAC), {planning['exposuresPerDay']:,.0f} exposures a day; "
             f"{planning['daysSoFar']} days so far.</p>")  # fmt: skip
    rows = [[metric, n["customersAlwaysValid"], n["daysAlwaysValid"], n["customersFixedHorizon"], n["daysFixedHorizon"]]
            for metric, n in planning["metrics"].items()]  # fmt: skip
    header = ["metric", "customers (always valid)", "days (always valid)", "customers (fixed)", "days (fixed)"]
    return intro + table_html(header, [[("" if v is None else v) for v in row] for row in rows])


def _lift(lift: dict[str, Any] | None, form: str) -> str:
    if lift is None:
        return ""
    low, high = _form(lift["low"], form), _form(lift["high"], form)
    return f"{_form(lift['absolute'], form)} [{low}, {high}] p={_form(lift['p_value'], '.3g')} (fixed horizon)"


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
    """Each segment's always-valid sequence, BH-adjusted (green: the adjusted sequence excludes 0)."""
    points = [(f"{segment} · {variant}", row["conversionLift"]) for segment, table in segments.items()
              for variant, row in table.items() if "conversionLift" in row
              and row["conversionLift"].get("adjusted")]  # fmt: skip
    figure, axis = plt.subplots(figsize=(7, 0.8 + 0.4 * max(len(points), 1)))
    for y, (_, lift) in enumerate(points):
        adjusted, middle = lift["adjusted"], lift["absolute"]
        found = adjusted["sequential_p_value"] < 0.05
        axis.errorbar(middle, y, xerr=[[middle - adjusted["sequential_low"]], [adjusted["sequential_high"] - middle]],
                      fmt="o", capsize=4, color="tab:green" if found else "tab:gray")  # fmt: skip
    axis.axvline(0, color="black", linewidth=0.8)
    axis.set_yticks(range(len(points)), [label for label, _ in points])
    axis.set_title("Conversion lift against control (absolute; always-valid 95% sequence, BH-adjusted across segments)")
    return figure


def _kpi_table(segments: dict[str, dict[str, Any]]) -> str:
    rows = [[s, k["customers"], _pct(k["conversion30d"]), _money(k["revenuePerCustomer"]),
             _money(k["averageOrderValue"]), _pct(k["retention90d"])] for s, k in segments.items()]  # fmt: skip
    return table_html(["segment", "customers", "conversion 30 d", "revenue / customer", "AOV", "retention 90 d"], rows)

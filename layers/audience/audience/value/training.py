"""Fit the value model on every buyer's order days as of a day, with an honest holdout.

1. Split at the calibration end (by default ``horizon`` days before ``as_of``): BG/NBD and
   MBG/NBD are fitted on the history before it and predict each customer's order days after
   it; the one with the lower per-customer error is chosen (the reason is recorded).
2. Churn: the trees are trained on the churn features and the season at a cut-off every two
   weeks whose horizon is over by the calibration end, each labelled by the horizon that
   followed, with their settings and calibration from a time split (``churn.fit_calibrated``),
   then scored with the chosen purchase model's P(no order in the horizon) on the calibration
   end's customers and the horizon after it; the better log loss supplies ``churnRisk``.
3. The prediction intervals of the models fitted before the calibration end are checked on the
   same holdout (``metrics["intervals"]``: how often they held what happened).
4. The chosen models are refitted on all history to ``as_of`` (the trees on every cut-off whose
   horizon is over by then, calibrated again), the purchase model also on ``PARAMETER_DRAWS``
   bootstrap resamples for the intervals' parameter uncertainty, and stored as a ``ValueSpec``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from audience.value import churn
from audience.value.btyd import BetaGeo, FitFailed, GammaGamma, bootstrap_bgnbd, fit_bgnbd, fit_gamma_gamma
from audience.value.coverage import holdout_coverage
from audience.value.orders import AsOf, OrderLog
from audience.value.spec import CHURN_FEATURES, PERIODS, YEAR_DAYS, ChurnModel, PurchaseModel, SpendModel, ValueSpec

Vector = NDArray[np.float64]
HORIZON_DAYS = 90
MIN_BUYERS = 50
MIN_REPEAT_SPENDERS = 20
PARAMETER_DRAWS = 5  # bootstrap refits stored for the intervals (the stream's cost grows with them)
SPEND_PENALIZERS = (1e-3, 1e-2, 1e-1)
TABLE_MAX_X = 7  # the holdout table's last row: customers with 7 or more repeat order days


class NotEnoughBuyers(Exception):
    pass


@dataclass(frozen=True)
class ValueFit:
    spec: ValueSpec
    metrics: dict[str, Any]  # JSON: what GET /v1/models/value answers and the report shows
    clv: Vector  # per customer as of ``as_of`` (NaN for customers without an order)


def fit_value(
    log: OrderLog,
    as_of: datetime,
    version: str,
    calibration_end: date | None = None,
    horizon: int = HORIZON_DAYS,
    annual_discount: float = 0.1,
    penalizer: float = 0.0,
) -> ValueFit:
    today = as_of.date().toordinal()
    cut = calibration_end.toordinal() if calibration_end else today - horizon
    if not 0 < cut < today:
        raise ValueError(f"calibrationEnd must be before asOf ({date.fromordinal(cut)} is not before {as_of.date()})")
    before, now = log.as_of(cut), log.as_of(today)
    if int(before.buyer.sum()) < MIN_BUYERS:
        raise NotEnoughBuyers(f"{int(before.buyer.sum())} buyers by the calibration end; at least {MIN_BUYERS}")
    spenders = int(((now.x > 0) & (now.zbar > 0)).sum())
    if spenders < MIN_REPEAT_SPENDERS:
        raise NotEnoughBuyers(f"{spenders} repeat buyers with a known spend; Gamma-Gamma needs {MIN_REPEAT_SPENDERS}")

    # 1. the purchase model, chosen on the holdout
    chosen, holdout, why = _choose_purchases(log, before, cut, today, penalizer)

    # 2. churn risk: trees against the purchase model on the same holdout
    comparison, churn_model = _churn(log, before, chosen, cut, today, horizon)

    # 3. the prediction intervals, judged on the same holdout
    coverage = _coverage(log, before, chosen, cut, today, penalizer)

    # 4. refit on everything to as_of
    purchases = _fit_purchases(now, modified=chosen.modified, penalizer=penalizer)
    spend, spend_penalizer = _fit_spend(now, penalizer)
    if churn_model.kind == "trees":
        churn_model = _final_trees(log, today, horizon, comparison["trees"]["settings"], churn_model)
    clv = _clv(purchases, spend, now, annual_discount)
    buyers_clv = clv[now.buyer]
    if not np.all(np.isfinite(buyers_clv)):
        raise FitFailed(f"{int((~np.isfinite(buyers_clv)).sum())} buyers' 12-month value is not finite")
    spec = ValueSpec(
        version=version,
        as_of=as_of,
        annual_discount=annual_discount,
        purchases=PurchaseModel(
            kind="mbgnbd" if purchases.modified else "bgnbd",
            r=purchases.r,
            alpha=purchases.alpha,
            a=purchases.a,
            b=purchases.b,
            draws=[(m.r, m.alpha, m.a, m.b) for m in _draws(now, purchases.modified, penalizer)],
        ),
        spend=SpendModel(p=spend.p, q=spend.q, v=spend.v, mean=_mean_spend(spend, now)),
        churn=churn_model,
        clv_percentiles=np.percentile(buyers_clv, np.arange(1, 100)).tolist(),
    )
    metrics = _metrics(spec, now, cut, today, purchases, spend, spend_penalizer, holdout, comparison, buyers_clv, why)
    return ValueFit(spec, {**metrics, "intervals": coverage}, clv)


def _choose_purchases(
    log: OrderLog, before: AsOf, cut: int, today: int, penalizer: float
) -> tuple[BetaGeo, dict[str, dict[str, float]], str]:
    """BG/NBD and MBG/NBD fitted before ``cut`` and judged on the orders after it: the one with
    the lower per-customer MAE, every candidate's holdout figures, and why it was chosen."""
    actual = log.orders_between(cut, today)[before.buyer]
    candidates, failed = [], {}
    for modified in (False, True):
        try:
            candidates.append(_fit_purchases(before, modified=modified, penalizer=penalizer))
        except FitFailed as exc:
            failed["MBG/NBD" if modified else "BG/NBD"] = str(exc)
    if not candidates:
        raise FitFailed("; ".join(failed.values()))
    holdout = {model.name: _holdout(model, before, actual, today - cut) for model in candidates}
    chosen = min(candidates, key=lambda m: holdout[m.name]["mae"])
    why = (
        f"{chosen.name}: per-customer MAE {holdout[chosen.name]['mae']:.4f}"
        + "".join(f" against {holdout[m.name]['mae']:.4f} for {m.name}" for m in candidates if m is not chosen)
        + "".join(f"; {name} failed: {reason}" for name, reason in failed.items())
    )
    return chosen, holdout, why + f" ({today - cut} days after the calibration end)"


def _metrics(
    spec: ValueSpec, now: AsOf, cut: int, today: int, purchases: BetaGeo, spend: GammaGamma, spend_penalizer: float,
    holdout: dict[str, dict[str, float]], comparison: dict[str, Any], buyers_clv: Vector, why: str,
) -> dict[str, Any]:  # fmt: skip
    """What ``GET /v1/models/value`` answers and the report shows."""
    version = spec.version
    as_of = spec.as_of
    return {
        "version": version,
        "asOf": as_of.isoformat(),
        "calibrationEnd": date.fromordinal(cut).isoformat(),
        "buyers": int(now.buyer.sum()),
        "repeatBuyers": int((now.x[now.buyer] > 0).sum()),
        "purchaseModel": {
            "kind": spec.purchases.kind,
            "timeUnit": "day",
            "name": purchases.name,
            "parameters": _params(purchases),
            "logLikelihood": purchases.log_likelihood,
            "chosenBecause": why,
        },
        "spendModel": {
            "parameters": {"p": spend.p, "q": spend.q, "v": spend.v},
            "logLikelihood": spend.log_likelihood,
            "penalizer": spend_penalizer,
        },
        "holdout": {"days": today - cut, "candidates": holdout},
        "churn": comparison,
        "clv": {
            "mean": float(buyers_clv.mean()),
            "median": float(np.median(buyers_clv)),
            "p90": float(np.percentile(buyers_clv, 90)),
            "total": float(buyers_clv.sum()),
        },
    }


def _fit_purchases(stats: AsOf, modified: bool, penalizer: float) -> BetaGeo:
    b = stats.buyer
    return fit_bgnbd(stats.x[b], stats.t_x[b], stats.big_t[b], penalizer=penalizer, modified=modified)


def _draws(stats: AsOf, modified: bool, penalizer: float) -> list[BetaGeo]:
    b = stats.buyer
    return bootstrap_bgnbd(stats.x[b], stats.t_x[b], stats.big_t[b], PARAMETER_DRAWS, penalizer, modified)


def _coverage(log: OrderLog, before: AsOf, chosen: BetaGeo, cut: int, today: int, penalizer: float) -> dict[str, Any]:
    """The intervals of the model fitted before ``cut`` (its draws, Gamma-Gamma on the same
    history) against the order days and spend after it."""
    draws = _draws(before, chosen.modified, penalizer) or [chosen]
    try:
        spend, _ = _fit_spend(before, penalizer)
    except FitFailed as exc:
        return {"skipped": f"no spend model before the calibration end: {exc}"}
    orders, spent = log.orders_between(cut, today), log.spend_between(cut, today)
    return holdout_coverage(draws, spend, before, orders, spent, today - cut)


def _fit_spend(stats: AsOf, penalizer: float) -> tuple[GammaGamma, float]:
    """Gamma-Gamma on the repeat buyers. When spend barely varies within customers the
    unpenalised likelihood has no finite optimum (p, q and v run off): then the smallest of
    ``SPEND_PENALIZERS`` that converges, which the metrics record."""
    x, zbar = stats.x[stats.buyer], stats.zbar[stats.buyer]
    failures = []
    for tried in (penalizer, *(p for p in SPEND_PENALIZERS if p > penalizer)):
        try:
            return fit_gamma_gamma(x, zbar, penalizer=tried), tried
        except FitFailed as exc:
            failures.append(f"penalizer {tried}: {exc}")
    raise FitFailed("; ".join(failures))


def _mean_spend(spend: GammaGamma, stats: AsOf) -> float:
    """The population's expected spend per order (what a customer without repeat orders is
    expected to spend): p v / (q - 1), which needs q > 1; otherwise the buyers' observed mean."""
    if spend.q > 1:
        return spend.p * spend.v / (spend.q - 1)
    return float(np.nanmean(stats.features[stats.buyer, 4]))  # average_spend per order day


def _params(model: BetaGeo) -> dict[str, float]:
    return {"r": model.r, "alpha": model.alpha, "a": model.a, "b": model.b}


def _holdout(model: BetaGeo, before: AsOf, actual: Vector, days: int) -> dict[str, Any]:
    """Predicted against actual order days after the calibration end: per customer, in total,
    and by the number of repeat order days before it (the calibration plot's table)."""
    b = before.buyer
    x, predicted = before.x[b], model.conditional_expected(days, before.x[b], before.t_x[b], before.big_t[b])
    table = []
    for k in range(TABLE_MAX_X + 1):
        rows = x == k if k < TABLE_MAX_X else x >= k
        if rows.any():
            table.append(
                {
                    "x": k if k < TABLE_MAX_X else f"{k}+",
                    "customers": int(rows.sum()),
                    "actual": float(actual[rows].mean()),
                    "predicted": float(predicted[rows].mean()),
                }
            )
    return {
        "logLikelihood": model.log_likelihood,
        "parameters": _params(model),
        "mae": float(np.mean(np.abs(predicted - actual))),
        "correlation": float(np.corrcoef(predicted, actual)[0, 1]) if actual.std() > 0 else None,
        "predictedTotal": float(predicted.sum()),
        "actualTotal": float(actual.sum()),
        "byRepeatDays": table,
    }


def _churn(
    log: OrderLog, before: AsOf, purchases: BetaGeo, cut: int, today: int, horizon: int
) -> tuple[dict[str, Any], ChurnModel]:
    b = before.buyer
    typical = _typical(before)
    fallback = ChurnModel(kind="btyd", horizon_days=horizon, typical=typical)
    if today - cut < horizon:
        return {"chosen": "btyd", "why": f"the holdout is shorter than the churn horizon ({horizon} days)"}, fallback
    y = (log.orders_between(cut, cut + horizon)[b] == 0).astype(np.int64)
    if y.min() == y.max():
        everyone = "every buyer" if y[0] else "no buyer"
        return {"chosen": "btyd", "why": f"{everyone} churned in the holdout: nothing to compare on"}, fallback
    btyd_risk = purchases.p_no_order(horizon, before.x[b], before.t_x[b], before.big_t[b])
    compared: dict[str, Any] = {
        "horizonDays": horizon,
        "holdoutCustomers": int(b.sum()),
        "churned": float(y.mean()),
        "btyd": {"name": f"{purchases.name} P(no order in {horizon} days)", **churn.scores(y, btyd_risk)},
        "pAlive": {
            "name": f"{purchases.name} 1 - P(alive)",
            **churn.scores(y, 1 - purchases.p_alive(before.x[b], before.t_x[b], before.big_t[b])),
        },
    }
    train = churn.snapshots(log, cut, horizon)  # every label known by the calibration end: the holdout is unseen
    if not churn.trainable(train.y):
        compared.update(chosen="btyd", why=f"too few labelled buyers to train trees ({len(train.y)})")
        return compared, fallback
    model = churn.fit_calibrated(train, horizon)
    holdout = churn.at(log, cut)
    uncalibrated = churn.scores(y, model.model.predict_proba(holdout)[:, 1])
    compared["trees"] = {
        "name": "gradient-boosted trees on the churn features and the season, calibrated",
        "settings": model.settings,
        "crossValidation": model.table,
        "training": {"rows": len(train.y), "cutoffs": len(set(train.cutoffs.tolist())),
                     "firstCutoff": date.fromordinal(int(train.cutoffs.min())).isoformat(),
                     "lastLabelDay": date.fromordinal(int(train.cutoffs.max()) + horizon).isoformat()},
        "calibrationFit": model.calibration,
        **churn.scores(y, model.risk(holdout)),
        "uncalibrated": {k: uncalibrated[k] for k in ("auc", "log_loss", "ece")},
        "importance": churn.importance(model, holdout, y),
    }  # fmt: skip
    better = compared["trees"]["log_loss"] < compared["btyd"]["log_loss"]
    compared["chosen"] = "trees" if better else "btyd"
    compared["why"] = (
        f"holdout log loss {compared['trees']['log_loss']:.4f} (trees) against "
        f"{compared['btyd']['log_loss']:.4f} ({purchases.name})"
    )
    if not better:
        return compared, fallback
    return compared, _trees_model(model, horizon, typical)


def _trees_model(model: churn.Calibrated, horizon: int, typical: list[float | None]) -> ChurnModel:
    baseline, trees = churn.export(model.model)
    return ChurnModel(kind="trees", horizon_days=horizon, typical=typical, baseline=baseline, trees=trees,
                      scale=model.scale, season=True)  # fmt: skip


def _final_trees(log: OrderLog, today: int, horizon: int, settings: dict[str, Any], chosen: ChurnModel) -> ChurnModel:
    """The trees retrained on every labelled cut-off up to ``today`` and calibrated again, with
    the settings chosen above."""
    train = churn.snapshots(log, today, horizon)
    if not churn.trainable(train.y):
        return chosen
    return _trees_model(churn.fit_calibrated(train, horizon, settings), horizon, _typical(log.as_of(today)))


def _typical(stats: AsOf) -> list[float | None]:
    medians = np.nanmedian(stats.features[stats.buyer], axis=0) if stats.buyer.any() else [np.nan] * 8
    return [None if np.isnan(m) else float(m) for m in medians][: len(CHURN_FEATURES)]


def _clv(purchases: BetaGeo, spend: GammaGamma, stats: AsOf, annual_discount: float) -> Vector:
    """The discounted value of the next 12 months' expected orders (four periods, each discounted
    at its middle), as ``ValueSpec.values`` computes it for one customer."""
    b = stats.buyer
    x, t_x, big_t = stats.x[b], stats.t_x[b], stats.big_t[b]
    repeat = (x > 0) & (stats.zbar[b] > 0)
    value = np.where(repeat, spend.expected_spend(x, np.where(repeat, stats.zbar[b], 1.0)), _mean_spend(spend, stats))
    ends = (0.0, *PERIODS)
    cumulative = [np.zeros(len(x))] + [purchases.conditional_expected(t, x, t_x, big_t) for t in PERIODS]
    total = sum(
        (cumulative[i + 1] - cumulative[i]) * value / (1 + annual_discount) ** ((ends[i] + ends[i + 1]) / 2 / YEAR_DAYS)
        for i in range(len(PERIODS))
    )
    clv = np.full(len(stats.x), np.nan)
    clv[b] = total
    return clv

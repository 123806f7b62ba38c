"""``/v1/models``' answers: the value and segmentation models, how they were chosen and how they
scored. Each is read from the metrics document the retrain function stores (some of its keys
snake_case, some camelCase) and answered camelCase, every figure named."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from audience.api.views import View, absent
from audience.domain.segments import segment_id
from audience.segmentation.spec import SegmentSpec

# ---------------------------------------------------------------- the value model


class PurchaseParameters(View):
    """BG/NBD (or MBG/NBD): the purchase rate's Gamma (shape ``r``, scale ``alpha`` in days) and
    the dropout probability's Beta (``a``, ``b``)."""

    r: float
    alpha: float
    a: float
    b: float


class SpendParameters(View):
    """Gamma-Gamma: ``p``, ``q``, ``v``."""

    p: float
    q: float
    v: float


class PurchaseModelView(View):
    kind: str = Field(description="bgnbd or mbgnbd")
    time_unit: str = Field(description="the unit of t, T and 1/alpha: day")
    name: str
    parameters: PurchaseParameters
    log_likelihood: float
    chosen_because: str


class SpendModelView(View):
    parameters: SpendParameters
    log_likelihood: float
    penalizer: float | None = Field(
        default=None, description="the smallest that converged (absent: not recorded)", exclude_if=absent
    )


class HoldoutRow(View):
    x: int | str = Field(description="repeat order days in the calibration period (the last row: 7+)")
    customers: int
    actual: float = Field(description="mean order days in the holdout")
    predicted: float


class HoldoutView(View):
    log_likelihood: float
    parameters: PurchaseParameters
    mae: float = Field(description="per-customer mean absolute error of order days in the holdout")
    correlation: float | None
    predicted_total: float
    actual_total: float
    by_repeat_days: list[HoldoutRow]


class Holdout(View):
    days: int
    candidates: dict[str, HoldoutView] = Field(description="BG/NBD and MBG/NBD on the same split, by name")


class CalibrationBin(View):
    predicted: float = Field(description="mean predicted risk of the bin")
    observed: float = Field(description="share of the bin who churned")
    customers: int | None = Field(default=None, description="in the bin (a tenth of the holdout)", exclude_if=absent)


class ChurnScores(View):
    """A churn risk's scores on the holdout."""

    name: str
    auc: float
    log_loss: float
    brier: float
    ece: float | None = Field(
        default=None,
        description="expected calibration error: the customers' mean gap between predicted and observed, by bin",
        exclude_if=absent,
    )
    calibration: list[CalibrationBin] = Field(description="ten bins by predicted risk (deciles)")


class TreeSettings(View):
    max_leaf_nodes: int
    learning_rate: float


class CrossValidationRow(TreeSettings):
    cv_log_loss: float = Field(
        description="log loss on the latest labelled horizon of trees trained on the cut-offs before it "
        "(5-fold cross-validated when the history is too short for that split)"
    )


class FeatureImportance(View):
    feature: str
    importance: float = Field(description="how much the holdout log loss worsens with the feature shuffled")
    std: float


class TreeTraining(View):
    rows: int = Field(description="buyers at every cut-off, one row each")
    cutoffs: int = Field(description="cut-offs, every 14 days")
    first_cutoff: str
    last_label_day: str = Field(description="the last day any training label looked at (the calibration end)")


class CalibrationFit(View):
    kind: str = Field(description="temperature: one factor on the trees' log-odds; none: not calibrated")
    factor: float | None = Field(default=None, exclude_if=absent)
    train_rows: int | None = Field(default=None, description="rows the probe trees were trained on", exclude_if=absent)
    calibration_rows: int | None = Field(default=None, description="the latest labelled horizon's", exclude_if=absent)
    cutoffs: list[str] | None = Field(
        default=None,
        description="the probe's first and last cut-off, the calibration's first and last",
        exclude_if=absent,
    )
    why: str | None = Field(default=None, exclude_if=absent)


class UncalibratedScores(View):
    auc: float
    log_loss: float
    ece: float


class TreeScores(ChurnScores):
    settings: TreeSettings = Field(description="the best on the time split")
    cross_validation: list[CrossValidationRow]
    importance: list[FeatureImportance]
    training: TreeTraining | None = Field(default=None, exclude_if=absent)
    calibration_fit: CalibrationFit | None = Field(default=None, exclude_if=absent)
    uncalibrated: UncalibratedScores | None = Field(
        default=None, description="the same trees before calibration", exclude_if=absent
    )


class ChurnComparison(View):
    """Trees against BG/NBD on the holdout (the scores are absent when there was nothing to
    compare on: ``why`` says so)."""

    chosen: str = Field(description="trees or btyd")
    why: str
    horizon_days: int | None = Field(default=None, exclude_if=absent)
    holdout_customers: int | None = Field(default=None, exclude_if=absent)
    churned: float | None = Field(
        default=None, description="share of the holdout's buyers who churned", exclude_if=absent
    )
    btyd: ChurnScores | None = Field(default=None, description="P(no order in the horizon)", exclude_if=absent)
    p_alive: ChurnScores | None = Field(default=None, description="1 - P(alive)", exclude_if=absent)
    trees: TreeScores | None = Field(
        default=None, description="absent when too few buyers to train them", exclude_if=absent
    )


class ClvSummary(View):
    """Buyers' 12-month value, in the base currency."""

    mean: float
    median: float
    p90: float
    total: float


class Held(View):
    coverage: float = Field(description="share of the holdout's buyers whose interval held what happened")
    mean_width: float = Field(description="the intervals' mean width (orders, or base currency)")


class Coverage(View):
    p80: Held
    p95: Held


class IntervalCoverage(View):
    """The prediction intervals' coverage on the holdout: orders and spend over its days, by the
    models fitted before the calibration end (``skipped`` says why when not measured)."""

    days: int | None = Field(default=None, exclude_if=absent)
    customers: int | None = Field(default=None, description="buyers scored (a sample above 20,000)", exclude_if=absent)
    parameter_draws: int | None = Field(default=None, exclude_if=absent)
    orders: Coverage | None = Field(default=None, exclude_if=absent)
    value: Coverage | None = Field(default=None, exclude_if=absent)
    skipped: str | None = Field(default=None, exclude_if=absent)


class ValueModelView(View):
    """``GET /v1/models/value``: the value model in force, how it was chosen and how it scored."""

    version: str
    as_of: str
    calibration_end: str
    buyers: int
    repeat_buyers: int
    purchase_model: PurchaseModelView
    spend_model: SpendModelView
    holdout: Holdout
    churn: ChurnComparison = Field(description="trees against BG/NBD on the holdout: AUC, log loss, Brier, calibration")
    clv: ClvSummary
    intervals: IntervalCoverage | None = Field(
        default=None, description="absent for models fitted before intervals", exclude_if=absent
    )
    report: str = Field(description="the report's key in the data bucket")


# ---------------------------------------------------------------- the segmentation model


class Stability(View):
    mean: float = Field(description="mean adjusted Rand index of refits on bootstrap resamples")
    worst: float | None = Field(description="the worst refit (none for models trained before it was kept)")


class LearnedSegmentView(View):
    id: str = Field(description="as GET /v1/segments lists it: learned:<slug>")
    segment: int
    name: str
    description: str
    share: float = Field(description="of the customers it was trained on")
    size: int = Field(description="customers in it at training")
    revenue_share: float | None = Field(description="of their net revenue, at training")


class CandidateScores(View):
    """One k tried (on a sample of the buyers)."""

    k: int
    silhouette: float
    min_share: float | None = Field(default=None, description="the smallest segment's share of buyers")
    stability: float | None = Field(default=None, description="mean adjusted Rand index of bootstrap refits")
    stability_worst: float | None = Field(default=None, description="the worst refit's")
    calinski_harabasz: float | None = None
    davies_bouldin: float | None = None


class Drift(View):
    """The candidate against the model in force: feature drift and how the segments moved."""

    psi: dict[str, float] = Field(default_factory=dict, description="population stability index by feature")
    matching: dict[str, int] = Field(default_factory=dict, description="candidate segment -> active segment")
    centre_shift: dict[str, float] = Field(default_factory=dict, description="by candidate segment")
    active_shares: list[float] = Field(default_factory=list)
    candidate_shares: list[float] = Field(default_factory=list)
    moves: dict[str, int] = Field(default_factory=dict, description='"active name -> candidate name": customers')
    moved: int = 0
    active_silhouette: float | None = None
    active_names: list[str] = Field(default_factory=list)


class Decision(View):
    """Whether the retrain put the model in force, and why."""

    promoted: bool
    reason: str
    active_before: str | None = Field(description="the model in force before (none: the first)")
    at: str
    drift: Drift | None = Field(default=None, description="none when no model was in force")


class MembershipMonth(View):
    start: str
    end: str
    buyers: int = Field(description="customers with an order by the month's start")
    steady: int = Field(
        description="of them, those whose recency, frequency and spend ranks all moved less than a decile"
    )
    steady_changed: int = Field(description="of the steady, those whose segment changed")
    changed: int = Field(description="of all, those whose segment changed")


class MembershipChurn(View):
    """Month to month, the model as trained placing the buyers as they were at each month's ends."""

    rank_step: float = Field(description="a decile: the most a steady customer's ranks moved")
    goal: float
    churn: float | None = Field(description="share of the steady buyers whose segment changed, over all months")
    all_churn: float | None = Field(description="share of all buyers whose segment changed, over all months")
    months: list[MembershipMonth]


class SegmentRetention(View):
    name: str
    customers: int
    retained: float = Field(description="share who ordered in the horizon after the cut-off")


class RetentionBySegment(View):
    """A model with the same k fitted on the buyers as of the cut-off, then who ordered after it."""

    cutoff: str
    horizon_days: int
    k: int
    segments: list[SegmentRetention]
    best: str
    worst: str
    gap: float = Field(description="the best segment's retention minus the worst's")


class SegmentsOverTime(View):
    membership: MembershipChurn
    retention: RetentionBySegment | None = Field(description="none when too few buyers at the cut-off")


class SegmentModelView(View):
    """``GET /v1/models/segments[/{version}]``: a segmentation model, how it was chosen and how it scored."""

    version: str
    active: bool
    kind: str = Field(description="kmeans")
    k: int
    rows: int = Field(description="customers it was trained on")
    choice: str | None = Field(description="why this k")
    silhouette: float
    stability: Stability
    segments: list[LearnedSegmentView]
    candidates: dict[str, list[CandidateScores]] = Field(description="every k tried, per family, with its scores")
    decision: Decision | None = Field(description="promoted or not, and why")
    over_time: SegmentsOverTime | None = Field(
        default=None,
        description="membership churn and retention by segment (models trained since issue 26)",
        exclude_if=absent,
    )

    @classmethod
    def of(cls, version: str, active: bool, spec: SegmentSpec, metrics: dict[str, Any]) -> SegmentModelView:
        """The view of a stored model: its spec and its training metrics (with the decision)."""
        rows, names = int(metrics["rows"]), spec.clusters.names
        sizes = metrics.get("sizes") or [round(share * rows) for share in metrics["shares"]]  # (earlier releases)
        revenue = metrics.get("revenue_shares") or [None] * len(names)
        descriptions = spec.clusters.descriptions or [""] * len(names)
        segments = [LearnedSegmentView(id=segment_id("learned", name), segment=i, name=name,
                                       description=descriptions[i], share=sizes[i] / max(rows, 1), size=sizes[i],
                                       revenue_share=revenue[i])
                    for i, name in enumerate(names)]  # fmt: skip
        return cls(
            version=version, active=active, kind=metrics["kind"], k=metrics["k"], rows=rows,
            choice=metrics.get("choice"), silhouette=metrics["silhouette"],
            stability=Stability(mean=metrics["stability"], worst=metrics.get("stability_worst")),
            segments=segments, candidates=metrics["candidates"], decision=metrics.get("decision"),
            over_time=metrics.get("over_time"),
        )  # fmt: skip

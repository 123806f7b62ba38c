"""Retraining: read every customer, fit a candidate segmentation model, compare it with the active
one (drift and a shadow assignment), decide with the promotion policy, store the candidate
whatever the decision (``artifacts.SegmentModels``) with its report, fit the value and
recommendation models on the same read, and rescore every customer when something changed.

In one invocation, or fanned out over the work queue at scale: one ``features`` step per scan
segment puts its part (``artifacts.Parts``); the last worker asks for ``train``, which decides and,
on promotion, asks for one ``assign`` step per segment. The run id is the model's version: a
``train`` delivered twice trains once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np

from audience.ports import ModelRegistry, ProfileScan, WorkQueue
from audience.segmentation.drift import Drift, PromotionPolicy, compare, decide, kept_names, population_stability
from audience.segmentation.over_time import over_time
from audience.segmentation.report import render_report
from audience.segmentation.training import Matrix, Trained, TrainingConfig, model_space, silhouette, train
from audience.services import recommender_fit
from audience.services.artifacts import Artifacts, live_recommender, model_report_key
from audience.services.fan_out import Parts, send_steps
from audience.services.pipelines import Pipelines
from audience.services.population import Customer, pack, read_customers, unpack
from audience.services.rescoring import Rescoring
from audience.services.value import fit_and_store, summary

MIN_CUSTOMERS = 50  # fewer cannot support ten candidate segments, bootstraps and a gate


class NotEnoughCustomers(Exception):
    pass


@dataclass
class RetrainOutcome:
    version: str
    promoted: bool
    reason: str
    customers: int
    moved: int = 0  # customers whose segment changed and were written
    report_key: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    drift: dict[str, Any] | None = None
    value: dict[str, Any] | None = None  # the value model fitted and put in force (None: too little history)
    recommender: dict[str, Any] | None = None  # the recommendation model's offline table (None: no purchases)


@dataclass(frozen=True)
class Backtest:
    """The value model fitted on history as it stood at a moment, scored on what followed."""

    version: str
    report: str
    metrics: dict[str, Any]


def new_version(now: datetime) -> str:
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"  # sorts by time, never collides


@dataclass(frozen=True)
class Retraining:
    """Fits, decides and stores the models; ``rescoring`` places customers afterwards."""

    rescoring: Rescoring
    pipelines: Pipelines  # the fitted models (the rescoring's artifacts)
    registry: ModelRegistry
    work: WorkQueue | None  # the fanned-out steps (None: everything in this invocation)
    policy: PromotionPolicy = field(default_factory=PromotionPolicy)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    population: ProfileScan | None = None  # where features are read (None: the rescoring's table)

    @property
    def profiles(self) -> ProfileScan:
        return self.population or self.rescoring.profiles

    @property
    def artifacts(self) -> Artifacts:
        return self.rescoring.artifacts

    def retrain(self, now: datetime) -> RetrainOutcome:
        """Everything in this invocation: read, train, decide, store, fit the value model, and
        rescore every customer when either changed."""
        customers, x = read_customers(self.profiles, self.rescoring.scan_segments, now, training=True)
        outcome = self._train_and_decide(customers, x, new_version(now), now)
        if outcome.promoted or outcome.value is not None:
            outcome.moved = self.rescoring.rescore(now, f"model {self.registry.active()}")
        return outcome

    def backtest(self, as_of: datetime, calibration_end: date | None) -> Backtest:
        """The value model fitted on history as it stood at ``as_of`` (split at ``calibration_end``)
        and scored on what followed; stored and reported, never put in force."""
        customers, _ = read_customers(self.profiles, self.rescoring.scan_segments, as_of, training=True)
        fit, section = fit_and_store([c.orders for c in customers], as_of, new_version(as_of), self.artifacts, {},
                                     calibration_end, activate=False)  # fmt: skip
        if fit is None:
            raise NotEnoughCustomers(section.removeprefix("<p>").removesuffix("</p>"))
        return Backtest(fit.spec.version, model_report_key(fit.spec.version), fit.metrics)

    # ------------------------------------------------------------ the same, fanned out

    def start(self, segments: int, now: datetime) -> str:
        """Fan out: one ``features`` step per scan segment; the run id is the model's version."""
        return send_steps(self.work, "features", new_version(now), segments)

    def parts(self, run: str) -> Parts:
        return self.artifacts.parts("models", run)

    def features(self, run: str, segment: int, segments: int, now: datetime) -> bool:
        """Read one scan segment's customers and features into the run's parts; the worker that
        finds every part there asks for training (returns whether it did)."""
        customers, x = read_customers(self.profiles, segments, now, only=segment, training=True)
        parts = self.parts(run)
        parts.put(segment, pack(customers, x))
        if not parts.complete(segments) or self.work is None:
            return False
        self.work.send({"action": "train", "run": run, "segments": segments})
        return True

    def train(self, run: str, segments: int, now: datetime) -> RetrainOutcome | None:
        """Train on every segment's features; on promotion, one ``assign`` step per segment. None
        when this run was trained already (a repeated delivery)."""
        if self.artifacts.segments.spec(run) is not None:
            return None
        unpacked = [unpack(data) for data in self.parts(run).gather(segments) or []]
        customers = [c for part, _ in unpacked for c in part]
        x = np.concatenate([m for _, m in unpacked]) if unpacked else np.empty((0, 0))
        outcome = self._train_and_decide(customers, x, run, now)
        if outcome.promoted:
            send_steps(self.work, "assign", run, segments)
        return outcome

    def assign(self, run: str, segment: int, now: datetime) -> int:
        """Place one segment's customers with the run's model (promoted by ``train``)."""
        customers, x = unpack(self.parts(run).read(segment) or b"")
        model = self.pipelines.load(run)
        return self.rescoring.assign(customers, x, model.pipeline.predict(x), model.spec, now)

    # ------------------------------------------------------------ one decision

    def _train_and_decide(self, customers: list[Customer], x: Matrix, version: str, now: datetime) -> RetrainOutcome:
        """Fit, compare with the active model, decide, store the candidate and its report with the
        value and recommendation models, and make it active when promoted (placing customers is
        the caller's step)."""
        if len(customers) < MIN_CUSTOMERS:
            raise NotEnoughCustomers(f"{len(customers)} customers; retraining needs at least {MIN_CUSTOMERS}")
        trained = train(x, version, self.training)
        trained.metrics["over_time"] = over_time(trained, [c.orders for c in customers], now.date().toordinal(),
                                                 self.training)  # fmt: skip
        active_version = self.registry.active()
        drift = self._drift(active_version, trained, x) if active_version else None
        if drift is not None:
            names = kept_names(trained.spec.clusters.names, drift)
            trained.spec = trained.spec.model_copy(update={"clusters": trained.spec.clusters.model_copy(update={
                "names": names})})  # fmt: skip
        promoted, reason = decide(trained.metrics, drift, self.policy)
        drift_json = drift.to_json() if drift else None
        decision = {"promoted": promoted, "reason": reason, "active_before": active_version, "at": now.isoformat(),
                    "drift": drift_json}  # fmt: skip
        self.pipelines.save(trained, decision)
        names = trained.spec.clusters.names
        members = {name: trained.labels == i for i, name in enumerate(names)}
        value, section = fit_and_store([c.orders for c in customers], now, version, self.artifacts, members)
        report_key = self.artifacts.put_model_report(version, render_report(trained, x, decision, section))
        recommender = recommender_fit.fit_and_store(
            [(c.customer_id, c.products) for c in customers if c.products],
            {c.customer_id: names[label] for c, label in zip(customers, trained.labels, strict=True)},
            version,
            self.artifacts,
            live_recommender(self.artifacts.store).get(now),
        )
        if promoted:
            self.registry.activate(version, reason, now)
        return RetrainOutcome(version, promoted, reason, len(customers), 0, report_key, trained.metrics, drift_json,
                              summary(value), recommender)  # fmt: skip

    def _drift(self, active_version: str, trained: Trained, x: Matrix) -> Drift:
        active = self.pipelines.load(active_version)
        z, active_z = model_space(trained.pipeline, x), model_space(active.pipeline, x)
        active_labels = active.pipeline[-1].predict(active_z)  # = active.pipeline.predict(x), transformed once
        drift = compare(z, active_labels, trained.labels, active.spec.clusters.names, trained.spec.clusters.names)
        drift.psi = population_stability(active.metrics["training_bins"], x)
        drift.active_silhouette = silhouette(active_z, active_labels, self.training)
        return drift

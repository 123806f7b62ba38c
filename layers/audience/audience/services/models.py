"""Retrain, promote, roll back and rescore the segmentation model.

Retraining reads every profile (parallel scan segments), fits a candidate, compares it with the
active model (drift and a shadow assignment), decides with the promotion policy, stores the
candidate whatever the decision (``models/<version>/``: the fitted pipeline, the JSON spec,
the metrics and the decision) with its report, and, when it is promoted, reassigns every
customer, writing only those whose segment changed.
"""

from __future__ import annotations

import io
import json
import logging
import random
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import joblib
import numpy as np
from sklearn.pipeline import Pipeline

from audience.domain.errors import ConcurrentUpdate
from audience.domain.profile import Profile, Segments
from audience.models.assign import placement, reassigned, score
from audience.models.drift import Drift, PromotionPolicy, compare, decide, population_stability
from audience.models.features import features
from audience.models.report import render_report
from audience.models.spec import SegmentSpec
from audience.models.training import Matrix, Trained, TrainingConfig, silhouette, train
from audience.ports import ModelRegistry, ObjectStore, ProfileRepository

logger = logging.getLogger(__name__)

DEFAULT_TRAINING = TrainingConfig()
MOVE_BATCH = 100  # BatchGetItem's limit
MIN_CUSTOMERS = 50  # fewer cannot support ten candidate segments, bootstraps and a gate
WRITE_RETRIES = 3


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


@dataclass(frozen=True)
class Model:
    """A stored model: the fitted pipeline (scikit-learn) and its spec (plain JSON)."""

    spec: SegmentSpec
    pipeline: Pipeline
    metrics: dict[str, Any]


def model_prefix(version: str) -> str:
    return f"models/{version}/"


def save_model(store: ObjectStore, trained: Trained, decision: dict[str, Any]) -> None:
    prefix = model_prefix(trained.spec.version)
    buffer = io.BytesIO()
    joblib.dump(trained.pipeline, buffer)
    store.put_bytes(prefix + "model.joblib", buffer.getvalue())
    store.put_text(prefix + "spec.json", trained.spec.model_dump_json(indent=2))
    store.put_text(prefix + "metrics.json", json.dumps({**trained.metrics, "decision": decision}, indent=2))


def load_model(store: ObjectStore, version: str) -> Model:
    prefix = model_prefix(version)
    spec_text, metrics_text = store.read_text(prefix + "spec.json"), store.read_text(prefix + "metrics.json")
    pickled = store.read_bytes(prefix + "model.joblib")
    if spec_text is None or metrics_text is None or pickled is None:
        raise LookupError(f"model {version} is not in the bucket (models/{version}/)")
    return Model(SegmentSpec.model_validate_json(spec_text), joblib.load(io.BytesIO(pickled)), json.loads(metrics_text))


@dataclass(frozen=True)
class Customer:
    """What retraining keeps per customer (never the whole profile: a million of them must fit)."""

    customer_id: str
    version: int
    segments: Segments | None


def read_customers(profiles: ProfileRepository, segments: int, now: datetime) -> tuple[list[Customer], Matrix]:
    """Every customer (redirects left out) and their feature rows, read with ``segments``
    parallel scans; profiles are dropped as soon as their features are taken."""

    def read(segment: int) -> list[tuple[Customer, tuple[float | None, ...]]]:
        return [(Customer(p.customer_id, p.version, p.segments), features(p, now))
                for p in profiles.scan(segment, segments) if p.merged_into is None]  # fmt: skip

    with ThreadPoolExecutor(max_workers=segments) as pool:
        rows = sorted((r for part in pool.map(read, range(segments)) for r in part), key=lambda r: r[0].customer_id)
    return [c for c, _ in rows], np.array([row for _, row in rows], dtype=float).reshape(len(rows), -1)


def retrain(
    profiles: ProfileRepository,
    store: ObjectStore,
    registry: ModelRegistry,
    policy: PromotionPolicy,
    now: datetime,
    config: TrainingConfig = DEFAULT_TRAINING,
    scan_segments: int = 4,
) -> RetrainOutcome:
    customers, x = read_customers(profiles, scan_segments, now)
    if len(customers) < MIN_CUSTOMERS:
        raise NotEnoughCustomers(f"{len(customers)} customers; retraining needs at least {MIN_CUSTOMERS}")
    trained = train(x, f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}", config)  # sorts by time, never collides
    active_version = registry.active()
    drift = _drift(store, active_version, trained, x, config) if active_version else None
    promoted, reason = decide(trained.metrics, drift, policy)
    drift_json = drift.to_json() if drift else None
    decision = {"promoted": promoted, "reason": reason, "active_before": active_version, "at": now.isoformat(),
                "drift": drift_json}  # fmt: skip
    save_model(store, trained, decision)
    report_key = f"reports/models/{trained.spec.version}.html"
    store.put_text(report_key, render_report(trained, x, decision))
    outcome = RetrainOutcome(trained.spec.version, promoted, reason, len(customers), 0, report_key, trained.metrics,
                             drift_json)  # fmt: skip
    if promoted:
        registry.activate(trained.spec.version, reason, now)
        labels = trained.labels.tolist()
        places = [placement(trained.spec, labels[i], _row(x[i]), now) for i in range(len(customers))]
        outcome.moved = _write_moves(customers, places, profiles, trained.spec, now, f"model {trained.spec.version}")
    return outcome


def activate(
    version: str, profiles: ProfileRepository, store: ObjectStore, registry: ModelRegistry, now: datetime, reason: str
) -> int:
    """Make ``version`` the active model (a rollback, or a promotion overriding the policy) and
    reassign every customer with it; returns how many moved."""
    load_model(store, version)  # raises LookupError for a version that is not stored
    registry.activate(version, reason, now)
    return rescore(profiles, store, registry, now, reason=f"{reason} ({version})")


def rescore(
    profiles: ProfileRepository,
    store: ObjectStore,
    registry: ModelRegistry,
    now: datetime,
    reason: str = "time-based rescore",
    scan_segments: int = 4,
) -> int:
    """Score every customer with the active model as of ``now``: time moves customers (recency
    ages them into "At Risk") without a new event. Writes only those who moved."""
    version = registry.active()
    if version is None:
        return 0
    spec = load_model(store, version).spec
    customers, x = read_customers(profiles, scan_segments, now)
    places = [placement(spec, spec.segment(row), row, now) for row in map(_row, x)]
    return _write_moves(customers, places, profiles, spec, now, reason)


def _drift(store: ObjectStore, active_version: str, trained: Trained, x: Matrix, config: TrainingConfig) -> Drift:
    active = load_model(store, active_version)
    z = trained.pipeline[:-1].transform(x)
    drift = compare(
        z, active.pipeline.predict(x), trained.labels, active.spec.clusters.names, trained.spec.clusters.names
    )
    drift.psi = population_stability(active.metrics["training_bins"], x)
    active_z = active.pipeline[:-1].transform(x)
    drift.active_silhouette = silhouette(active_z, active.pipeline.predict(x), config)
    return drift


def _row(values: Matrix) -> tuple[float | None, ...]:
    return tuple(None if np.isnan(v) else float(v) for v in values)


def _write_moves(
    customers: list[Customer],
    places: list[Segments],
    profiles: ProfileRepository,
    spec: SegmentSpec,
    now: datetime,
    reason: str,
) -> int:
    """Write every customer whose place changed, re-read in batches of ``MOVE_BATCH``; a profile
    changed since the scan is placed again from its fresh state; a write that conflicts is
    retried from a fresh read."""
    moving = [(c, p) for c, p in zip(customers, places, strict=True) if not p.same_place(c.segments)]
    moved = 0
    for start in range(0, len(moving), MOVE_BATCH):
        batch = moving[start : start + MOVE_BATCH]
        fresh = profiles.get_many([c.customer_id for c, _ in batch])
        for customer, placed in batch:
            profile = fresh.get(customer.customer_id)
            if profile is not None and profile.version != customer.version:
                placed = score(profile, spec, now)
            moved += _move(profile, placed, profiles, spec, now, reason)
    return moved


def _move(profile: Profile | None, placed: Segments, profiles: ProfileRepository, spec: SegmentSpec, now: datetime,
          reason: str) -> int:  # fmt: skip
    for attempt in range(WRITE_RETRIES + 1):
        if profile is None or profile.merged_into is not None:
            return 0
        updated = reassigned(profile, placed, reason)
        if updated is None:
            return 0
        try:
            profiles.save(updated)
            return 1
        except ConcurrentUpdate:
            if attempt == WRITE_RETRIES:
                break
            time.sleep(random.uniform(0, 0.01 * 2**attempt))  # noqa: S311 (jitter, not secrets)
            profile = profiles.get(profile.customer_id)
            placed = score(profile, spec, now) if profile is not None else placed
    logger.warning("a customer kept changing; their segment is left to the next rescore")
    return 0

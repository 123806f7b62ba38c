"""Retrain, promote, roll back and rescore the segmentation model.

Retraining reads every profile (parallel scan segments), fits a candidate, compares it with the
active model (drift and a shadow assignment), decides with the promotion policy, stores the
candidate whatever the decision (``models/<version>/``: the fitted pipeline, the JSON spec,
the metrics and the decision) with its report, fits the value model on the same read
(``services/value.py``) and puts it in force, and then rescores every customer, writing only
those whose segment, tier or predictions changed.
"""

from __future__ import annotations

import io
import logging
import random
import time
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from itertools import islice
from typing import Annotated, Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from audience.domain.profile import Profile, Touch
from audience.domain.segments import Segments
from audience.domain.triggers import TriggerRules
from audience.ports import ModelRegistry, ObjectStore, ProfileRepository, StoreUsage, WorkQueue
from audience.segmentation.drift import Drift, PromotionPolicy, compare, decide, kept_names, population_stability
from audience.segmentation.features import FEATURES
from audience.segmentation.report import render_report
from audience.segmentation.spec import SegmentSpec
from audience.segmentation.store import BucketModelStore
from audience.segmentation.training import (
    Matrix,
    Trained,
    TrainingConfig,
    feature_matrix,
    model_space,
    silhouette,
    train,
)
from audience.services import measure, recommendations
from audience.services.documents import LiveDocument
from audience.services.placement import Tiers, placement, reassigned, score
from audience.services.scoring import LiveValue
from audience.services.unit_of_work import CONFLICT_RETRIES
from audience.services.value import fit_and_store, summary
from audience.value.spec import OrderHistory, ValueSpec

logger = logging.getLogger(__name__)

DEFAULT_TRAINING = TrainingConfig()
READ_CHUNK = 10_000  # profiles held at once while their features are taken
WRITERS = 8  # batches of moves written at once
MOVE_BATCH = 100  # BatchGetItem's limit
MIN_CUSTOMERS = 50  # fewer cannot support ten candidate segments, bootstraps and a gate
RESCORE_TOLERANCE = 0.01  # predictions that moved less are not rewritten by the daily rescore


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
class Customer:
    """What retraining keeps per customer (never the whole profile: a million of them must fit)."""

    customer_id: str
    version: int
    segments: Segments | None
    tier_moves: bool = False  # predictions or a trigger rule's tier change (rescoring only)
    orders: OrderHistory | None = None  # order days (training only: the value model's input)
    products: Mapping[str, Touch] | None = None  # products touched (training only: the recommender's input)


def read_customers(
    profiles: ProfileRepository,
    segments: int,
    now: datetime,
    only: int | None = None,
    tiers: Tiers | None = None,
    training: bool = False,
) -> tuple[list[Customer], Matrix]:
    """Every customer (redirects left out; for ``training``, those who refused analytics too)
    and their feature rows, read with ``segments`` parallel scans (or just scan segment
    ``only``); profiles are dropped as soon as their features are taken, ``READ_CHUNK`` at a time (and, with ``tiers``,
    whether their tier changes)."""

    def included(p: Profile) -> bool:
        return p.merged_into is None and (not training or p.allows("analytics"))

    def customer(p: Profile) -> Customer:
        orders = OrderHistory.of(p) if training and p.first_order_at is not None else None
        products = p.products if training else None
        return Customer(p.customer_id, p.version, p.segments, tiers is not None and tiers.moves(p, now), orders,
                        products)  # fmt: skip

    def read(segment: int) -> tuple[list[Customer], Matrix]:
        scanned = (p for p in profiles.scan(segment, segments) if included(p))
        found: list[Customer] = []
        parts: list[Matrix] = [np.empty((0, len(FEATURES)))]
        while chunk := list(islice(scanned, READ_CHUNK)):
            found += [customer(p) for p in chunk]
            parts.append(feature_matrix(chunk, now))
        return found, np.concatenate(parts)

    wanted = range(segments) if only is None else [only]
    with ThreadPoolExecutor(max_workers=len(wanted)) as pool:
        read_parts = list(pool.map(read, wanted))
    found = [c for part, _ in read_parts for c in part]
    x = np.concatenate([rows for _, rows in read_parts])
    order = sorted(range(len(found)), key=lambda i: found[i].customer_id)
    return [found[i] for i in order], x[order]


def retrain(
    profiles: ProfileRepository,
    store: ObjectStore,
    registry: ModelRegistry,
    policy: PromotionPolicy,
    now: datetime,
    config: TrainingConfig = DEFAULT_TRAINING,
    scan_segments: int = 4,
    rules: TriggerRules | None = None,
) -> RetrainOutcome:
    """Everything in this invocation: read, train, decide, store, fit the value model, and
    rescore every customer (with ``rules``, the trigger rules in force) when either changed."""
    customers, x = read_customers(profiles, scan_segments, now, training=True)
    outcome, _ = _train_and_decide(customers, x, new_version(now), store, registry, policy, now, config)
    if outcome.promoted or outcome.value is not None:
        outcome.moved = rescore(profiles, store, registry, now, f"model {registry.active()}", scan_segments, rules)
    return outcome


def backtest(
    profiles: ProfileRepository, store: ObjectStore, as_of: datetime, calibration_end: date | None, scan_segments: int
) -> dict[str, Any]:
    """The value model fitted on history as it stood at ``as_of`` (split at ``calibration_end``)
    and scored on what followed; stored and reported, never put in force."""
    customers, _ = read_customers(profiles, scan_segments, as_of, training=True)
    fit, section = fit_and_store([c.orders for c in customers], as_of, new_version(as_of), store, {}, calibration_end,
                           activate=False)  # fmt: skip
    if fit is None:
        raise NotEnoughCustomers(section.removeprefix("<p>").removesuffix("</p>"))
    return {"version": fit.spec.version, "report": f"reports/models/{fit.spec.version}.html", **fit.metrics}


def new_version(now: datetime) -> str:
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"  # sorts by time, never collides


# ---------------------------------------------------------------- the same, fanned out
# At scale each step runs in its own invocations, chained through the work queue:
#   start_fan_out -> one "features" item per scan segment -> the last one sends "train"
#   -> train_fanned_out decides and, on promotion, sends one "assign" item per segment.
# The run id is the model's version: a "train" delivered twice trains once.


def start_fan_out(work: WorkQueue, segments: int, now: datetime) -> str:
    run = new_version(now)
    for segment in range(segments):
        work.send({"action": "features", "run": run, "segment": segment, "segments": segments})
    return run


def collect_features(
    run: str, segment: int, segments: int, profiles: ProfileRepository, store: ObjectStore, work: WorkQueue,
    now: datetime,
) -> bool:  # fmt: skip
    """Read one scan segment's customers and features into the bucket; the worker that finds
    every segment there asks for training (returns whether it did)."""
    customers, x = read_customers(profiles, segments, now, only=segment, training=True)
    store.put_bytes(_part(run, segment), _pack(customers, x))
    if len(store.keys(f"work/models/{run}/features-")) < segments:
        return False
    work.send({"action": "train", "run": run, "segments": segments})
    return True


def train_fanned_out(
    run: str, segments: int, store: ObjectStore, registry: ModelRegistry, policy: PromotionPolicy, work: WorkQueue,
    now: datetime, config: TrainingConfig = DEFAULT_TRAINING,
) -> RetrainOutcome | None:  # fmt: skip
    """Train on every segment's features; on promotion, one "assign" item per segment. None when
    this run was trained already (a repeated delivery)."""
    if BucketModelStore(store).spec(run) is not None:
        return None
    parts = [_unpack(store.read_bytes(_part(run, s)) or b"") for s in range(segments)]
    customers = [c for part, _ in parts for c in part]
    x = np.concatenate([m for _, m in parts]) if parts else np.empty((0, 0))
    outcome, _ = _train_and_decide(customers, x, run, store, registry, policy, now, config)
    if outcome.promoted:
        for segment in range(segments):
            work.send({"action": "assign", "run": run, "segment": segment})
    return outcome


def assign_segment(run: str, segment: int, profiles: ProfileRepository, store: ObjectStore, now: datetime) -> int:
    """Place one segment's customers with the run's model (promoted by ``train_fanned_out``)."""
    customers, x = _unpack(store.read_bytes(_part(run, segment)) or b"")
    model = BucketModelStore(store).load(run)
    return _place(customers, x, model.pipeline.predict(x), model.spec, profiles, now)


def _part(run: str, segment: int) -> str:
    return f"work/models/{run}/features-{segment:05d}.npz"


def _pack(customers: list[Customer], x: Matrix) -> bytes:
    buffer = io.BytesIO()
    places = [c.segments.model_dump_json(by_alias=True) if c.segments else "" for c in customers]
    ids, versions = np.array([c.customer_id for c in customers], dtype=str), np.array([c.version for c in customers])
    orders = [c.orders or OrderHistory([], []) for c in customers]
    days = np.array([d for o in orders for d in o.days], dtype=np.int64)
    spend = np.array([v for o in orders for v in o.spend], dtype=float)
    sizes = np.array([len(o.days) for o in orders], dtype=np.int64)
    np.savez_compressed(buffer, x=x, ids=ids, versions=versions, segments=np.array(places, dtype=str), days=days,
                        spend=spend, sizes=sizes)  # fmt: skip
    return buffer.getvalue()


def _unpack(data: bytes) -> tuple[list[Customer], Matrix]:
    with np.load(io.BytesIO(data), allow_pickle=False) as part:
        ends = np.cumsum(part["sizes"]).tolist()
        days, spend = part["days"].tolist(), part["spend"].tolist()
        orders = [OrderHistory(days[e - n : e], spend[e - n : e]) if n else None
                  for n, e in zip(part["sizes"].tolist(), ends, strict=True)]  # fmt: skip
        customers = [
            Customer(str(i), int(v), Segments.model_validate_json(str(s)) if s else None, orders=o)
            for i, v, s, o in zip(part["ids"], part["versions"], part["segments"], orders, strict=True)
        ]
        return customers, part["x"].reshape(len(customers), -1)


def _train_and_decide(
    customers: list[Customer], x: Matrix, version: str, store: ObjectStore, registry: ModelRegistry,
    policy: PromotionPolicy, now: datetime, config: TrainingConfig,
) -> tuple[RetrainOutcome, Trained]:  # fmt: skip
    """Fit, compare with the active model, decide, store the candidate and its report, and
    make it active when promoted (placing customers is the caller's step)."""
    if len(customers) < MIN_CUSTOMERS:
        raise NotEnoughCustomers(f"{len(customers)} customers; retraining needs at least {MIN_CUSTOMERS}")
    trained = train(x, version, config)
    active_version = registry.active()
    drift = _drift(store, active_version, trained, x, config) if active_version else None
    if drift is not None:
        clusters = trained.spec.clusters.model_copy(update={"names": kept_names(trained.spec.clusters.names, drift)})
        trained.spec = trained.spec.model_copy(update={"clusters": clusters})
    promoted, reason = decide(trained.metrics, drift, policy)
    drift_json = drift.to_json() if drift else None
    decision = {"promoted": promoted, "reason": reason, "active_before": active_version, "at": now.isoformat(),
                "drift": drift_json}  # fmt: skip
    BucketModelStore(store).save(trained, decision)
    report_key = f"reports/models/{trained.spec.version}.html"
    segments = {name: trained.labels == i for i, name in enumerate(trained.spec.clusters.names)}
    value, section = fit_and_store([c.orders for c in customers], now, trained.spec.version, store, segments)
    store.put_text(report_key, render_report(trained, x, decision, section))
    names = trained.spec.clusters.names
    recommender = recommendations.fit_and_store(
        [(c.customer_id, c.products) for c in customers if c.products],
        {c.customer_id: names[label] for c, label in zip(customers, trained.labels, strict=True)},
        trained.spec.version,
        store,
        recommendations.LiveRecommender(store).spec(now),
    )
    if promoted:
        registry.activate(trained.spec.version, reason, now)
    outcome = RetrainOutcome(trained.spec.version, promoted, reason, len(customers), 0, report_key, trained.metrics,
                             drift_json, summary(value), recommender)  # fmt: skip
    return outcome, trained


def _place(
    customers: list[Customer], x: Matrix, labels: NDArray[np.int64], spec: SegmentSpec, profiles: ProfileRepository,
    now: datetime,
) -> int:  # fmt: skip
    places = [placement(spec, int(labels[i]), _row(x[i]), now) for i in range(len(customers))]
    return _write_moves(customers, places, profiles, spec, now, f"model {spec.version}")


def activate(
    version: str, profiles: ProfileRepository, store: ObjectStore, registry: ModelRegistry, now: datetime, reason: str
) -> int:
    """Make ``version`` the active model (a rollback, or a promotion overriding the policy) and
    reassign every customer with it; returns how many moved."""
    BucketModelStore(store).load(version)  # raises LookupError for a version that is not stored
    registry.activate(version, reason, now)
    return rescore(profiles, store, registry, now, reason=f"{reason} ({version})")


def rescore(
    profiles: ProfileRepository,
    store: ObjectStore,
    registry: ModelRegistry,
    now: datetime,
    reason: str = "time-based rescore",
    scan_segments: int = 4,
    rules: TriggerRules | None = None,
    value: ValueSpec | None = None,
) -> int:
    """Score every customer with the active model as of ``now``, their predictions with the
    ``value`` model and their trigger tiers with ``rules`` (both by default those in force): time
    moves customers (recency ages them into "At Risk", a large order ages out of its window,
    silence is an engagement drop, P(alive) decays) without a new event. Writes only those who
    moved (predictions: by more than ``RESCORE_TOLERANCE``)."""
    version = registry.active()
    spec = BucketModelStore(store).spec(version) if version else None
    value = value or LiveValue(store).spec(now)
    if spec is None and value is None:
        return 0
    tiers = Tiers.of(rules or LiveDocument(store, TriggerRules).get(now), spec, value, RESCORE_TOLERANCE)
    customers, x = read_customers(profiles, scan_segments, now, tiers=tiers)
    places = [placement(spec, spec.segment(row), row, now) if spec else None for row in map(_row, x)]
    return _write_moves(customers, places, profiles, spec, now, reason, tiers)


def _drift(store: ObjectStore, active_version: str, trained: Trained, x: Matrix, config: TrainingConfig) -> Drift:
    active = BucketModelStore(store).load(active_version)
    z, active_z = model_space(trained.pipeline, x), model_space(active.pipeline, x)
    active_labels = active.pipeline[-1].predict(active_z)  # = active.pipeline.predict(x), transformed once
    drift = compare(z, active_labels, trained.labels, active.spec.clusters.names, trained.spec.clusters.names)
    drift.psi = population_stability(active.metrics["training_bins"], x)
    drift.active_silhouette = silhouette(active_z, active_labels, config)
    return drift


def _row(values: Matrix) -> tuple[float | None, ...]:
    return tuple(None if np.isnan(v) else float(v) for v in values)


def _write_moves(
    customers: list[Customer],
    places: Sequence[Segments | None],
    profiles: ProfileRepository,
    spec: SegmentSpec | None,
    now: datetime,
    reason: str,
    tiers: Tiers | None = None,
) -> int:
    """Write every customer whose place (or, with ``tiers``, tier) changed, re-read in batches
    of ``MOVE_BATCH``, ``WRITERS`` batches at a time (each write waits on the network); a
    profile changed since the scan is placed again from its fresh state. Returns how many moved."""
    moving = [(c, p) for c, p in zip(customers, places, strict=True)
              if c.tier_moves or (p is not None and not p.same_place(c.segments))]  # fmt: skip
    batches = [moving[start : start + MOVE_BATCH] for start in range(0, len(moving), MOVE_BATCH)]
    placing = _Placing(profiles, spec, now, reason, tiers)
    with ThreadPoolExecutor(max_workers=WRITERS) as pool:
        return sum(pool.map(placing.write, batches))


_State = tuple[Profile | None, Segments | None]  # a customer as stored, and the place the model gives them


@dataclass(frozen=True)
class _Placing:
    """One run's placement: the model (None: tiers only), the time, the reason, the tiers.

    Per batch: one read (``get_many``), one conditional update per mover of only what placing
    changed (``ProfileRepository.place``; a publishing repository then puts the batch's segment
    events on the bus together), and for the few whose version moved meanwhile, a re-read of
    those and another round, ``CONFLICT_RETRIES`` times at most."""

    profiles: ProfileRepository
    spec: SegmentSpec | None
    now: datetime
    reason: str
    tiers: Tiers | None

    def write(self, batch: list[tuple[Customer, Segments | None]]) -> int:
        """Place a batch of movers; returns how many were written."""
        fresh = self.profiles.get_many([c.customer_id for c, _ in batch])
        states: dict[str, _State] = {}
        for customer, placed in batch:
            profile = fresh.get(customer.customer_id)
            if profile is not None and profile.version != customer.version and self.spec is not None:
                placed = score(profile, self.spec, self.now)
            states[customer.customer_id] = (profile, placed)
        moved = 0
        for n in range(CONFLICT_RETRIES + 1):
            sent = {c: u for c, (p, placed) in states.items() if (u := self.updated(p, placed)) is not None}
            conflicted = self.profiles.place(list(sent.values()))
            landed, states = self.reread(conflicted, sent, states)
            moved += len(sent) - len(conflicted) + landed
            if not states:
                return moved
            if n < CONFLICT_RETRIES:
                time.sleep(random.uniform(0, 0.01 * 2**n))  # noqa: S311 (jitter, not secrets)
        logger.warning("%d customers kept changing; their segments are left to the next rescore", len(states))
        return moved

    def updated(self, current: Profile | None, placed: Segments | None) -> Profile | None:
        """The customer in their new place and tier, or None when there is nothing to write."""
        if current is None or current.merged_into is not None:
            return None
        tiered = self.tiers.settled(current, self.now) if self.tiers else current
        moved = reassigned(tiered, placed, self.reason) if placed is not None else None
        return moved or (tiered if tiered is not current else None)

    def reread(self, conflicted: list[str], sent: Mapping[str, Profile], states: Mapping[str, _State]
               ) -> tuple[int, dict[str, _State]]:  # fmt: skip
        """After lost races: how many of ``conflicted`` hold our own write (an update that landed
        but whose answer was lost: a client timeout, botocore's retry then failing the
        condition), and the fresh state of the others, placed again."""
        if not conflicted:
            return 0, {}
        fresh, landed, again = self.profiles.get_many(conflicted), 0, {}
        for customer_id in conflicted:
            profile, (_, placed) = fresh.get(customer_id), states[customer_id]
            if profile is not None and _holds(profile, sent[customer_id]):
                landed += 1
                continue
            if profile is not None and self.spec is not None:
                placed = score(profile, self.spec, self.now)
            again[customer_id] = (profile, placed)
        return landed, again


def _holds(stored: Profile, sent: Profile) -> bool:
    """Whether ``stored`` carries the placement ``sent`` (its place, tier, predictions and last move)."""
    return (stored.segments, stored.tier, stored.predictions, stored.segment_history[-1:]) == (
        sent.segments, sent.tier, sent.predictions, sent.segment_history[-1:])  # fmt: skip


# ---------------------------------------------------------------- what the retrain function is asked


class RetrainRequest(BaseModel):
    """Fit a candidate and promote it if warranted (the weekly schedule; ``segments``: fan out).
    With ``asOf`` or ``calibrationEnd``: a backtest of the value model only (fitted on history as
    it stood at ``asOf``, split at ``calibrationEnd``; stored and reported, not put in force)."""

    model_config = ConfigDict(populate_by_name=True)

    action: Literal["retrain"] = "retrain"
    segments: int | None = Field(default=None, ge=1, le=1000, description="fan out over this many scan segments")
    as_of: AwareDatetime | None = Field(default=None, alias="asOf", description="history as it stood at this moment")
    calibration_end: date | None = Field(
        default=None, alias="calibrationEnd", description="fit before it, score after it (default: asOf - 90 days)"
    )

    @model_validator(mode="after")
    def _calibration_before_as_of(self) -> RetrainRequest:
        if self.calibration_end and self.as_of and self.calibration_end >= self.as_of.date():
            raise ValueError("calibrationEnd must be before asOf")
        return self

    @property
    def backtest(self) -> bool:
        return self.as_of is not None or self.calibration_end is not None


class RescoreRequest(BaseModel):
    """Place every customer again under the active model and the rules in force (daily)."""

    action: Literal["rescore"]


class ActivateRequest(BaseModel):
    """Make a stored version active (a rollback) and place every customer under it."""

    action: Literal["activate"]
    version: str = Field(min_length=1)
    reason: str = Field(default="activated on demand", max_length=500)


class MeasureRequest(BaseModel):
    """Every experiment's results and every segment's KPIs from the profiles (daily, and on
    demand; ``segments``: fan out)."""

    action: Literal["measure"]
    segments: int | None = Field(default=None, ge=1, le=1000, description="fan out over this many scan segments")


class WorkItem(BaseModel):
    """One fanned-out step of a retraining run, as the work queue carries it."""

    action: Literal["features", "train", "assign", "tally"]
    run: str
    segment: int = 0
    segments: int = 1


Requests = RetrainRequest | RescoreRequest | ActivateRequest | MeasureRequest
Request = Annotated[Requests, Field(discriminator="action")]
REQUEST: TypeAdapter[Requests] = TypeAdapter(Request)


def parse_request(event: Mapping[str, Any]) -> Requests:
    """An EventBridge schedule's event (or ``{}``) retrains; otherwise ``action`` says what to do."""
    body = {} if event.get("source") == "aws.events" else event
    return REQUEST.validate_python({"action": "retrain", **body})


@dataclass(frozen=True)
class Retraining:
    """The retrain function's service: its stores and policies, and one method per kind of request."""

    profiles: ProfileRepository  # publishing: every move goes out as a segment event
    store: ObjectStore
    registry: ModelRegistry
    work: WorkQueue
    policy: PromotionPolicy
    training: TrainingConfig
    scan_segments: int
    fan_out_segments: int
    usage: StoreUsage | None = None  # what the profile table's requests cost, reported with each answer

    def handle(self, request: Requests, now: datetime) -> dict[str, Any]:
        """Do what ``request`` asks; the answer is what the invocation returns, with the read and
        write units its profile reads and writes consumed (a scan reads every item of the table)."""
        if self.usage is not None:
            self.usage.reset()
        result = self._handle(request, now)
        if self.usage is not None:
            result["dynamodb"] = {"readUnits": self.usage.read_units, "writeUnits": self.usage.write_units,
                                  "requests": self.usage.requests}  # fmt: skip
        return result

    def _handle(self, request: Requests, now: datetime) -> dict[str, Any]:
        if isinstance(request, MeasureRequest):
            fan_out = request.segments or self.fan_out_segments
            if fan_out:
                return {"run": measure.start_fan_out(self.work, new_version(now), fan_out), "segments": fan_out}
            return {"experiments": measure.measure(self.profiles, self.store, now, self.scan_segments)}
        if isinstance(request, RescoreRequest):
            return {"moved": rescore(self.profiles, self.store, self.registry, now, scan_segments=self.scan_segments)}
        if isinstance(request, ActivateRequest):
            moved = activate(request.version, self.profiles, self.store, self.registry, now, request.reason)
            return {"active": request.version, "moved": moved}
        if request.backtest:
            return backtest(self.profiles, self.store, request.as_of or now, request.calibration_end,
                            self.scan_segments)  # fmt: skip
        fan_out = request.segments or self.fan_out_segments
        if fan_out:
            return {"run": start_fan_out(self.work, fan_out, now), "segments": fan_out}
        outcome = retrain(self.profiles, self.store, self.registry, self.policy, now, self.training, self.scan_segments)
        result = asdict(outcome)
        result["metrics"] = {k: v for k, v in outcome.metrics.items() if k not in ("candidates", "training_bins")}
        return result

    def step(self, item: WorkItem, now: datetime) -> RetrainOutcome | int | list[str] | None:
        """One fanned-out step: features (None), train (the outcome once trained), assign (customers
        moved), tally (the experiments measured, by the worker that published)."""
        if item.action == "tally":
            return measure.tally_part(item.run, item.segment, item.segments, self.profiles, self.store, now)
        if item.action == "features":
            collect_features(item.run, item.segment, item.segments, self.profiles, self.store, self.work, now)
            return None
        if item.action == "train":
            return train_fanned_out(item.run, item.segments, self.store, self.registry, self.policy, self.work, now,
                                    self.training)  # fmt: skip
        return assign_segment(item.run, item.segment, self.profiles, self.store, now)

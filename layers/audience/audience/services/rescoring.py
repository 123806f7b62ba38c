"""Rescoring: every customer placed again under the active segmentation model, the value model
and the trigger rules in force. Time moves customers without a new event (recency ages them into
"At Risk", a large order ages out of its window, silence is an engagement drop, P(alive) decays);
the daily schedule rescores, an activation (a rollback) rescores under the version it makes
active, and a promoted retrain under its new model. Only customers who moved are written.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from numpy.typing import NDArray

from audience.domain.profile import Profile
from audience.domain.segments import Segments
from audience.domain.triggers import TriggerRules
from audience.ports import ModelRegistry, ProfileRepository
from audience.segmentation.spec import SegmentSpec
from audience.segmentation.training import Matrix
from audience.services.artifacts import Artifacts, live_document, live_value
from audience.services.placement import Tiers, placement, reassigned, score
from audience.services.population import Customer, read_customers, row
from audience.services.unit_of_work import CONFLICT_RETRIES
from audience.value.spec import ValueSpec

logger = logging.getLogger(__name__)

WRITERS = 8  # batches of moves written at once
MOVE_BATCH = 100  # BatchGetItem's limit
RESCORE_TOLERANCE = 0.01  # predictions that moved less are not rewritten by the daily rescore


@dataclass(frozen=True)
class Rescoring:
    """Places every customer again; ``scan_segments``: parallel scans of the profile table."""

    profiles: ProfileRepository  # publishing: every move goes out as a segment event
    artifacts: Artifacts
    registry: ModelRegistry
    scan_segments: int = 4

    def rescore(
        self, now: datetime, reason: str = "time-based rescore", rules: TriggerRules | None = None,
        value: ValueSpec | None = None,
    ) -> int:  # fmt: skip
        """Score every customer with the active model as of ``now``, their predictions with the
        ``value`` model and their trigger tiers with ``rules`` (both by default those in force).
        Writes only those who moved (predictions: by more than ``RESCORE_TOLERANCE``); returns how many."""
        version = self.registry.active()
        spec = self.artifacts.segments.spec(version) if version else None
        value = value or live_value(self.artifacts.store).get(now)
        if spec is None and value is None:
            return 0
        rules = rules or live_document(self.artifacts.store, TriggerRules).get(now)
        tiers = Tiers.of(rules, spec, value, RESCORE_TOLERANCE)
        customers, x = read_customers(self.profiles, self.scan_segments, now, tiers=tiers)
        places = [placement(spec, spec.place(r).segment, r, now) if spec else None for r in map(row, x)]
        return self.write_moves(customers, places, spec, now, reason, tiers)

    def activate(self, version: str, now: datetime, reason: str) -> int:
        """Make ``version`` the active model (a rollback, or a promotion overriding the policy) and
        reassign every customer with it; returns how many moved."""
        if self.artifacts.segments.spec(version) is None:
            raise LookupError(f"model {version} is not in the bucket")
        self.registry.activate(version, reason, now)
        return self.rescore(now, reason=f"{reason} ({version})")

    def assign(self, customers: list[Customer], x: Matrix, labels: NDArray[np.int64], spec: SegmentSpec,
               now: datetime) -> int:  # fmt: skip
        """Place ``customers`` in the segments ``labels`` gives them (a fanned-out run's part)."""
        places = [placement(spec, int(labels[i]), row(x[i]), now) for i in range(len(customers))]
        return self.write_moves(customers, places, spec, now, f"model {spec.version}")

    def write_moves(
        self, customers: list[Customer], places: Sequence[Segments | None], spec: SegmentSpec | None, now: datetime,
        reason: str, tiers: Tiers | None = None,
    ) -> int:  # fmt: skip
        """Write every customer whose place (or, with ``tiers``, tier) changed, re-read in batches
        of ``MOVE_BATCH``, ``WRITERS`` batches at a time (each write waits on the network); a
        profile changed since the scan is placed again from its fresh state. Returns how many moved."""
        moving = [(c, p) for c, p in zip(customers, places, strict=True)
                  if c.tier_moves or (p is not None and not p.same_place(c.segments))]  # fmt: skip
        batches = [moving[start : start + MOVE_BATCH] for start in range(0, len(moving), MOVE_BATCH)]
        placing = _Placing(self.profiles, spec, now, reason, tiers)
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

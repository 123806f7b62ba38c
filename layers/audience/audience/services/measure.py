"""The measure job: one scan of the profiles gives every experiment's results and every segment's
KPIs. In one invocation (threads over the scan segments), or fanned out over the work queue like
the retrain: one ``tally`` item per scan segment puts its part (``artifacts.Parts``), and the
worker that finds every part there publishes (a repeated publication writes the same)."""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from audience.domain.experiments import Experiments
from audience.domain.profile import Exposure
from audience.measure.kpis import Tally, flows, kpis, tally, with_point
from audience.measure.report import render_experiment_report
from audience.measure.results import results
from audience.ports import ProfileScan, WorkQueue
from audience.services.artifacts import Artifacts, live_document
from audience.services.fan_out import send_steps


@dataclass
class Part:
    """What one scan segment holds: every exposure by experiment, the tally by segment, and the
    daily moves in and out of each segment."""

    exposures: dict[str, list[Exposure]] = field(default_factory=dict)
    tallies: dict[str, Tally] = field(default_factory=dict)
    moves: Counter[str] = field(default_factory=Counter)

    def __add__(self, other: Part) -> Part:
        exposures = {e: [*self.exposures.get(e, []), *other.exposures.get(e, [])]
                     for e in {*self.exposures, *other.exposures}}  # fmt: skip
        tallies = {s: self.tallies[s] + other.tallies[s] if s in self.tallies and s in other.tallies
                   else self.tallies.get(s) or other.tallies[s] for s in {*self.tallies, *other.tallies}}  # fmt: skip
        return Part(exposures, tallies, self.moves + other.moves)

    def to_json(self) -> str:
        return json.dumps({
            "exposures": {e: [[x.variant, x.segment, x.at.isoformat(), x.until.isoformat(), x.orders, str(x.revenue),
                               str(x.before), str(x.predicted), x.model, str(x.refunded)] for x in held]
                          for e, held in self.exposures.items()},
            "tallies": {s: t.dump() for s, t in self.tallies.items()},
            "moves": dict(self.moves),
        })  # fmt: skip

    @classmethod
    def from_json(cls, text: str) -> Part:
        raw: dict[str, Any] = json.loads(text)
        exposures = {e: [Exposure(v, s, datetime.fromisoformat(a), datetime.fromisoformat(u), o, Decimal(r), Decimal(b),
                                  Decimal(p), m, Decimal(f))
                         for v, s, a, u, o, r, b, p, m, f in held] for e, held in raw["exposures"].items()}  # fmt: skip
        tallies = {s: Tally.load(t) for s, t in raw["tallies"].items()}
        return cls(exposures, tallies, Counter(raw.get("moves", {})))


def scan_part(profiles: ProfileScan, segment: int, segments: int, now: datetime) -> Part:
    scanned = [p for p in profiles.scan(segment, segments) if p.merged_into is None]
    exposures: dict[str, list[Exposure]] = {}
    for profile in scanned:
        for experiment, exposure in profile.exposures.items():
            exposures.setdefault(experiment, []).append(exposure)
    return Part(exposures, tally(scanned, now), flows(scanned, now))


def _order(exposure: Exposure) -> tuple[datetime, str, str, int, Decimal]:
    return exposure.at, exposure.variant, exposure.segment or "", exposure.orders, exposure.revenue


@dataclass(frozen=True)
class Measuring:
    """Measures every experiment and segment; ``scan_segments``: parallel scans of the profile table."""

    profiles: ProfileScan  # the table, or the latest export (``services.lake.Population``)
    artifacts: Artifacts
    work: WorkQueue | None  # the fanned-out tallies (None: everything in this invocation)
    scan_segments: int = 4

    def measure(self, now: datetime) -> list[str]:
        """In this invocation: the scan segments read in parallel threads, then published."""
        segments = self.scan_segments
        with ThreadPoolExecutor(max_workers=segments) as pool:
            parts = list(pool.map(lambda s: scan_part(self.profiles, s, segments, now), range(segments)))
        return self.publish(sum(parts, Part()), now)

    def start(self, run: str, segments: int) -> str:
        """Fan out: one ``tally`` step per scan segment."""
        return send_steps(self.work, "tally", run, segments)

    def tally(self, run: str, segment: int, segments: int, now: datetime) -> list[str] | None:
        """One scan segment's part into the run's parts; the worker that finds every part there
        publishes (returns the experiments measured) and the others return None."""
        parts = self.artifacts.parts("measure", run)
        parts.put(segment, scan_part(self.profiles, segment, segments, now).to_json().encode())
        gathered = parts.gather(segments)
        if gathered is None:
            return None
        return self.publish(sum((Part.from_json(data.decode()) for data in gathered), Part()), now)

    def publish(self, part: Part, now: datetime) -> list[str]:
        """Store the KPIs and sizes (served by ``GET /v1/segments``), the day's point of the
        trends, and each experiment in force's results (served by
        ``GET /v1/experiments/{id}/results``) with its page."""
        figures = kpis(part.tallies, now, part.moves)
        measures = self.artifacts.measures
        measures.put_kpis(figures)
        measures.put_trends(with_point(measures.trends(), figures, now.date()))
        experiments = live_document(self.artifacts.store, Experiments).get(now).experiments
        for experiment in experiments:
            held = sorted(part.exposures.get(experiment.id, []), key=_order)  # the same sums however the scan was cut
            found = results(experiment, held, now, figures["segments"])
            self.artifacts.measures.put_results(experiment.id, found, render_experiment_report(found, figures))
        return [e.id for e in experiments]

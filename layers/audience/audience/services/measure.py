"""The measure job: one scan of the profiles gives every experiment's results and every segment's
KPIs. In one invocation (threads over the scan segments), or fanned out over the work queue like
the retrain: one ``tally`` item per scan segment writes its part to ``work/measure/<run>/``, and
the worker that finds every part there publishes (a repeated publication writes the same)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from audience.domain.experiments import Experiments
from audience.domain.profile import Exposure
from audience.measure.kpis import SEGMENT_KPIS, Tally, kpis, tally
from audience.measure.report import render_experiment_report
from audience.measure.results import results
from audience.ports import ObjectStore, ProfileRepository, WorkQueue
from audience.services.documents import LiveDocument

EXPERIMENT_RESULTS = "models/experiments/"
WORK = "work/measure/"


@dataclass
class Part:
    """What one scan segment holds: every exposure by experiment, and the tally by segment."""

    exposures: dict[str, list[Exposure]] = field(default_factory=dict)
    tallies: dict[str, Tally] = field(default_factory=dict)

    def __add__(self, other: Part) -> Part:
        exposures = {e: [*self.exposures.get(e, []), *other.exposures.get(e, [])]
                     for e in {*self.exposures, *other.exposures}}  # fmt: skip
        tallies = {s: self.tallies[s] + other.tallies[s] if s in self.tallies and s in other.tallies
                   else self.tallies.get(s) or other.tallies[s] for s in {*self.tallies, *other.tallies}}  # fmt: skip
        return Part(exposures, tallies)

    def to_json(self) -> str:
        return json.dumps({
            "exposures": {e: [[x.variant, x.segment, x.at.isoformat(), x.until.isoformat(), x.orders, str(x.revenue),
                               str(x.before)] for x in held] for e, held in self.exposures.items()},
            "tallies": {s: t.dump() for s, t in self.tallies.items()},
        })  # fmt: skip

    @classmethod
    def from_json(cls, text: str) -> Part:
        raw: dict[str, Any] = json.loads(text)
        exposures = {e: [Exposure(v, s, datetime.fromisoformat(a), datetime.fromisoformat(u), o, Decimal(r), Decimal(b))
                         for v, s, a, u, o, r, b in held] for e, held in raw["exposures"].items()}  # fmt: skip
        tallies = {s: Tally.load(t) for s, t in raw["tallies"].items()}
        return cls(exposures, tallies)


def scan_part(profiles: ProfileRepository, segment: int, segments: int, now: datetime) -> Part:
    scanned = [p for p in profiles.scan(segment, segments) if p.merged_into is None]
    exposures: dict[str, list[Exposure]] = {}
    for profile in scanned:
        for experiment, exposure in profile.exposures.items():
            exposures.setdefault(experiment, []).append(exposure)
    return Part(exposures, tally(scanned, now))


def publish(part: Part, store: ObjectStore, now: datetime) -> list[str]:
    """Store the KPIs (``models/segment-kpis.json``, served by ``GET /v1/segments/{id}``) and each
    experiment in force's results (``models/experiments/<id>/results.json``, served by
    ``GET /v1/experiments/{id}/results``) with its page (``reports/experiments/<id>.html``)."""
    figures = kpis(part.tallies, now)
    store.put_text(SEGMENT_KPIS, json.dumps(figures))
    experiments = LiveDocument(store, Experiments).get(now).experiments
    for experiment in experiments:
        held = sorted(part.exposures.get(experiment.id, []), key=_order)  # the same sums however the scan was cut
        found = results(experiment, held, now)
        store.put_text(f"{EXPERIMENT_RESULTS}{experiment.id}/results.json", json.dumps(found, default=str))
        store.put_text(f"reports/experiments/{experiment.id}.html", render_experiment_report(found, figures))
    return [e.id for e in experiments]


def _order(exposure: Exposure) -> tuple[datetime, str, str, int, Decimal]:
    return exposure.at, exposure.variant, exposure.segment or "", exposure.orders, exposure.revenue


def measure(profiles: ProfileRepository, store: ObjectStore, now: datetime, scan_segments: int = 4) -> list[str]:
    """In this invocation: the scan segments read in parallel threads, then published."""
    with ThreadPoolExecutor(max_workers=scan_segments) as pool:
        parts = list(pool.map(lambda s: scan_part(profiles, s, scan_segments, now), range(scan_segments)))
    return publish(sum(parts, Part()), store, now)


def start_fan_out(work: WorkQueue, run: str, segments: int) -> str:
    for segment in range(segments):
        work.send({"action": "tally", "run": run, "segment": segment, "segments": segments})
    return run


def tally_part(
    run: str, segment: int, segments: int, profiles: ProfileRepository, store: ObjectStore, now: datetime
) -> list[str] | None:
    """One scan segment's part into the bucket; the worker that finds every part publishes
    (returns the experiments measured) and the others return None."""
    store.put_text(f"{WORK}{run}/part-{segment:05d}.json", scan_part(profiles, segment, segments, now).to_json())
    keys = sorted(store.keys(f"{WORK}{run}/part-"))
    if len(keys) < segments:
        return None
    return publish(sum((Part.from_json(store.read_text(k) or "") for k in keys), Part()), store, now)

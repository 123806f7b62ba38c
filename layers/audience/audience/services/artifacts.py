"""The data bucket: the one module that spells its keys, and typed access to what is kept there.

    config/<document>.json                  documents users upload (the config function checks them)
    live/<document>.json                    the documents in force
    live/value-model.json, live/recommender.json    the value and recommendation models in force
    models/<version>/                       one retrain's models: spec.json, model.joblib, metrics.json
                                            (segments), value-spec.json, value-metrics.json,
                                            recommender.json, recommender-metrics.json
    models/segment-kpis.json                the measure job's KPIs and sizes; models/experiments/<id>/results.json
    models/segment-trends.json              one point per day the measure job ran
    reports/models/<version>.html           reports/experiments/<id>.html, reports/config/, reports/imports/
    imports/<kind>/[<mapping>/]<file>       exports to import; mappings/<name>.json; rejects/<import>.jsonl
    catalogue/<import>.json                 what imports learned of products
    work/<job>/<run>/                       a fanned-out run's parts (imports, models, measure)
    archive/events/day=<yyyy-mm-dd>/<file>.gz   every accepted event as on the stream (JSON Lines,
                                            gzip), by day of arrival: Firehose writes
                                            ``<stream>-<version>-<time>-<uuid>.gz``, the compaction
                                            ``compacted-<n>.jsonl.gz`` (template.yaml's Prefix)
    archive/errors/                         what Firehose could not deliver (its ErrorOutputPrefix)
    archive/tombstones/<receipt>.json       erased customers' pseudonyms, until a compaction applied them
    snapshots/profiles/day=<yyyy-mm-dd>/profiles.parquet   the daily profile snapshot (SQL), with
                                            rows.jsonl.gz (its rows: what an erasure rewrites it from),
                                            source.json (how many, when, from what) and, for the
                                            two newest days, profiles.jsonl.gz (whole profiles: the jobs')
    snapshots/exports/<time>/               a table export being converted (deleted once converted)

Things in force are read through one cache (:class:`Live`): at most once per ``refresh`` per
container. joblib and scikit-learn are imported only where a pipeline is written or read, so the
functions that only score (stream, imports, read API) never load them (``services.pipelines``).
"""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from audience.domain.documents import Document, default_document, parse_document
from audience.domain.errors import InvalidInput
from audience.ports import ModelRegistry, ObjectStore
from audience.services.fan_out import Parts

if TYPE_CHECKING:  # each spec is imported where it is read: the config function needs none of them
    from audience.recommend.spec import RecommenderSpec
    from audience.segmentation.spec import SegmentSpec
    from audience.value.spec import ValueSpec

logger = logging.getLogger(__name__)
T = TypeVar("T")
D = TypeVar("D", bound=Document)
M = TypeVar("M", bound=BaseModel)

REFRESH = timedelta(minutes=1)
STARTER_POPULAR = 100  # products in the popular list served before a recommender is fitted
UPLOADS, IMPORTS, ROW_FILES, CATALOGUE = "config/", "imports/", ("rejects/", "reports/imports/"), "catalogue/"
FEATURE_SNAPSHOTS = "work/models/"  # fanned-out training's feature files: rebuilt by the next retrain
LIVE_VALUE, LIVE_RECOMMENDER, SEGMENT_KPIS, SEGMENT_TRENDS = (
    "live/value-model.json",
    "live/recommender.json",
    "models/segment-kpis.json",
    "models/segment-trends.json",
)


ARCHIVE, ARCHIVE_ERRORS, TOMBSTONES = "archive/events/", "archive/errors/", "archive/tombstones/"
SNAPSHOTS, EXPORTS = "snapshots/profiles/", "snapshots/exports/"
PENDING_EXPORT = f"{EXPORTS}pending.json"
# What template.yaml's delivery stream is configured with (tests/template checks they agree):
# partitions by the day Firehose received the record, as Athena's partition projection reads them.
ARCHIVE_PREFIX = ARCHIVE + "day=!{timestamp:yyyy-MM-dd}/"
ARCHIVE_ERROR_PREFIX = ARCHIVE_ERRORS + "!{firehose:error-output-type}/day=!{timestamp:yyyy-MM-dd}/"


def archive_day(key: str) -> date:
    """The day partition of an archive file's key."""
    return date.fromisoformat(key.removeprefix(ARCHIVE).split("/", 1)[0].removeprefix("day="))


def archive_folder(day: date) -> str:
    return f"{ARCHIVE}day={day.isoformat()}/"


def snapshot_key(day: date) -> str:
    return f"{SNAPSHOTS}day={day.isoformat()}/profiles.parquet"


def model_key(version: str, name: str) -> str:
    return f"models/{version}/{name}"


def model_report_key(version: str) -> str:
    return f"reports/models/{version}.html"


def live_key(document: str) -> str:
    return f"live/{document}.json"


def uploaded_document(key: str) -> str:
    """The document name of an upload's key (``config/<name>.json``)."""
    return key.removeprefix(UPLOADS).removesuffix(".json")


def config_report_key(document: str, now: datetime) -> str:
    return f"reports/config/{document}-{now.strftime('%Y%m%dT%H%M%S%fZ')}.json"


def experiment_results_key(experiment: str) -> str:
    return f"models/experiments/{experiment}/results.json"


def experiment_report_key(experiment: str) -> str:
    return f"reports/experiments/{experiment}.html"


def mapping_key(name: str) -> str:
    return f"mappings/{name}.json"


def import_folders(key: str) -> list[str]:
    """The folders of an import's key under ``imports/`` (``[kind, mapping?]``)."""
    return key.removeprefix(IMPORTS).split("/")[:-1]


def import_kind(key: str) -> str:
    """What an import's key says it holds (``orders``, ``customers``, or what it is not)."""
    return key.removeprefix(IMPORTS).split("/")[0]


def manifest_key(import_id: str, suffix: str = ".json") -> str:
    """An import's manifest (``suffix`` ``-merges.jsonl``: the merges it made)."""
    return f"reports/imports/{import_id}{suffix}"


def rejects_key(import_id: str) -> str:
    return f"rejects/{import_id}.jsonl"


def catalogue_key(import_id: str) -> str:
    return f"{CATALOGUE}{import_id}.json"


def parts(store: ObjectStore, job: str, run: str) -> Parts:
    """The parts of fanned-out run ``run`` of ``job`` (``imports``, ``models``, ``measure``)."""
    return Parts(store, f"work/{job}/{run}/")


# ---------------------------------------------------------------- what is in force, cached


class Live(Generic[T]):
    """A value in force, read at most once per ``refresh`` (``read`` gets the value held, to keep
    it when nothing changed or what is stored does not parse)."""

    def __init__(self, read: Callable[[T], T], initial: T, refresh: timedelta = REFRESH) -> None:
        self.read, self.refresh = read, refresh
        self._value: T = initial
        self._checked: datetime | None = None

    def get(self, now: datetime) -> T:
        if self._checked is None or now - self._checked >= self.refresh:
            self._checked = now
            self._value = self.read(self._value)
        return self._value


def live_document(store: ObjectStore, model: type[D], refresh: timedelta = REFRESH) -> Live[D]:
    """The document in force (the shipped default until one is accepted). One that does not parse
    (someone wrote ``live/`` by hand) is logged and the previous stays in force."""
    name, key = model.document, live_key(model.document)

    def read(held: D) -> D:
        text = store.read_text(key)
        try:
            return parse_document(model, text) if text else default_document(model, name)
        except InvalidInput as exc:
            logger.error("%s is invalid, keeping the previous one: %s", key, exc)
            return held

    return Live(read, default_document(model, name), refresh)


def live_model(
    store: ObjectStore, key: str, model: type[M], refresh: timedelta = REFRESH,
    missing: Callable[[], M | None] = lambda: None,
) -> Live[M | None]:  # fmt: skip
    """A model the retrain puts in force at ``key`` (until one is: ``missing()``). One this release
    does not read (another release's, or a hand-made one) is logged and the previous stays in force."""

    def read(held: M | None) -> M | None:
        text = store.read_text(key)
        try:
            return model.model_validate_json(text) if text else missing()
        except ValidationError as exc:
            logger.error("%s is not a model this release reads, keeping the previous: %s", key, exc)
            return held

    return Live(read, None, refresh)


def live_value(store: ObjectStore, refresh: timedelta = REFRESH) -> Live[ValueSpec | None]:
    from audience.value.spec import ValueSpec

    return live_model(store, LIVE_VALUE, ValueSpec, refresh)


def live_recommender(store: ObjectStore, refresh: timedelta = REFRESH) -> Live[RecommenderSpec | None]:
    from audience.recommend.spec import RecommenderSpec

    return live_model(store, LIVE_RECOMMENDER, RecommenderSpec, refresh, Recommenders(store).starter)


def live_segments(
    registry: ModelRegistry, store: ObjectStore, refresh: timedelta = REFRESH
) -> Live[SegmentSpec | None]:
    """The active segmentation model's spec (read again only when the active version changes)."""
    models = SegmentModels(store)

    def read(held: SegmentSpec | None) -> SegmentSpec | None:
        version = registry.active()
        if version is None:
            return None
        return held if held is not None and held.version == version else models.spec(version)

    return Live(read, None, refresh)


# ---------------------------------------------------------------- models and what they measured


@dataclass(frozen=True)
class SegmentModels:
    """Segmentation models: ``models/<version>/`` spec, pipeline, metrics with the decision."""

    store: ObjectStore

    def spec(self, version: str) -> SegmentSpec | None:
        text = self.store.read_text(model_key(version, "spec.json"))
        from audience.segmentation.spec import SegmentSpec

        return SegmentSpec.model_validate_json(text) if text else None

    def metrics(self, version: str) -> dict[str, Any] | None:
        """The training metrics and the decision (no pipeline: nothing heavy to import)."""
        text = self.store.read_text(model_key(version, "metrics.json"))
        return json.loads(text) if text else None

    def save(self, spec: SegmentSpec, metrics: dict[str, Any]) -> None:
        """The spec and the metrics (``services.pipelines`` puts the fitted pipeline beside them)."""
        self.store.put_text(model_key(spec.version, "spec.json"), spec.model_dump_json(indent=2))
        self.store.put_text(model_key(spec.version, "metrics.json"), json.dumps(metrics, indent=2))


@dataclass(frozen=True)
class ValueModels:
    """Value models: ``models/<version>/value-*.json``, the one in force at ``live/value-model.json``."""

    store: ObjectStore

    def save(self, spec: ValueSpec, metrics: dict[str, Any]) -> None:
        self.store.put_text(model_key(spec.version, "value-spec.json"), spec.model_dump_json(indent=1))
        self.store.put_text(model_key(spec.version, "value-metrics.json"), json.dumps(metrics, indent=1))

    def activate(self, spec: ValueSpec) -> bool:
        """Put ``spec`` in force unless a later one is (a fanned-out run that started earlier may
        finish after a newer run: versions sort by their start time)."""
        live = self.store.read_text(LIVE_VALUE)
        if live is not None and json.loads(live)["version"] > spec.version:
            logger.info("value model %s not put in force: a later one is", spec.version)
            return False
        self.store.put_text(LIVE_VALUE, spec.model_dump_json())
        return True

    def active(self) -> dict[str, Any] | None:
        """The metrics of the model in force (what ``GET /v1/models/value`` answers), or None."""
        live = self.store.read_text(LIVE_VALUE)
        if live is None:
            return None
        metrics = self.store.read_text(model_key(json.loads(live)["version"], "value-metrics.json"))
        return json.loads(metrics) if metrics else None


@dataclass(frozen=True)
class Recommenders:
    """Recommendation models (``models/<version>/recommender*.json``) and the products imports described."""

    store: ObjectStore

    def save(self, spec: RecommenderSpec, metrics: dict[str, Any], promoted: bool) -> None:
        self.store.put_text(model_key(spec.version, "recommender.json"), spec.model_dump_json())
        self.store.put_text(model_key(spec.version, "recommender-metrics.json"), json.dumps(metrics))
        if promoted:
            self.store.put_text(LIVE_RECOMMENDER, spec.model_dump_json())

    def starter(self) -> RecommenderSpec | None:
        """What is served before a recommender is fitted (None: no import described a product):
        the products by the orders that held them in every import, and the customer's own
        purchases first (their repeat signal alone); ``kind`` popular, no version."""
        from audience.recommend.spec import RecommenderSpec

        orders: dict[str, int] = {}
        known: dict[str, dict[str, Any]] = {}
        for key in sorted(self.store.keys(CATALOGUE)):
            for product, facts in json.loads(self.store.read_text(key) or "{}").items():
                orders[product] = orders.get(product, 0) + int(facts.get("orders", 0))
                known[product] = facts
        if not known:
            return None
        popular = sorted(orders, key=lambda p: (-orders[p], p))[:STARTER_POPULAR]
        return RecommenderSpec(version="", kind="popular", neighbours={}, popular=popular, repeat_weight=1.0,
                               names={p: str(known[p]["name"]) for p in popular if known[p].get("name")},
                               categories={p: str(known[p]["category"]) for p in popular
                                           if known[p].get("category")})  # fmt: skip

    def catalogue(self) -> dict[str, dict[str, Any]]:
        """What imports wrote about products (id -> name, category, last price), the newest file last."""
        known: dict[str, dict[str, Any]] = {}
        for key in sorted(self.store.keys(CATALOGUE)):
            known.update(json.loads(self.store.read_text(key) or "{}"))
        return known


@dataclass(frozen=True)
class Measures:
    """What the measure job computes: the segments' KPIs and each experiment's results, with pages."""

    store: ObjectStore

    def put_kpis(self, figures: dict[str, Any]) -> None:
        self.store.put_text(SEGMENT_KPIS, json.dumps(figures))

    def kpis(self) -> str | None:
        return self.store.read_text(SEGMENT_KPIS)

    def put_trends(self, trends: dict[str, Any]) -> None:
        self.store.put_text(SEGMENT_TRENDS, json.dumps(trends))

    def trends(self) -> str | None:
        return self.store.read_text(SEGMENT_TRENDS)

    def put_results(self, experiment: str, found: dict[str, Any], page: str) -> None:
        self.store.put_text(experiment_results_key(experiment), json.dumps(found, default=str))
        self.store.put_text(experiment_report_key(experiment), page)

    def results(self, experiment: str) -> dict[str, Any] | None:
        text = self.store.read_text(experiment_results_key(experiment))
        return json.loads(text) if text else None


@dataclass(frozen=True)
class EventArchive:
    """The events archive: gzip files of JSON records (one a line; Firehose's delimiter), by day."""

    store: ObjectStore

    def files(self, first: date | None = None, last: date | None = None) -> list[str]:
        """The archive's files of the days ``first`` to ``last`` (inclusive), oldest day first."""
        keys = [k for k in self.store.keys(ARCHIVE) if k.endswith(".gz")]
        return [
            k for k in keys if (first is None or archive_day(k) >= first) and (last is None or archive_day(k) <= last)
        ]

    def records(self, key: str) -> list[bytes]:
        """A file's records. (Split on JSON values, not only lines: a delivery stream configured
        without the delimiter concatenates them.)"""
        data = self.store.read_bytes(key)
        return split_records(gzip.decompress(data)) if data else []

    def rewrite(self, key: str, records: list[bytes]) -> None:
        """Replace a file by ``records`` (none: delete it), its earlier versions deleted too (the
        bucket is versioned: an erased customer's events must not survive as a noncurrent version)."""
        if records:
            self.store.put_bytes(key, gzip.compress(b"".join(r + b"\n" for r in records), mtime=0))
            self.store.forget_history(key)
        else:
            self.store.forget_history(key, keep_current=False)

    def put(self, day: date, name: str, records: list[bytes]) -> str:
        key = f"{archive_folder(day)}{name}"
        self.store.put_bytes(key, gzip.compress(b"".join(r + b"\n" for r in records), mtime=0))
        return key

    def put_tombstone(self, receipt: str, pseudonyms: list[str], erased_at: datetime) -> None:
        document = {"pseudonyms": pseudonyms, "erasedAt": erased_at.isoformat()}
        self.store.put_text(f"{TOMBSTONES}{receipt}.json", json.dumps(document))

    def tombstones(self) -> dict[str, tuple[set[str], datetime]]:
        """Key -> (pseudonyms, erased at) of every tombstone not yet retired."""
        found = {}
        for key in self.store.keys(TOMBSTONES):
            document = json.loads(self.store.read_text(key) or "{}")
            found[key] = (set(document["pseudonyms"]), datetime.fromisoformat(document["erasedAt"]))
        return found

    def retire_tombstone(self, key: str) -> None:
        self.store.forget_history(key, keep_current=False)


def split_records(data: bytes) -> list[bytes]:
    """The records of an archive file: one a line (Firehose's delimiter); a line of JSON values
    one after another (a delivery configured without the delimiter) is split into them, and what
    is not JSON at all (another producer's bytes) is returned as it is, for the reader to skip."""
    records: list[bytes] = []
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            json.loads(line)
            records.append(line.strip())
        except ValueError:
            records.extend(_concatenated(line.strip()))
    return records


def _concatenated(line: bytes) -> list[bytes]:
    try:
        text = line.decode()
    except UnicodeDecodeError:
        return [line]
    decoder, at = json.JSONDecoder(), 0
    found: list[bytes] = []
    while at < len(text):
        try:
            _, end = decoder.raw_decode(text, at)
        except ValueError:
            return [*found, text[at:].encode()]
        found.append(text[at:end].encode())
        at = end
        while at < len(text) and text[at].isspace():
            at += 1
    return found


@dataclass(frozen=True)
class ProfileSnapshots:
    """The daily profile snapshots, newest last: per day the Parquet file, its rows, where it
    came from and (two newest days) the whole profiles."""

    store: ObjectStore
    whole_days: int = 2  # days whose whole profiles are kept (the jobs read the newest)

    def put(self, day: date, parquet: bytes, rows: bytes, profiles: bytes, source: dict[str, Any]) -> str:
        """A day's snapshot (``rows`` and ``profiles``: gzip JSON Lines); the whole profiles of
        days before the ``whole_days`` newest are deleted."""
        key = snapshot_key(day)
        self.store.put_bytes(key, parquet)
        self.store.put_bytes(self._key(day, "rows.jsonl.gz"), rows)
        self.store.put_bytes(self._key(day, "profiles.jsonl.gz"), profiles)
        self.store.put_text(self._key(day, "source.json"), json.dumps(source))
        for old in self.days()[: -self.whole_days]:
            self.store.forget_history(self._key(old, "profiles.jsonl.gz"), keep_current=False)
        return key

    def days(self) -> list[date]:
        keys = [k for k in self.store.keys(SNAPSHOTS) if k.endswith("/profiles.parquet")]
        return sorted(date.fromisoformat(k.removeprefix(SNAPSHOTS).split("/", 1)[0].removeprefix("day=")) for k in keys)

    def latest(self) -> tuple[date, str] | None:
        days = self.days()
        return (days[-1], snapshot_key(days[-1])) if days else None

    def source(self, day: date) -> dict[str, Any] | None:
        text = self.store.read_text(self._key(day, "source.json"))
        return json.loads(text) if text else None

    def latest_source(self) -> dict[str, Any] | None:
        latest = self.latest()
        return {**(self.source(latest[0]) or {}), "day": latest[0].isoformat()} if latest else None

    def lines(self, day: date, name: str) -> Iterator[bytes]:
        """The lines of a day's ``rows`` or ``profiles`` file, streamed (none if absent)."""
        key = self._key(day, f"{name}.jsonl.gz")
        if not self.store.keys(key):
            return
        with self.store.open(key) as raw, gzip.GzipFile(fileobj=raw) as lines:
            yield from (line for line in lines if line.strip())

    def rewrite(self, day: date, parquet: bytes, rows: bytes, profiles: bytes | None) -> None:
        """A day's files again (an erasure), their earlier versions deleted."""
        files = [(snapshot_key(day), parquet), (self._key(day, "rows.jsonl.gz"), rows)]
        if profiles is not None:
            files.append((self._key(day, "profiles.jsonl.gz"), profiles))
        for key, data in files:
            self.store.put_bytes(key, data)
            self.store.forget_history(key)

    def _key(self, day: date, name: str) -> str:
        return snapshot_key(day).replace("profiles.parquet", name)

    def export_prefix(self, now: datetime) -> str:
        return f"{EXPORTS}{now.strftime('%Y%m%dT%H%M%SZ')}/"

    def export_items(self, prefix: str) -> Iterator[dict[str, Any]]:
        """The items of an export (``<prefix>AWSDynamoDB/<id>/data/*.json.gz``: ``{"Item": ...}`` a line)."""
        for key in self.store.keys(prefix):
            if "/data/" in key and key.endswith(".gz"):
                for line in gzip.decompress(self.store.read_bytes(key) or b"").splitlines():
                    if line.strip():
                        yield json.loads(line)["Item"]

    def remove_export(self, prefix: str) -> None:
        """An export once converted (it holds every item: an erasure must not find a copy there)."""
        for key in self.store.keys(prefix):
            self.store.forget_history(key, keep_current=False)

    def pending_export(self) -> dict[str, str] | None:
        text = self.store.read_text(PENDING_EXPORT)
        return json.loads(text) if text else None

    def set_pending_export(self, export: dict[str, str] | None) -> None:
        if export is None:
            self.store.forget_history(PENDING_EXPORT, keep_current=False)
        else:
            self.store.put_text(PENDING_EXPORT, json.dumps(export))


class Artifacts:
    """Everything the data bucket keeps, typed (the composition root hands it out)."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self.segments, self.values = SegmentModels(store), ValueModels(store)
        self.recommenders, self.measures = Recommenders(store), Measures(store)
        self.archive, self.snapshots = EventArchive(store), ProfileSnapshots(store)

    def parts(self, job: str, run: str) -> Parts:
        return parts(self.store, job, run)

    def put_model_report(self, version: str, page: str) -> str:
        key = model_report_key(version)
        self.store.put_text(key, page)
        return key

    def model_report(self, version: str) -> str | None:
        return self.store.read_text(model_report_key(version))

"""Segmentation models in the data bucket, behind the object store port: ``models/<version>/``
holds the spec (plain JSON, what the stream and the API score with), the fitted pipeline (joblib)
and the metrics with the decision. joblib and scikit-learn are imported only where a pipeline is
written or read, so the functions that only score (stream, imports, read API) never load them.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from audience.ports import ObjectStore
from audience.segmentation.spec import SegmentSpec

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

    from audience.segmentation.training import Trained


def model_prefix(version: str) -> str:
    return f"models/{version}/"


@dataclass(frozen=True)
class Model:
    """A stored model: the fitted pipeline (scikit-learn) and its spec (plain JSON)."""

    spec: SegmentSpec
    pipeline: Pipeline
    metrics: dict[str, Any]


class BucketModelStore:
    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def spec(self, version: str) -> SegmentSpec | None:
        text = self.store.read_text(model_prefix(version) + "spec.json")
        return SegmentSpec.model_validate_json(text) if text else None

    def metrics(self, version: str) -> dict[str, Any] | None:
        """The training metrics and the decision (no pipeline: nothing heavy to import)."""
        text = self.store.read_text(model_prefix(version) + "metrics.json")
        return json.loads(text) if text else None

    def save(self, trained: Trained, decision: dict[str, Any]) -> None:
        import joblib

        prefix = model_prefix(trained.spec.version)
        buffer = io.BytesIO()
        joblib.dump(trained.pipeline, buffer)
        self.store.put_bytes(prefix + "model.joblib", buffer.getvalue())
        self.store.put_text(prefix + "spec.json", trained.spec.model_dump_json(indent=2))
        self.store.put_text(prefix + "metrics.json", json.dumps({**trained.metrics, "decision": decision}, indent=2))

    def load(self, version: str) -> Model:
        import joblib

        prefix = model_prefix(version)
        spec, metrics = self.spec(version), self.store.read_text(prefix + "metrics.json")
        pickled = self.store.read_bytes(prefix + "model.joblib")
        if spec is None or metrics is None or pickled is None:
            raise LookupError(f"model {version} is not in the bucket ({prefix})")
        return Model(spec, joblib.load(io.BytesIO(pickled)), json.loads(metrics))

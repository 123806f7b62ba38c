"""Fitted segmentation pipelines in the data bucket (joblib and scikit-learn: only the retrain
function loads this module; the functions that score read the plain JSON spec)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import joblib
from sklearn.pipeline import Pipeline

from audience.segmentation.spec import SegmentSpec
from audience.segmentation.training import Trained
from audience.services.artifacts import Artifacts, model_key


@dataclass(frozen=True)
class Model:
    """A stored segmentation model: the fitted pipeline and its spec and metrics."""

    spec: SegmentSpec
    pipeline: Pipeline
    metrics: dict[str, Any]


@dataclass(frozen=True)
class Pipelines:
    artifacts: Artifacts

    def save(self, trained: Trained, decision: dict[str, Any]) -> None:
        """The pipeline, then its spec and metrics with the decision."""
        buffer = io.BytesIO()
        joblib.dump(trained.pipeline, buffer)
        self.artifacts.store.put_bytes(model_key(trained.spec.version, "model.joblib"), buffer.getvalue())
        self.artifacts.segments.save(trained.spec, {**trained.metrics, "decision": decision})

    def load(self, version: str) -> Model:
        spec, metrics = self.artifacts.segments.spec(version), self.artifacts.segments.metrics(version)
        pickled = self.artifacts.store.read_bytes(model_key(version, "model.joblib"))
        if spec is None or metrics is None or pickled is None:
            raise LookupError(f"model {version} is not in the bucket ({model_key(version, '')})")
        return Model(spec, joblib.load(io.BytesIO(pickled)), metrics)

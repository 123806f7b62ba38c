"""The jobs' services over in-memory ports, as the composition root wires them in Lambda."""

from __future__ import annotations

from audience.ports import ModelRegistry, ObjectStore, ProfileRepository, WorkQueue
from audience.segmentation.drift import PromotionPolicy
from audience.segmentation.training import TrainingConfig
from audience.services.artifacts import Artifacts
from audience.services.measure import Measuring
from audience.services.pipelines import Pipelines
from audience.services.rescoring import Rescoring
from audience.services.retraining import Retraining


def rescoring(profiles: ProfileRepository, bucket: ObjectStore, registry: ModelRegistry, scan_segments: int = 4
              ) -> Rescoring:  # fmt: skip
    return Rescoring(profiles, Artifacts(bucket), registry, scan_segments)


def retraining(
    profiles: ProfileRepository, bucket: ObjectStore, registry: ModelRegistry, policy: PromotionPolicy | None = None,
    training: TrainingConfig | None = None, scan_segments: int = 4, work: WorkQueue | None = None,
) -> Retraining:  # fmt: skip
    rescore = rescoring(profiles, bucket, registry, scan_segments)
    pipelines = Pipelines(rescore.artifacts)
    return Retraining(rescore, pipelines, registry, work, policy or PromotionPolicy(), training or TrainingConfig())


def measuring(profiles: ProfileRepository, bucket: ObjectStore, scan_segments: int = 4, work: WorkQueue | None = None
              ) -> Measuring:  # fmt: skip
    return Measuring(profiles, Artifacts(bucket), work, scan_segments)

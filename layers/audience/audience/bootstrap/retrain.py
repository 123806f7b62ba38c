"""The retrain function's services: retrain, rescore, measure, activate (the one builder that
loads numpy and scikit-learn)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from audience.bootstrap import Infrastructure, _aws, _population, _publishing
from audience.settings import RetrainSettings

if TYPE_CHECKING:
    from audience.services.jobs import Jobs


def build(settings: RetrainSettings | None = None, infra: Infrastructure | None = None) -> Jobs:
    from audience.segmentation.drift import PromotionPolicy
    from audience.segmentation.training import TrainingConfig
    from audience.services.artifacts import Artifacts
    from audience.services.jobs import Jobs
    from audience.services.measure import Measuring
    from audience.services.pipelines import Pipelines
    from audience.services.rescoring import Rescoring
    from audience.services.retraining import Retraining

    settings, infra = settings or RetrainSettings.from_env(), infra or _aws()
    training = TrainingConfig(rf_segments=tuple(settings.rf_segments)) if settings.rf_segments else TrainingConfig()
    policy = PromotionPolicy(min_silhouette=settings.min_silhouette, min_cluster_share=settings.min_cluster_share,
                             min_stability=settings.min_stability, min_stability_worst=settings.min_stability_worst,
                             drift_psi=settings.drift_psi)  # fmt: skip
    profiles = _publishing(infra, settings.profiles_table, settings.segment_bus)
    artifacts, registry = Artifacts(infra.bucket(settings.data_bucket)), infra.registry(settings.profiles_table)
    work, segments = infra.queue(settings.retrain_queue_url), settings.scan_segments
    rescoring = Rescoring(profiles, artifacts, registry, segments)  # writes: the table, always
    population = _population(infra, settings.profiles_table, settings.data_bucket, settings.snapshot_reads_above)
    return Jobs(
        retraining=Retraining(rescoring, Pipelines(artifacts), registry, work, policy, training, population),
        rescoring=rescoring,
        measuring=Measuring(population, artifacts, work, segments),
        fan_out_segments=settings.fan_out_segments,
        usage=infra.stats(),
    )

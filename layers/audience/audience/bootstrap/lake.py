"""The lake function's jobs: replay the archive into profiles (through the stream's folding),
compact it (and erase from it), snapshot the profiles."""

from __future__ import annotations

from audience.bootstrap import Infrastructure, _aws, _export_reader, _pepper
from audience.bootstrap import stream as stream_composition
from audience.services.artifacts import Artifacts
from audience.services.lake import Compacting, Lake, Replaying, Snapshotting
from audience.services.privacy import Suppression
from audience.settings import LakeSettings


def build(settings: LakeSettings | None = None, infra: Infrastructure | None = None) -> Lake:
    settings, infra = settings or LakeSettings.from_env(), infra or _aws()
    artifacts = Artifacts(infra.bucket(settings.data_bucket))
    pepper = _pepper(settings, infra)
    assert pepper is not None  # the settings require PII_PEPPER_NAME
    return Lake(
        replaying=Replaying(stream_composition.build(settings, infra), artifacts.archive),
        compacting=Compacting(
            artifacts.archive, pepper, Suppression(infra.privacy(settings.profiles_table), pepper), artifacts.snapshots
        ),
        snapshotting=Snapshotting(
            infra.profiles(settings.profiles_table),
            artifacts.snapshots,
            settings.scan_segments,
            infra.exports(settings.profiles_table, settings.data_bucket)
            if settings.snapshot_source == "export"
            else None,
            _export_reader(infra, artifacts.snapshots),
        ),
    )

"""The stream function's service: fold the event stream into profiles, placing each changed one
in the active model's segments (from its JSON spec: no numpy, no scikit-learn)."""

from __future__ import annotations

from datetime import timedelta

from audience.bootstrap import Infrastructure, _aws, _pepper, _publishing, _suppression
from audience.services.profiles import Folding
from audience.services.scoring import LiveScoring
from audience.settings import StreamSettings


def build(settings: StreamSettings | None = None, infra: Infrastructure | None = None) -> Folding:
    settings, infra = settings or StreamSettings.from_env(), infra or _aws()
    place = LiveScoring(
        infra.registry(settings.profiles_table),
        infra.bucket(settings.data_bucket),
        refresh=settings.refresh,
        min_dwell=timedelta(minutes=settings.min_dwell_minutes),
    )
    return Folding(
        profiles=_publishing(infra, settings.profiles_table, settings.segment_bus),
        dead_letters=infra.dead_letters(settings.dead_letter_queue_url),
        currencies=settings.currencies,
        place=place,
        suppression=_suppression(infra, settings.profiles_table, _pepper(settings, infra)),
        usage=infra.stats(),
    )

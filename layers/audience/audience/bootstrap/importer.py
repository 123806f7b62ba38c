"""The import function's service: exports dropped into the bucket, folded into profiles; and the
file half of an erasure."""

from __future__ import annotations

from audience.bootstrap import Infrastructure, _aws, _contact_key, _pepper, _publishing, _suppression
from audience.services.imports import Importing
from audience.services.scoring import LiveScoring
from audience.settings import ImportSettings


def build(settings: ImportSettings | None = None, infra: Infrastructure | None = None) -> Importing:
    settings, infra = settings or ImportSettings.from_env(), infra or _aws()
    bucket, pepper = infra.bucket(settings.data_bucket), _pepper(settings, infra)
    return Importing(
        store=bucket,
        profiles=_publishing(infra, settings.profiles_table, settings.segment_bus),
        currencies=settings.currencies,
        work=infra.queue(settings.import_queue_url),
        chunk_customers=settings.chunk_customers,
        place=LiveScoring(infra.registry(settings.profiles_table), bucket, settings.refresh, segments=False),
        suppression=_suppression(infra, settings.profiles_table, pepper),
        contact_key=_contact_key(settings, pepper),
        audit=infra.privacy(settings.profiles_table),
    )

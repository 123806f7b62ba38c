"""The ingest function's service: the webhook and the tracking API, writing to the event stream."""

from __future__ import annotations

from datetime import timedelta

from audience.bootstrap import Infrastructure, _aws, _contact_key, _pepper
from audience.services.ingest import Ingesting
from audience.services.sources import WriteKeys
from audience.settings import ConfigurationError, IngestSettings


def build(settings: IngestSettings | None = None, infra: Infrastructure | None = None) -> Ingesting:
    settings, infra = settings or IngestSettings.from_env(), infra or _aws()
    pepper = _pepper(settings, infra)
    if pepper is None:
        raise ConfigurationError("IngestSettings: PII_PEPPER_NAME is needed to check write keys")
    return Ingesting(
        sink=infra.events(settings.events_stream),
        write_keys=WriteKeys(
            infra.sources(settings.profiles_table), pepper, timedelta(seconds=settings.secrets_cache_seconds)
        ),
        dead_letters=infra.dead_letters(settings.dead_letter_queue_url),
        currencies=settings.currencies,
        max_age=timedelta(days=settings.max_event_age_days),
        contact_key=_contact_key(settings, pepper),
        signing_secrets=infra.secret(settings.webhook_secret_name) if settings.webhook_secret_name else None,
    )

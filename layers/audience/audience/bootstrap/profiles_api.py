"""The read API's bundle: profiles, privacy, the models and documents in force, and the sources'
write keys (in-page personalization is asked with one)."""

from __future__ import annotations

from audience.bootstrap import Infrastructure, ProfilesApiDeps, _aws, _pepper
from audience.settings import ProfilesApiSettings


def build(settings: ProfilesApiSettings | None = None, infra: Infrastructure | None = None) -> ProfilesApiDeps:
    from audience.domain.experiments import Experiments
    from audience.domain.personalization import ContentMapping
    from audience.domain.triggers import TriggerRules
    from audience.services.artifacts import Artifacts, live_document, live_recommender, live_segments, live_value
    from audience.services.sources import WriteKeys

    settings, infra = settings or ProfilesApiSettings.from_env(), infra or _aws()
    bucket, refresh = infra.bucket(settings.data_bucket), settings.refresh
    pepper = _pepper(settings, infra)
    assert pepper is not None  # the settings require PII_PEPPER_NAME
    return ProfilesApiDeps(
        profiles=infra.profiles(settings.profiles_table),
        privacy=infra.privacy(settings.profiles_table),
        pepper=pepper,
        model=live_segments(infra.registry(settings.profiles_table), bucket, refresh),
        rules=live_document(bucket, TriggerRules, refresh),
        content=live_document(bucket, ContentMapping, refresh),
        experiments=live_document(bucket, Experiments, refresh),
        value=live_value(bucket, refresh),
        recommender=live_recommender(bucket, refresh),
        artifacts=Artifacts(bucket),
        scrubbing=infra.queue(settings.import_queue_url),
        currency=settings.base_currency,
        # the registry is reread every MODEL_REFRESH_SECONDS: a revoked key stops working here within that
        write_keys=WriteKeys(infra.sources(settings.profiles_table), pepper, refresh),
    )

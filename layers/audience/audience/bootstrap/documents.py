"""The config function's service: uploaded configuration documents, checked before they take effect."""

from __future__ import annotations

from audience.bootstrap import Infrastructure, _aws
from audience.services.documents import Documents
from audience.settings import DocumentSettings


def build(settings: DocumentSettings | None = None, infra: Infrastructure | None = None) -> Documents:
    settings, infra = settings or DocumentSettings.from_env(), infra or _aws()
    return Documents(store=infra.bucket(settings.data_bucket), audit=infra.privacy(settings.profiles_table))

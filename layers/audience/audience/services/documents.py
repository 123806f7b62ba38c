"""Configuration documents users upload to the data bucket take effect only once checked.

Upload ``config/<name>.json`` (``triggers``, ``personalization``): the config function checks
it; a valid document is copied to ``live/<name>.json``, which is what the other functions read;
an invalid one is refused, with every failing item and field in
``reports/config/<name>-<time>.json`` and the log, and the previous live document stays in
force. Until a document is accepted, the defaults shipped in ``domain/defaults/`` apply.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from audience.domain.documents import Document, default_document, parse_document
from audience.domain.errors import FieldError, InvalidInput
from audience.domain.privacy import AuditEntry
from audience.domain.triggers import TriggerRules
from audience.ports import AuditTrail, ObjectStore

logger = logging.getLogger(__name__)

T = TypeVar("T", bound="Document")

UPLOAD_PREFIX, LIVE_PREFIX = "config/", "live/"


def documents() -> dict[str, type[Document]]:
    """Every document users may upload, by name. (Imported here, not at the top: the functions
    that only read the trigger rules, the stream first, need not load the content mapping.)"""
    from audience.domain.experiments import Experiments
    from audience.domain.personalization import ContentMapping

    return {model.document: model for model in (TriggerRules, ContentMapping, Experiments)}


@dataclass(frozen=True)
class DocumentOutcome:
    name: str
    accepted: bool
    report_key: str
    errors: list[dict[str, str]] = field(default_factory=list)


def accept(store: ObjectStore, key: str, now: datetime, audit: AuditTrail | None = None) -> DocumentOutcome:
    """Check the uploaded ``config/<name>.json``; put it in force only if it is valid; the
    outcome goes to the audit trail (subject ``config``)."""
    name = key.removeprefix(UPLOAD_PREFIX).removesuffix(".json")
    report_key = f"reports/config/{name}-{now.strftime('%Y%m%dT%H%M%S%fZ')}.json"
    text = store.read_text(key)
    known = documents()
    model = known.get(name)
    try:
        if model is None:
            expected = ", ".join(known)
            raise InvalidInput([FieldError("(file)", f"unknown configuration '{name}': expected one of {expected}")])
        if text is None:
            raise InvalidInput([FieldError("(file)", "the object is gone")])
        document = parse_document(model, text)
        in_force = store.read_text(f"{LIVE_PREFIX}{name}.json")
        conflicts = document.conflicts(parse_document(model, in_force), now) if in_force else []
        if conflicts:
            raise InvalidInput(conflicts)
    except InvalidInput as exc:
        errors = [{"field": e.field, "reason": e.reason} for e in exc.errors]
        logger.error("configuration %s refused, the previous one stays in force: %s", key, exc)
        outcome = DocumentOutcome(name, False, report_key, errors)
    else:
        store.put_text(f"{LIVE_PREFIX}{name}.json", text)
        logger.info("configuration %s accepted and in force", key)
        outcome = DocumentOutcome(name, True, report_key)
    store.put_text(report_key, json.dumps({"key": key, "at": now.isoformat(), **outcome.__dict__}, indent=2))
    if audit is not None:
        action = "config.accepted" if outcome.accepted else "config.refused"
        audit.record(AuditEntry(subject="config", at=now, action=action, actor=f"s3 upload {key}",
                                details={"name": name, "report": report_key, "errors": outcome.errors}))  # fmt: skip
    return outcome


class LiveDocument(Generic[T]):
    """The document in force, read at most once per ``refresh`` (the shipped default if none)."""

    def __init__(self, store: ObjectStore, model: type[T], refresh: timedelta = timedelta(minutes=1)) -> None:
        self.store, self.model, self.refresh = store, model, refresh
        self.name = model.document
        self._value: T = default_document(model, self.name)
        self._checked: datetime | None = None

    def get(self, now: datetime) -> T:
        if self._checked is None or now - self._checked >= self.refresh:
            self._checked = now
            text = self.store.read_text(f"{LIVE_PREFIX}{self.name}.json")
            try:
                self._value = parse_document(self.model, text) if text else default_document(self.model, self.name)
            except InvalidInput as exc:  # only accepted documents reach live/: someone wrote it by hand
                logger.error("live/%s.json is invalid, keeping the previous rules: %s", self.name, exc)
        return self._value

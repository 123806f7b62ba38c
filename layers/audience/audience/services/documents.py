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
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from audience.domain.documents import Document, parse_document
from audience.domain.errors import FieldError, InvalidInput
from audience.domain.privacy import AuditEntry
from audience.domain.triggers import TriggerRules
from audience.ports import AuditTrail, ObjectStore
from audience.services.artifacts import config_report_key, live_key, uploaded_document

TRIGGERS_UPLOAD = "config/triggers.json"

logger = logging.getLogger(__name__)


def known_documents() -> dict[str, type[Document]]:
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


@dataclass(frozen=True)
class Documents:
    """The configuration documents of the data bucket, and the audit trail of their uploads."""

    store: ObjectStore
    audit: AuditTrail | None = None

    def accept(self, key: str, now: datetime, actor: str | None = None) -> DocumentOutcome:
        """Check the uploaded ``config/<name>.json``; put it in force only if it is valid; the
        outcome goes to the audit trail (subject ``config``; ``actor``: who saved it, else the upload)."""
        name = uploaded_document(key)
        report_key = config_report_key(name, now)
        text = self.store.read_text(key)
        known = known_documents()
        model = known.get(name)
        try:
            if model is None:
                expected = f"unknown configuration '{name}': expected one of {', '.join(known)}"
                raise InvalidInput([FieldError("(file)", expected)])
            if text is None:
                raise InvalidInput([FieldError("(file)", "the object is gone")])
            document = parse_document(model, text)
            in_force = self.store.read_text(live_key(name))
            conflicts = document.conflicts(parse_document(model, in_force), now) if in_force else []
            if conflicts:
                raise InvalidInput(conflicts)
        except InvalidInput as exc:
            errors = [{"field": e.field, "reason": e.reason} for e in exc.errors]
            logger.error("configuration %s refused, the previous one stays in force: %s", key, exc)
            outcome = DocumentOutcome(name, False, report_key, errors)
        else:
            self.store.put_text(live_key(name), text)
            logger.info("configuration %s accepted and in force", key)
            outcome = DocumentOutcome(name, True, report_key)
        self.store.put_text(report_key, json.dumps({"key": key, "at": now.isoformat(), **outcome.__dict__}, indent=2))
        if self.audit is not None:
            action = "config.accepted" if outcome.accepted else "config.refused"
            details = {"name": name, "report": report_key, "errors": outcome.errors}
            self.audit.record(AuditEntry(subject="config", at=now, action=action, actor=actor or f"s3 upload {key}",
                                         details=details))  # fmt: skip
        return outcome


class RulesSaved(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    accepted: bool
    report: str = Field(description="the check's report in the data bucket")
    in_force: dict[str, Any] = Field(alias="inForce", description="the rules in force after the save")


def checked(document: dict[str, Any], store: ObjectStore, now: datetime) -> TriggerRules:
    """The document as the config function checks an upload: parsed (every failing field named)
    and compared with the rules in force (``conflicts``); ``InvalidInput`` otherwise."""
    text = json.dumps(document)
    rules = parse_document(TriggerRules, text)
    in_force = store.read_text(live_key(TriggerRules.document))
    conflicts = rules.conflicts(parse_document(TriggerRules, in_force), now) if in_force else []
    if conflicts:
        raise InvalidInput(conflicts)
    return rules


@dataclass(frozen=True)
class RuleBuilder:
    """Saves a document the way an upload takes effect: written to ``config/triggers.json`` and
    accepted by ``Documents`` (the config function's own check, which the upload's bucket event
    then repeats to the same effect), audited with who saved it."""

    store: ObjectStore
    audit: AuditTrail | None

    def save(self, document: dict[str, Any], now: datetime, actor: str) -> RulesSaved:
        checked(document, self.store, now)  # refused here before anything is written
        self.store.put_text(TRIGGERS_UPLOAD, json.dumps(document, indent=2))
        outcome = Documents(self.store, self.audit).accept(TRIGGERS_UPLOAD, now, actor)
        in_force = json.loads(self.store.read_text(live_key(TriggerRules.document)) or "{}")
        return RulesSaved(accepted=outcome.accepted, report=outcome.report_key, in_force=in_force)

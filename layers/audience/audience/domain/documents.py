"""Configuration documents (trigger rules, the personalization mapping): parsed from JSON with
every error naming the item and field, and the defaults shipped in ``defaults/<name>.json``."""

from __future__ import annotations

import json
from datetime import datetime
from importlib import resources
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ValidationError

from audience.domain.errors import FieldError, InvalidInput

T = TypeVar("T", bound=BaseModel)


class Document(BaseModel):
    """A configuration document users upload as ``config/<document>.json``."""

    document: ClassVar[str]

    def conflicts(self, previous: Any, now: datetime) -> list[FieldError]:
        """Why this document may not replace ``previous`` (the one in force) at ``now``."""
        return []


def parse_document(model: type[T], text: str | bytes) -> T:
    """``text`` as a ``model``, or ``InvalidInput`` naming each failing item and field, e.g.
    ``rules[0] (id 'big-order').amount``."""
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise InvalidInput([FieldError("(file)", f"not valid JSON ({exc})")]) from None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise InvalidInput([_named(error, raw) for error in exc.errors()]) from None


def default_document(model: type[T], name: str) -> T:
    return parse_document(model, resources.files("audience.domain").joinpath("defaults", f"{name}.json").read_text())


def _named(error: Any, raw: Any) -> FieldError:
    loc, parts = list(error["loc"]), list[str]()
    node = raw
    while loc:
        part = loc.pop(0)
        if isinstance(part, int) and isinstance(node, list) and part < len(node):
            node = node[part]
            keys = ("id", "segment") if isinstance(node, dict) else ()
            label = next((f" ({key} '{node[key]}')" for key in keys if isinstance(node.get(key), str)), "")
            parts.append(f"{parts.pop() if parts else ''}[{part}]{label}")
            if loc and isinstance(node, dict) and loc[0] == node.get("kind"):
                loc.pop(0)  # a discriminated union puts the kind first; users never wrote it
            continue
        parts.append(str(part))
        node = node.get(part) if isinstance(node, dict) else None
    return FieldError(".".join(parts) or "(file)", error["msg"])

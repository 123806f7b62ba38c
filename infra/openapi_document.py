"""The API's OpenAPI document, generated from the functions' own routes (Powertools' resolvers).

``make openapi`` writes it to ``docs/openapi.json``; a test checks that the published document
is this one and that its routes are the template's.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
API_FUNCTIONS = ("ingest", "profiles_api", "config")  # the functions behind API Gateway routes
TRACKING = ("batch", "track", "identify", "page", "screen", "group", "alias")


def _json_body(description: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": {"type": "object",
                                                                           "description": description}}}}  # fmt: skip


def _text_body(description: str) -> dict[str, Any]:
    """A JSON body a browser sends as text/plain (a simple request: no preflight of its own)."""
    schema = {"type": "object", "description": description}
    return {"required": True, "content": {"text/plain": {"schema": schema}, "application/json": {"schema": schema}}}


# The webhook is signed; the tracking API and in-page personalization take a source's write key,
# instead of the API key.
KEYLESS = {("/v1/events", "post"), ("/v1/web/personalization", "get")} | {(f"/v1/{call}", "post") for call in TRACKING}
# What browser SDKs send and fetch: a source's write key (in the body, HTTP Basic, the query or the path).
BROWSER = {(f"/v1/{call[0]}", "post") for call in TRACKING[1:]} | {("/v1/b", "post"), ("/beacon/v1/batch", "post")}
KEYLESS |= BROWSER | {("/v1/projects/{writeKey}/settings", "get"), ("/sourceConfig", "get")}
REQUEST_BODIES = {  # bodies the function parses itself (field errors name the path in the body)
    ("/v1/events", "post"): _json_body(
        "a Segment Spec message (track, identify, page, screen, group, alias) "
        'or {"batch": [messages]} with an optional shared context'
    ),
    ("/v1/batch", "post"): _json_body(
        'Segment\'s batch: {"batch": [messages], "context", "integrations", "sentAt", "writeKey"}; '
        "Content-Encoding: gzip accepted; at most 32 KB a message, 500 KB a batch"
    ),
    **{
        (f"/v1/{call}", "post"): _json_body(f"one Segment Spec {call} message (its type implied by the path)")
        for call in TRACKING[1:]
    },
    **{
        (f"/v1/{call[0]}", "post"): _text_body(
            f"analytics.js 2.0: one {call} message with writeKey, sentAt, context and _metadata (text/plain JSON)"
        )
        for call in TRACKING[1:]
    },
    ("/v1/b", "post"): _text_body("analytics.js 2.0 batching mode: {writeKey, batch, sentAt} (text/plain JSON)"),
    ("/beacon/v1/batch", "post"): _text_body("RudderStack's beacon: {batch, sentAt} (text/plain JSON); ?writeKey="),
}


def _resolver(function: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"{function}_app", ROOT / "functions" / function / "app.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[spec.name] = module  # type: ignore[union-attr]  (annotations resolve in its namespace)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.app


def document() -> dict[str, Any]:
    sys.path.insert(0, str(ROOT / "layers" / "audience"))
    merged: dict[str, Any] = {}
    for function in API_FUNCTIONS:
        schema = json.loads(
            _resolver(function).get_openapi_json_schema(
                title="Audience Engine API",
                version="1",
                description="Ingest Segment Spec events; read profiles, personalization and segments.",
                servers=[{"url": "http://127.0.0.1:3000", "description": "the embedded stack (make local)"}],
            )
        )
        if not merged:
            merged = schema
            continue
        for path, operations in schema["paths"].items():  # a path may be served by two functions, a verb each
            merged["paths"].setdefault(path, {}).update(operations)
        merged.setdefault("components", {}).setdefault("schemas", {}).update(
            schema.get("components", {}).get("schemas", {})
        )
    merged.setdefault("components", {})["securitySchemes"] = {
        "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"}
    }
    for path, operations in merged["paths"].items():
        for verb, operation in operations.items():
            if "422" in operation["responses"]:  # parameter errors are answered 400 (audience.api)
                del operation["responses"]["422"]
            if (path, verb) in REQUEST_BODIES:
                operation["requestBody"] = REQUEST_BODIES[(path, verb)]
            if (path, verb) not in KEYLESS:
                operation["security"] = [{"apiKey": []}]
                operation["responses"].setdefault("403", {"description": "missing or wrong API key"})
    return merged


if __name__ == "__main__":
    print(json.dumps(document(), indent=2, sort_keys=True))

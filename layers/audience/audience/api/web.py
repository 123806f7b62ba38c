"""``/v1/web/personalization``: what a page shows its visitor, asked from the browser.

Keyed by a source's write key (HTTP Basic ``key:`` or ``?writeKey=``), never by the read API's
key: the write key sits in every page, so the answer is only what the page shows (``WebPersonalization``),
and an unknown visitor gets the default content (200, not 404: a 404 would tell whoever holds the
page's key which ids are customers). The visitor is resolved as the server route resolves a
customer (``personalize``: merged ids followed, consent, holdout, experiments), and a first
exposure to an experiment is recorded the same way.

The visitor is whoever the **anonymous id** belongs to: a random id only the visitor's browser
holds, so it proves the visitor as a cookie would. A user id is guessable (an email, an account
number), and the write key is public: were a user id enough, anyone could read any customer's
segment name. So ``userId`` never finds a customer on its own; when sent, it must be the
customer the anonymous id belongs to (an identify call merged them), else the default is shown.

CORS as the tracking routes (``audience.api.cors``): a preflight is answered for an origin some
source allows; a request whose origin the key's source does not allow is refused (403, counted as
``OriginRefused``, as at the tracking routes); every answer to an origin some source allows echoes it, errors included
(``with_cors``, applied by the handler to whatever the resolver answered). Never credentials.

What a request costs: two GetItems of the visitor when the anonymous id is a redirect to the
customer it merged into (the usual case once the visitor has signed in), one when it is the
customer's own id; with a user id, those of both ids once more to compare; a PutItem on the first
exposure to an experiment only, and the source registry's GetItem once per refresh per container.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from audience.api import cors
from audience.api.edge import json_error, responses
from audience.api.views import WebPersonalization
from audience.bootstrap import ProfilesApiDeps
from audience.domain.errors import AudienceError, CustomerNotFound, FieldError, InvalidInput
from audience.domain.sources import OriginRefused, basic_user
from audience.observability import count
from audience.services.experiments import personalize
from audience.services.profiles import get_profile
from audience.services.segments import definitions
from audience.services.sources import WriteKeys

metrics = Metrics()  # Powertools instances share one metric set: the handler flushes it
PATH = "/v1/web/personalization"
# Per visitor (private: no shared cache keeps one visitor's answer for another), a few seconds:
# a page that asks on every navigation costs one request in five seconds, and a segment change
# shows within them.
CACHE_CONTROL = "private, max-age=5"
AnonymousId = Annotated[
    str | None,
    Query(min_length=1, max_length=768, description="the SDK's anonymous id (`analytics.user().anonymousId()`)"),
]
UserId = Annotated[
    str | None,
    Query(min_length=1, max_length=768, description="the visitor's user id, once known: checked, never enough alone"),
]
WriteKey = Annotated[str | None, Query(max_length=256, description="the source's write key, instead of HTTP Basic")]


def router(deps: Callable[[], ProfilesApiDeps]) -> Router:
    routes = Router()  # type: ignore[no-untyped-call]

    def headers() -> dict[str, str]:
        return {name.lower(): value for name, value in (routes.current_event.headers or {}).items()}

    @routes.get(
        PATH,
        summary="What a page shows its visitor: content, segment name, experiment variant (a source's write key)",
        description="The write key as HTTP Basic user (`Authorization: Basic base64(key:)`) or `?writeKey=`. "
        "The visitor is the customer `anonymousId` belongs to; a `userId`, when sent, must be that customer "
        "(a user id alone is guessable and finds nobody). An unknown visitor gets the default content. "
        f"`Cache-Control: {CACHE_CONTROL}`; CORS for the origins the key's source allows.",
        responses=responses(400, 401, 403, 503),
    )
    def get_web_personalization(
        anonymousId: AnonymousId = None,  # noqa: N803 (the query's names, as analytics.js spells them)
        userId: UserId = None,  # noqa: N803
        writeKey: WriteKey = None,  # noqa: N803
    ) -> Response[WebPersonalization]:
        d, now, sent = deps(), datetime.now(UTC), headers()
        source = d.write_keys.source(basic_user(sent) or writeKey or "", now)  # Unauthorized: 401
        origin = sent.get("origin")
        if origin and not source.allows(origin):
            raise OriginRefused(origin, source.name)
        if not anonymousId:
            raise InvalidInput([FieldError("anonymousId", "required: the visitor is who the anonymous id belongs to")])
        answer = visit(anonymousId, userId, d, now)
        count(metrics, **{"WebPersonalized" if answer.personalized else "WebNotPersonalized": 1})
        return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=answer,
                        headers={"Cache-Control": CACHE_CONTROL, "Vary": "Origin"})  # fmt: skip

    @routes.route(PATH, method="OPTIONS", include_in_schema=False)
    def preflight_web_personalization() -> Response[None]:
        d, sent = deps(), headers()
        origin = sent.get("origin", "")
        if origin and d.write_keys.allows(origin, datetime.now(UTC)):
            return Response(status_code=204, headers=cors.preflight(origin, sent))
        raise OriginRefused(origin or "(none)")

    @routes.exception_handler(OriginRefused)
    def _refused(exc: OriginRefused) -> Response[dict[str, object]]:
        count(metrics, OriginRefused=1)
        return json_error(403, f"forbidden: {exc}")

    return routes


def visit(anonymous_id: str, user_id: str | None, d: ProfilesApiDeps, now: datetime) -> WebPersonalization:
    """What the customer ``anonymous_id`` belongs to is shown, as the server route chooses it (and
    records a first exposure); the default content when it belongs to nobody yet, or when
    ``user_id`` is sent and is not that customer."""
    mapping, experiments = d.content.get(now), d.experiments.get(now)
    try:
        if user_id is not None and (
            get_profile(user_id, d.profiles).customer_id != get_profile(anonymous_id, d.profiles).customer_id
        ):
            raise CustomerNotFound(user_id)  # checked first: a refused visitor's exposure is not recorded
        choice = personalize(anonymous_id, d.profiles, mapping, experiments, now)
    except CustomerNotFound:
        count(metrics, WebVisitorsUnknown=1)
        return WebPersonalization.default(mapping)
    names = {sid: name for sid, (_, name, _, _) in definitions(d.model.get(now), d.rules.get(now)).items()}
    return WebPersonalization.of(choice, names)


def with_cors(event: Mapping[str, Any], answer: dict[str, Any], write_keys: Callable[[], WriteKeys]) -> dict[str, Any]:
    """``answer`` (a proxy response) with the CORS headers of the request's origin when it is to a
    web route and some source allows the origin: errors too (a browser reports an answer without
    them as a network failure, and the page could not read why)."""
    if not str(event.get("resource") or event.get("path") or "").startswith("/v1/web/"):
        return answer
    origin = {name.lower(): value for name, value in (event.get("headers") or {}).items()}.get("origin")
    try:
        if not origin or not write_keys().allows(origin, datetime.now(UTC)):
            return answer
    except AudienceError:  # the registry unreadable: the answer (a 503 already) goes as it is
        return answer
    return cors.echoed(answer, origin)

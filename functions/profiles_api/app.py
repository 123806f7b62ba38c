"""The read API for personalization: customers, what to show them, their privacy, segments and
their members, the models in force. One router per resource (``audience.api``); API Gateway requires an API key,
except for in-page personalization (``audience.api.web``: a source's write key, CORS).

Powertools' resolver validates parameters and responses, and generates the OpenAPI document
(``make openapi`` writes ``docs/openapi.json``).
"""

from __future__ import annotations

from functools import cache

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from audience.api import customers, experiments, models, privacy, rules, segments, web
from audience.api.edge import no_store, not_json, register_error_handlers
from audience.bootstrap import profiles_api as composition
from audience.observability import lambda_handler

logger = Logger()
metrics = Metrics()
deps = cache(composition.build)  # once per container
app = APIGatewayRestResolver(enable_validation=True)
register_error_handlers(app)
for resource in (customers, privacy, segments, rules, models, experiments, web):
    app.include_router(resource.router(lambda: deps()))  # looked up at call time: tests replace deps


@lambda_handler(logger, metrics, correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: LambdaContext) -> dict:
    answer = not_json(event) or app.resolve(event, context)
    answer = web.with_cors(event, answer, lambda: deps().write_keys)  # the web routes' answers, errors included
    return no_store(answer)

"""API Gateway's REST proxy integration on 127.0.0.1: HTTP request -> v1 proxy event -> handler.

Routes are read from the API Gateway resources of the deployed stack (paths, methods, whether
an API key is required and the function each integration invokes), so they are the template's
own. Where the template requires a key, the ``x-api-key`` header must carry the local key
(``API_KEY``, ``local-dev-key`` by default), or the answer is API Gateway's 403.
"""

from __future__ import annotations

import base64
import hmac
import logging
import re
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import boto3

from embedded.deploy import DeployedStack
from embedded.runtime import FunctionError, LambdaRuntime

log = logging.getLogger(__name__)
_MAX_PAYLOAD = 10 * 1024 * 1024  # API Gateway's request payload limit
_CLIENT_SECONDS = 60  # a client that sends nothing for this long is let go
LOCAL_API_KEY = "local-dev-key"
_FUNCTION_ARN = re.compile(r"functions/(arn:aws[^/]*:lambda:[^/]+)/invocations")


@dataclass(frozen=True)
class Route:
    method: str
    resource: str  # the path template, e.g. /v1/customers/{customerId}
    function_arn: str
    pattern: re.Pattern[str]
    api_key_required: bool = False

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if method != self.method and self.method != "ANY":
            return None
        # API Gateway ignores a trailing slash (RudderStack asks for /sourceConfig/)
        found = self.pattern.fullmatch(path.rstrip("/") or "/")
        # API Gateway hands path parameters to the function URL-decoded (ユーザー, +, %2F ...)
        return {name: unquote(value) for name, value in found.groupdict().items()} if found else None


def routes_from_stack(session: boto3.session.Session, stack: DeployedStack) -> tuple[list[Route], dict[str, str]]:
    """The routes of every REST API in the stack, and the API id and stage they belong to."""
    apigateway = session.client("apigateway")
    routes: list[Route] = []
    api_ids = [
        physical for logical, physical in stack.resources.items() if stack.types[logical] == "AWS::ApiGateway::RestApi"
    ]
    for api_id in api_ids:
        for resource in apigateway.get_resources(restApiId=api_id, limit=500)["items"]:
            for method in resource.get("resourceMethods", {}):
                found = apigateway.get_method(restApiId=api_id, resourceId=resource["id"], httpMethod=method)
                arn = _FUNCTION_ARN.search(found.get("methodIntegration", {}).get("uri", ""))
                if arn:
                    pattern, key_required = _path_pattern(resource["path"]), bool(found.get("apiKeyRequired"))
                    routes.append(Route(method, resource["path"], arn.group(1), pattern, key_required))
    stages = {api_id: s["stageName"] for api_id in api_ids for s in apigateway.get_stages(restApiId=api_id)["item"]}
    return routes, stages


def _path_pattern(resource: str) -> re.Pattern[str]:
    regex = re.sub(r"\\{(\w+)\\\+\\}", r"(?P<\1>.+)", re.escape(resource))  # {proxy+}
    regex = re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", regex)
    return re.compile(regex)


def proxy_event(
    method: str,
    raw_path: str,
    headers: dict[str, list[str]],
    body: bytes,
    route: Route,
    path_parameters: dict[str, str],
    stage: str,
) -> dict[str, Any]:
    """The REST API (v1 payload) proxy event Lambda receives from API Gateway."""
    url = urlsplit(raw_path)
    query = parse_qs(url.query, keep_blank_values=True)
    try:
        text, is_base64 = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, is_base64 = base64.b64encode(body).decode(), True
    request_id = str(uuid.uuid4())
    return {
        "resource": route.resource,
        "path": url.path,
        "httpMethod": method,
        "headers": {k: v[-1] for k, v in headers.items()},
        "multiValueHeaders": headers,
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": route.resource,
            "httpMethod": method,
            "path": url.path,  # the path asked for: served at the root, as on a custom domain (no /<stage>)
            "stage": stage,
            "requestId": request_id,
            "extendedRequestId": request_id,
            "requestTimeEpoch": int(time.time() * 1000),
            "protocol": "HTTP/1.1",
            "domainName": "127.0.0.1",
            "accountId": route.function_arn.split(":")[4],
            "apiId": "embedded",
            "identity": {"sourceIp": "127.0.0.1", "userAgent": headers.get("User-Agent", [""])[-1]},
        },
        "body": text if body else None,
        "isBase64Encoded": is_base64,
    }


class ApiFront:
    """A threaded HTTP server in front of the runtime; ``port=0`` picks a free port."""

    def __init__(
        self,
        runtime: LambdaRuntime,
        routes: list[Route],
        stage: str,
        host: str = "127.0.0.1",
        port: int = 3000,
        api_key: str = LOCAL_API_KEY,
    ) -> None:
        self.runtime, self.routes, self.stage, self.api_key = runtime, routes, stage, api_key
        self.server = _Server((host, port), self._request_handler())
        self._thread = threading.Thread(target=self.server.serve_forever, name="api-front", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def halt(self) -> None:
        pass  # requests in flight end when the runtime stops their containers

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(
        self, method: str, raw_path: str, headers: dict[str, list[str]], body: bytes
    ) -> tuple[int, dict[str, list[str]], bytes]:
        path = urlsplit(raw_path).path
        for route in self.routes:
            parameters = route.match(method, path)
            if parameters is not None:
                break
        else:  # API Gateway's answer for a path and method it has no route for
            return 403, {"Content-Type": ["application/json"]}, b'{"message":"Missing Authentication Token"}'
        if route.api_key_required:
            sent = next((v[-1] for k, v in headers.items() if k.lower() == "x-api-key"), "")
            if not hmac.compare_digest(sent.encode(), self.api_key.encode()):
                return 403, {"Content-Type": ["application/json"]}, b'{"message":"Forbidden"}'
        event = proxy_event(method, raw_path, headers, body, route, parameters, self.stage)
        try:
            response = self.runtime.invoke(route.function_arn, event)
        except FunctionError:
            return 502, {"Content-Type": ["application/json"]}, b'{"message": "Internal server error"}'
        return _http_response(response)

    def _request_handler(self) -> type[BaseHTTPRequestHandler]:
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = _CLIENT_SECONDS

            def handle_one_request(self) -> None:
                """One request; a client that went away is one line in the log, never a traceback."""
                try:
                    super().handle_one_request()
                except (ConnectionError, TimeoutError) as exc:
                    self.close_connection = True
                    log.info("client %s:%s gone: %s", *self.client_address[:2], type(exc).__name__)

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > _MAX_PAYLOAD:
                    self._reply(413, {"Content-Type": ["application/json"]}, b'{"message":"Request Too Long"}')
                    return
                body = self.rfile.read(length) if length else b""
                headers: dict[str, list[str]] = {}
                for name, value in self.headers.items():
                    headers.setdefault(name, []).append(value)
                self._reply(*front.handle(self.command, self.path, headers, body))

            def _reply(self, status: int, headers: dict[str, list[str]], body: bytes) -> None:
                self.send_response(status)
                for name, values in headers.items():
                    for value in values:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def __getattr__(self, name: str) -> Any:
                """Every method (GET, TRACE, QUERY, ...) is served, as API Gateway answers them all
                (403 where no route has it)."""
                if name.startswith("do_"):
                    return self._serve
                raise AttributeError(name)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the stdlib's name)
                pass  # requests are visible in the function logs

        return Handler


class _Server(ThreadingHTTPServer):
    """Each request on a thread of its own; nothing a client does stops the server."""

    daemon_threads = True
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.warning("request from %s failed: %s", client_address, sys.exc_info()[1])


def _http_response(response: Any) -> tuple[int, dict[str, list[str]], bytes]:
    """Lambda proxy response -> HTTP; a malformed one is a 502, as API Gateway answers."""
    if not isinstance(response, dict) or not isinstance(response.get("statusCode"), int):
        return 502, {"Content-Type": ["application/json"]}, b'{"message": "Internal server error"}'
    headers = {k: [str(v)] for k, v in (response.get("headers") or {}).items()}
    for name, values in (response.get("multiValueHeaders") or {}).items():
        headers[name] = [str(v) for v in values]
    body = response.get("body") or ""
    payload = base64.b64decode(body) if response.get("isBase64Encoded") else str(body).encode()
    return response["statusCode"], headers, payload

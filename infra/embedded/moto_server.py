"""moto in server mode, with DynamoDB's per-item atomicity.

DynamoDB applies each conditional write atomically; moto's server handles requests on threads
with no lock around its DynamoDB backend, so two conditional writes can both pass their check.
Serialising DynamoDB requests restores the guarantee our optimistic concurrency relies on.
(Other services stay concurrent: an SQS long poll must not hold everything up.)
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class AtomicDynamoDB:
    """Serialises DynamoDB requests, and counts them by operation (what a benchmark's
    functions cost, whichever process they run in)."""

    def __init__(self, app: WsgiApp) -> None:
        self.app, self.lock = app, threading.Lock()
        self.requests: Counter[str] = Counter()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not target.startswith("DynamoDB_"):
            return self.app(environ, start_response)
        with self.lock:
            self.requests[target.split(".", 1)[-1]] += 1
            return list(self.app(environ, start_response))


class MotoServer:
    """``port=0`` picks a free port; ``url`` tells which."""

    def __init__(self, host: str = "127.0.0.1", port: int = 4566) -> None:
        self.dynamodb = AtomicDynamoDB(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(host, port, self.dynamodb, threaded=True, request_handler=MotoRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

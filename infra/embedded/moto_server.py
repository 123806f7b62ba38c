"""moto in server mode, with DynamoDB's per-item atomicity, and three of moto's hot spots cut.

DynamoDB applies each conditional write atomically; moto's server handles requests on threads
with no lock around its DynamoDB backend, so two conditional writes can both pass their check.
Serialising DynamoDB requests restores the guarantee our optimistic concurrency relies on.
(Other services stay concurrent: an SQS long poll must not hold everything up.)

Speed (measured with py-spy on the Online Retail II import through the embedded stack): moto
5.2 finds each request's backend by listing its own package folder (~10% of the run), and
serialises every DynamoDB answer by walking botocore's output shapes (~25%). The backend of a
host is cached here, and the answers of item operations, which moto already holds in DynamoDB's
wire format, are written as JSON directly (blobs base64-encoded as the shape walk does).
"""

from __future__ import annotations

import base64
import copy
import json
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import moto.dynamodb.models as dynamodb_models
from moto.core.responses import ActionContext
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoResult
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from embedded.faults import Faults

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


# Operations whose answers are items, counts, keys and consumed capacity: no timestamps to convert.
ITEM_OPERATIONS = frozenset(
    {"GetItem", "BatchGetItem", "Query", "Scan", "PutItem", "UpdateItem", "DeleteItem", "TransactGetItems"}
)
_shape_walk = DynamoResult.execute_result


def _json_answer(self: DynamoResult, context: ActionContext) -> tuple[int, dict[str, str], str]:
    if context.operation_model.name not in ITEM_OPERATIONS:
        return _shape_walk(self, context)  # type: ignore[return-value]
    body = json.dumps(self.result, default=_blob, separators=(",", ":"))
    return 200, {"Content-Type": "application/x-amz-json-1.0"}, body


def _blob(value: Any) -> str:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


DynamoResult.execute_result = _json_answer  # type: ignore[method-assign,assignment]


class _TableSnapshots:
    """moto backs up a transaction's tables with ``copy.deepcopy`` of each whole table, once per
    action: with 4,381 Online Retail profiles that took over the clients' 10 s read timeout (the
    ``ReadTimeoutError`` of ``make retrain`` after the import), and made every identity merge
    cost seconds once a large import was in the table. Puts and deletes replace or remove item
    objects, never change one in place, and an update changes only the item it names: a copy of
    the table's item index, holding deep copies of the items the transaction updates, is a
    complete backup."""

    def __init__(self) -> None:
        self.updated: dict[str, list[dict[str, Any]]] | None = None  # table -> keys of its updates

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        if self.updated is None or not isinstance(value, Table):
            return copy.deepcopy(value, memo)
        snapshot = copy.copy(value)
        snapshot.items = defaultdict(dict, {h: dict(r) if isinstance(r, dict) else r for h, r in value.items.items()})
        for key in self.updated.get(value.name, []):
            hash_value = DynamoType(key[value.hash_key_attr])
            range_value = DynamoType(key[value.range_key_attr]) if value.range_key_attr else None
            item = value.get_item(hash_value, range_value)
            if item is not None:
                copied = copy.deepcopy(item)
                if range_value is None:
                    snapshot.items[hash_value] = copied  # type: ignore[assignment]
                else:
                    snapshot.items[hash_value][range_value] = copied
        return snapshot


_SNAPSHOTS = _TableSnapshots()
dynamodb_models.copy = _SNAPSHOTS  # type: ignore[assignment,attr-defined]  # (its other use: an item's copy)
_transact = DynamoDBBackend.transact_write_items


def _transact_lightly(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    updated: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for action in transact_items:
        if "Update" in action:
            updated[action["Update"]["TableName"]].append(action["Update"]["Key"])
    _SNAPSHOTS.updated = updated
    try:
        _transact(self, transact_items)
    finally:
        _SNAPSHOTS.updated = None


DynamoDBBackend.transact_write_items = _transact_lightly  # type: ignore[method-assign]


class CachedDispatch(DomainDispatcherApplication):
    """moto's dispatcher, remembering which backend serves a host."""

    def __init__(self, create_app: Callable[..., Any]) -> None:
        super().__init__(create_app)
        self._backends: dict[str | None, Any] = {}

    def get_backend_for_host(self, host: str | None) -> Any:
        if host not in self._backends:
            self._backends[host] = super().get_backend_for_host(host)
        return self._backends[host]


class LocalAws:
    """In front of moto: serialises DynamoDB requests and counts them by operation (what a
    benchmark's functions cost, whichever process they run in), and injects ``faults``."""

    def __init__(self, app: WsgiApp, faults: Faults) -> None:
        self.app, self.lock, self.faults = app, threading.Lock(), faults
        self.requests: Counter[str] = Counter()
        self.seconds: dict[str, float] = defaultdict(float)  # time moto spent serving each operation (under the lock)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        fault = self.faults.answer(environ)
        if fault is not None:
            if fault.apply_first:  # the request lands; its answer is lost
                list(self._serve(environ, lambda *_args, **_kwargs: None))
            start_response(f"{fault.status} Injected", fault.headers)
            return [fault.body]
        return self._serve(environ, start_response)

    def _serve(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not target.startswith("DynamoDB_"):
            return self.app(environ, start_response)
        with self.lock:
            started, operation = time.perf_counter(), target.split(".", 1)[-1]
            answer = list(self.app(environ, start_response))
            self.requests[operation] += 1
            self.seconds[operation] += time.perf_counter() - started
            return answer


class MotoServer:
    """``port=0`` picks a free port; ``url`` tells which; ``faults`` what it injects."""

    def __init__(self, host: str = "127.0.0.1", port: int = 4566) -> None:
        self.faults = Faults()
        self.dynamodb = LocalAws(CachedDispatch(create_backend_app), self.faults)
        self._server = make_server(host, port, self.dynamodb, threaded=True, request_handler=MotoRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and empty moto's backends: they are process-wide, and the next server
        started in this process (a benchmark's next stack) must start empty."""
        from moto.moto_api._internal.models import moto_api_backend

        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        moto_api_backend.reset()

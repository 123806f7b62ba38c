"""Each handler as Lambda calls it, with its bundle built by the composition root on the in-memory
infrastructure: the handler's own logic (parsing, dispatch, answers) without moto."""

from __future__ import annotations

import gzip
import importlib.util
import json
import sys
from collections.abc import Callable
from copy import deepcopy
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import pytest

from audience.api.views import CustomerView
from audience.bootstrap import documents, importer, ingest, profiles_api, retrain, stream
from audience.domain.privacy import AuditEntry, pseudonym, pseudonymised
from audience.domain.profile import Profile, Stamped
from audience.domain.signatures import segment_signature
from audience.settings import (
    DocumentSettings,
    ImportSettings,
    IngestSettings,
    ProfilesApiSettings,
    RetrainSettings,
    StreamSettings,
)
from embedded.runtime import LambdaContext
from tests.conftest import ROOT, load_event
from tests.unit.fakes import MemoryInfrastructure

COMMON = {
    "PROFILES_TABLE": "profiles",
    "DATA_BUCKET": "data",
    "SEGMENT_BUS": "bus",
    "BASE_CURRENCY": "USD",
    "CURRENCY_RATES": '{"USD": 1, "EUR": 1.1}',
    "PII_PEPPER_NAME": "pepper",
    "IMPORT_QUEUE_URL": "import-queue",
    "DEAD_LETTER_QUEUE_URL": "dlq",
}
PEPPER, WEBHOOK_SECRET = "pepper-value", "webhook-secret"


def handler_module(function: str, deps: Callable[[], Any]) -> ModuleType:
    """``functions/<function>/app.py`` as Lambda loads it, its bundle replaced by ``deps``."""
    spec = importlib.util.spec_from_file_location(f"handler_{function}", ROOT / "functions" / function / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # as Lambda's import does: annotations resolve in the module's namespace
    spec.loader.exec_module(module)
    module.deps = deps
    return module


def context() -> LambdaContext:
    return LambdaContext("test", "arn:aws:lambda:us-east-1:123456789012:function:test", 512, 30)


@pytest.fixture
def infra(monkeypatch: pytest.MonkeyPatch) -> MemoryInfrastructure:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "AudienceEngine")  # as the template sets it
    return MemoryInfrastructure(secrets={"pepper": [PEPPER], "webhook": [WEBHOOK_SECRET]})


def test_the_stream_handler_folds_records_and_parks_the_unreadable_one(infra: MemoryInfrastructure) -> None:
    settings = StreamSettings.from_env(COMMON)
    app = handler_module("stream", lambda: stream.build(settings, infra))

    answer = app.handler(load_event("stream_batch.json"), context())

    assert answer == {"batchItemFailures": []}
    assert infra.table.items["cust-001"].orders == 1
    assert [reason for reason, _ in infra.dead.sent] and "undecodable" in infra.dead.sent[0][0]


def test_the_ingest_handler_accepts_a_signed_order_and_hashes_contact_details(infra: MemoryInfrastructure) -> None:
    settings = IngestSettings.from_env({**COMMON, "EVENTS_STREAM": "events", "WEBHOOK_SECRET_NAME": "webhook"})
    app = handler_module("ingest", lambda: ingest.build(settings, infra))
    body = json.dumps({"type": "identify", "userId": "u1", "traits": {"email": "ada@example.com"}})
    event = deepcopy(load_event("ingest_order_completed.json"))
    event.update(body=body, headers={"Content-Type": "application/json",
                                     "X-Signature": segment_signature(WEBHOOK_SECRET, body.encode())})  # fmt: skip

    answer = app.handler(event, context())

    assert answer["statusCode"] == 202 and json.loads(answer["body"]) == {"accepted": 1}
    assert infra.sink.messages[0].traits["email"] != "ada@example.com"  # a keyed hash, not the address

    event["headers"]["X-Signature"] = "0" * 40
    assert app.handler(event, context())["statusCode"] == 401


def test_contact_details_stay_in_the_clear_only_when_the_stack_says_so(infra: MemoryInfrastructure) -> None:
    hashed = IngestSettings.from_env({**COMMON, "EVENTS_STREAM": "events"})
    clear = IngestSettings.from_env({**COMMON, "EVENTS_STREAM": "events", "STORE_PII_IN_CLEAR": "true"})

    assert ingest.build(hashed, infra).contact_key == PEPPER
    assert ingest.build(clear, infra).contact_key is None
    assert importer.build(ImportSettings.from_env({**COMMON, "STORE_PII_IN_CLEAR": "true"}), infra).suppression


def test_the_read_api_answers_typed_bodies_and_an_erasure_asks_for_file_scrubbing(
    infra: MemoryInfrastructure,
) -> None:
    settings = ProfilesApiSettings.from_env(COMMON)
    app = handler_module("profiles_api", lambda: profiles_api.build(settings, infra))
    stream_app = handler_module("stream", lambda: stream.build(StreamSettings.from_env(COMMON), infra))  # fmt: skip
    stream_app.handler(load_event("stream_batch.json"), context())
    get = load_event("profiles_api_get_customer.json")
    consent = {**get, "httpMethod": "PUT", "path": "/v1/customers/cust-001/consent", "body": '{"marketing": false}',
               "resource": "/v1/customers/{customerId}/consent"}  # fmt: skip
    assert json.loads(app.handler(consent, context())["body"])["consent"]["marketing"]["granted"] is False

    profile = app.handler(get, context())
    assert profile["statusCode"] == 200
    assert profile["headers"]["Cache-Control"] == "no-store"  # a customer's answer is never kept by a cache
    body = json.loads(profile["body"])
    stored = CustomerView.of(infra.table.items["cust-001"], datetime.now(UTC), "USD")
    assert body == stored.model_dump(mode="json", by_alias=True)  # the answer is the view of the stored profile
    assert body["customerId"] == "cust-001" and body["rfm"]["orders"] == 1 and "preferredHour" in body["context"]

    erase = {**get, "httpMethod": "DELETE", "requestContext": {**get["requestContext"], "httpMethod": "DELETE"}}
    receipt = json.loads(app.handler(erase, context())["body"])
    assert receipt["customerId"] == "cust-001" and receipt["receiptId"]
    assert "cust-001" not in infra.table.items
    [work] = infra.queues["import-queue"].items
    assert work["scrub"]["subject"] == pseudonym(PEPPER, "cust-001") and "cust-001" in work["scrub"]["ids"]
    gone = app.handler(get, context())
    assert gone["statusCode"] == 404 and gone["headers"]["Cache-Control"] == "no-store"


def test_the_read_api_finds_customers_by_email_or_phone_through_their_keyed_hashes(
    infra: MemoryInfrastructure,
) -> None:
    """Contact details are stored only as keyed hashes: the lookup hashes what it is asked, as
    identify stores it (trimmed, lower-cased), and finds the customers holding that hash."""
    settings = ProfilesApiSettings.from_env(COMMON)
    app = handler_module("profiles_api", lambda: profiles_api.build(settings, infra))
    now = datetime.now(UTC)
    hashed = pseudonymised({"email": "ada@example.com", "phone": "+44 20 7946 0000"}, PEPPER)
    for customer in ("ada", "ada-household"):
        traits = {name: Stamped(value, now) for name, value in hashed.items()}
        infra.table.save(Profile(customer_id=customer, known=True, traits=traits))
    infra.table.save(Profile(customer_id="bob", known=True, traits={"email": Stamped(hashed["email"] + "x", now)}))
    get = load_event("profiles_api_get_customer.json")

    def find(**query: str) -> tuple[int, Any]:
        many = {k: [v] for k, v in query.items()}
        event = {**get, "path": "/v1/customers", "resource": "/v1/customers", "pathParameters": None,
                 "queryStringParameters": query, "multiValueQueryStringParameters": many}  # fmt: skip
        answer = app.handler(event, context())
        return answer["statusCode"], json.loads(answer["body"])

    assert find(email=" Ada@Example.com ") == (200, {"customers": ["ada", "ada-household"]})
    assert find(phone="+44 20 7946 0000") == (200, {"customers": ["ada", "ada-household"]})
    assert find(email="nobody@example.com") == (200, {"customers": []})
    status, body = find()
    assert status == 400 and "email" in json.dumps(body)
    assert find(email="ada@example.com", phone="+44 20 7946 0000")[0] == 400


def test_the_import_handler_scrubs_an_erased_customers_rows_and_audits_it(infra: MemoryInfrastructure) -> None:
    app = handler_module("importer", lambda: importer.build(ImportSettings.from_env(COMMON), infra))
    infra.objects.put_text("rejects/i1.jsonl", '{"row": {"customer_id": "c1"}}\n{"row": {"customer_id": "c2"}}\n')
    work = {"scrub": {"ids": ["c1"], "subject": "subject-1", "receipt": "r1"}}

    answer = app.handler(sqs_event([work, {"chunk": "not a chunk"}]), context())

    assert answer == {"batchItemFailures": [{"itemIdentifier": "m1"}]}  # the malformed item alone is retried
    assert infra.objects.read_text("rejects/i1.jsonl") == '{"row": {"customer_id": "c2"}}\n'
    [entry] = infra.audit.entries("subject-1")
    assert isinstance(entry, AuditEntry) and entry.action == "customer.scrubbed" and entry.details["rows"] == 1


def test_the_retrain_handler_dispatches_typed_requests(infra: MemoryInfrastructure) -> None:
    settings = RetrainSettings.from_env({**COMMON, "RETRAIN_QUEUE_URL": "retrain-queue"})
    app = handler_module("retrain", lambda: retrain.build(settings, infra))

    rescored = app.handler({"action": "rescore"}, context())
    assert rescored["moved"] == 0 and set(rescored["dynamodb"]) == {"readUnits", "writeUnits", "requests"}
    assert app.handler({"action": "retrain", "segments": 3}, context())["segments"] == 3
    assert [item["action"] for item in infra.queues["retrain-queue"].items] == ["features"] * 3
    with pytest.raises(ValueError, match="version"):
        app.handler({"action": "activate"}, context())


def test_the_config_handler_refuses_an_invalid_document_and_keeps_the_previous(infra: MemoryInfrastructure) -> None:
    app = handler_module("config", lambda: documents.build(DocumentSettings.from_env(COMMON), infra))
    infra.objects.put_text("config/triggers.json", '{"rules": [{"id": "x", "kind": "order-at-least", "amount": -1}]}')

    [outcome] = app.handler(s3_event("config/triggers.json"), context())["outcomes"]

    assert not outcome["accepted"] and outcome["errors"] and infra.objects.read_text("live/triggers.json") is None


def sqs_event(bodies: list[dict[str, Any]]) -> dict[str, Any]:
    attributes = {"ApproximateReceiveCount": "1", "SentTimestamp": "1", "SenderId": "s",
                  "ApproximateFirstReceiveTimestamp": "1"}  # fmt: skip
    queue = "arn:aws:sqs:us-east-1:123456789012:q"
    return {
        "Records": [
            {
                "messageId": f"m{i}",
                "receiptHandle": "h",
                "body": json.dumps(body),
                "attributes": attributes,
                "messageAttributes": {},
                "md5OfBody": "0",
                "eventSource": "aws:sqs",
                "eventSourceARN": queue,
                "awsRegion": "us-east-1",
            }
            for i, body in enumerate(bodies)
        ]
    }


def s3_event(key: str) -> dict[str, Any]:
    return {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                         "s3": {"bucket": {"name": "data"}, "object": {"key": key, "size": 1}}}]}  # fmt: skip


def test_the_read_api_serves_the_value_model_and_each_buyers_predictions_with_their_drivers(
    infra: MemoryInfrastructure,
) -> None:
    from audience.services.artifacts import ValueModels
    from audience.value.training import fit_value
    from tests.unit.value.test_value_product import simulated_log

    app = handler_module("profiles_api", lambda: profiles_api.build(ProfilesApiSettings.from_env(COMMON), infra))
    get = load_event("profiles_api_get_customer.json")
    value_model = {**get, "path": "/v1/models/value", "resource": "/v1/models/value", "pathParameters": None}
    missing = app.handler(value_model, context())
    assert missing["statusCode"] == 404 and "no value model yet" in json.loads(missing["body"])["message"]

    fit = fit_value(simulated_log(1500), datetime(2026, 11, 1, tzinfo=UTC), "v-test")
    ValueModels(infra.objects).save(fit.spec, {**fit.metrics, "report": "reports/models/v-test.html"})
    ValueModels(infra.objects).activate(fit.spec)
    stream_app = handler_module("stream", lambda: stream.build(StreamSettings.from_env(COMMON), infra))
    stream_app.handler(load_event("stream_batch.json"), context())  # cust-001 orders

    served = app.handler(value_model, context())
    assert served["statusCode"] == 200
    body = json.loads(served["body"])
    assert body["version"] == "v-test" and body["purchaseModel"]["timeUnit"] == "day"
    assert set(body["purchaseModel"]["parameters"]) == {"r", "alpha", "a", "b"}
    assert set(body["spendModel"]["parameters"]) == {"p", "q", "v"} and body["churn"]["chosen"] in ("trees", "btyd")
    profile = json.loads(app.handler(get, context())["body"])
    predictions = profile["predictions"]
    assert predictions["modelVersion"] == "v-test" and 0 < predictions["pAlive"] <= 1 and predictions["clv12m"] > 0
    assert set(predictions) >= {"expectedOrders90d", "expectedOrderValue", "churnRisk", "asOf", "churnDrivers"}
    for name in ("expectedOrders90d", "clv12m"):  # the stream's intervals, as the API shows them
        (low_95, high_95), (low_80, high_80) = predictions[f"{name}P95"], predictions[f"{name}P80"]
        assert low_95 <= low_80 <= high_80 <= high_95 and high_95 > 0, predictions
    assert 0.5 < body["intervals"]["orders"]["p95"]["coverage"] <= 1  # measured on the holdout by the retrain
    assert all(d["effect"] > 0 for d in predictions["churnDrivers"])


def test_the_console_function_serves_only_its_own_files_with_a_strict_content_security_policy() -> None:
    console = handler_module("console", lambda: None)
    page = console.handler({"pathParameters": None}, None)
    assert page["statusCode"] == 200 and page["headers"]["Content-Type"].startswith("text/html")
    assert "script-src 'self'" in page["headers"]["Content-Security-Policy"] and "x-api-key" not in page["body"]
    script = console.handler({"pathParameters": {"file": "app.js"}}, None)
    assert script["headers"]["Content-Type"].startswith("text/javascript") and "sessionStorage" in script["body"]
    for name in ("..", "../app.py", ".hidden", "app.py", "missing.js"):
        assert console.handler({"pathParameters": {"file": name}}, None)["statusCode"] == 404, name


def test_the_lake_handler_replays_compacts_and_snapshots(infra: MemoryInfrastructure) -> None:
    from audience.bootstrap import lake
    from audience.settings import LakeSettings

    app = handler_module("lake", lambda: lake.build(LakeSettings.from_env(COMMON), infra))
    body = {"type": "track", "userId": "u1", "event": "Order Completed", "messageId": "m1",
            "receivedAt": "2026-11-20T10:00:00Z", "properties": {"order_id": "o1", "total": 12}}  # fmt: skip
    key = "archive/events/day=2026-11-20/audience-engine-archive-1-x.gz"
    infra.objects.put_bytes(key, gzip.compress(json.dumps(body).encode() + b"\n"))

    replayed = app.handler(load_event("lake_replay.json"), context())
    assert (replayed["files"], replayed["events"], replayed["applied"]) == (1, 1, 1)
    assert app.handler({"action": "compact"}, context())["days"] == 1
    assert app.handler({"action": "snapshot"}, context())["profiles"] == 1
    with pytest.raises(ValueError, match="from <= to"):
        app.handler({"action": "replay", "from": "2026-11-30", "to": "2026-11-01"}, context())

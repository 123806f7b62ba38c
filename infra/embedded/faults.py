"""Faults on demand: the embedded AWS throttles or fails a chosen share of the functions' calls.

``FAULTS="dynamodb=0.05 kinesis=0.05:error sqs=0.02:lost crash=0.01"`` (``make local``) or
``stack.faults.set(...)`` (tests). Per AWS service, a share of the requests that functions make
(recognised by the ``lambda-<LogicalId>`` app id their containers send in the User-Agent; the
emulator's own pollers and the tests' clients are never faulted) is answered with:

- ``throttle`` (the default): what the service answers when over its limits, nothing applied
  (DynamoDB and Kinesis ``ProvisionedThroughputExceededException``, S3 ``SlowDown``, others
  ``ThrottlingException``);
- ``error``: a 500 ``InternalFailure``, nothing applied;
- ``lost``: the request is applied, then its answer is lost (a 500 comes back instead): the
  case where a client cannot tell whether its write landed.

``crash=<share>`` is not a service: after that share of a function's AWS calls its container
process dies at once (``embedded/container.py``), as a killed container mid-batch would.
"""

from __future__ import annotations

import json
import random
import re
import threading
from collections import Counter
from dataclasses import dataclass

KINDS = ("throttle", "error", "lost")
_APP_ID = re.compile(r"app/lambda-(\w+)")
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")
_THROUGHPUT = "ProvisionedThroughputExceededException"
_THROTTLE_CODE = {"dynamodb": _THROUGHPUT, "kinesis": _THROUGHPUT}


@dataclass(frozen=True)
class Fault:
    share: float
    kind: str = "throttle"


@dataclass(frozen=True)
class Answer:
    """An error answer to send instead of (or, for ``lost``, after applying) the request."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    apply_first: bool


class Faults:
    def __init__(self, seed: int | None = None) -> None:
        self.by_service: dict[str, Fault] = {}
        self.crash = 0.0
        self.injected: Counter[str] = Counter()  # "<service>:<kind>" -> how many
        self._random = random.Random(seed)  # noqa: S311 (fault injection, not crypto)
        self._lock = threading.Lock()

    def set(self, service: str, share: float, kind: str = "throttle") -> None:
        if kind not in KINDS:
            raise ValueError(f"fault kind {kind!r}: one of {', '.join(KINDS)}")
        if not 0 <= share <= 1:
            raise ValueError(f"fault share {share!r} for {service}: between 0 and 1")
        if service == "crash":
            self.crash = share
        else:
            self.by_service[service] = Fault(share, kind)

    def configure(self, spec: str) -> None:
        """``"dynamodb=0.05 kinesis=0.05:error crash=0.01"`` (commas or spaces between)."""
        for item in re.split(r"[,\s]+", spec.strip()):
            if not item:
                continue
            service, _, rest = item.partition("=")
            share, _, kind = rest.partition(":")
            try:
                self.set(service.lower(), float(share), kind or "throttle")
            except ValueError as exc:
                raise ValueError(f"FAULTS item {item!r}: {exc} (e.g. dynamodb=0.05 or sqs=0.02:lost)") from None

    def clear(self) -> None:
        self.by_service.clear()
        self.crash = 0.0

    def answer(self, environ: dict[str, object]) -> Answer | None:
        """The fault for this request, if one is due; None to serve it normally."""
        if not self.by_service or not _APP_ID.search(str(environ.get("HTTP_USER_AGENT", ""))):
            return None
        scope = _SCOPE.search(str(environ.get("HTTP_AUTHORIZATION", "")))
        service = scope.group(1) if scope else ""
        fault = self.by_service.get(service)
        with self._lock:
            if fault is None or self._random.random() >= fault.share:
                return None
            self.injected[f"{service}:{fault.kind}"] += 1
        return _error(service, fault.kind)


def _error(service: str, kind: str) -> Answer:
    if service == "s3":
        code, status = ("SlowDown", 503) if kind == "throttle" else ("InternalError", 500)
        body = f"<Error><Code>{code}</Code><Message>injected by the embedded stack</Message></Error>"
        return Answer(status, [("Content-Type", "application/xml")], body.encode(), kind == "lost")
    if kind == "throttle":
        status, code = 400, _THROTTLE_CODE.get(service, "ThrottlingException")
    else:
        status, code = 500, "InternalFailure"
    payload = json.dumps({"__type": code, "message": f"{code} (injected by the embedded stack)"}).encode()
    return Answer(status, [("Content-Type", "application/x-amz-json-1.0")], payload, kind == "lost")

"""Start and stop the whole embedded stack: local AWS, the stack, the handlers' wiring."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import socket
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, TextIO
from urllib.parse import urlsplit
from urllib.request import Request, urlopen

import boto3

from audience.adapters.sources import DynamoSources
from audience.services.sources import issue_key, set_origins
from embedded.api_front import LOCAL_API_KEY, ApiFront, routes_from_stack
from embedded.deploy import STACK_NAME, DeployedStack, attach, deploy
from embedded.firehose import FirehoseDelivery, deliveries_from_template
from embedded.kinesis_poller import KinesisPoller, mappings_from_stack
from embedded.moto_server import MotoServer
from embedded.runtime import LambdaRuntime
from embedded.s3_notifier import S3Notifier, notifications_from_stack
from embedded.scheduler import Scheduler, schedules_from_stack
from embedded.sqs_poller import SqsPoller, sqs_mappings_from_stack

REGION = "us-east-1"


class PortInUse(RuntimeError):
    pass


class EventSource(Protocol):
    """Something that turns outside events into invocations (HTTP, Kinesis, SQS, S3, schedules)."""

    def start(self) -> None: ...

    def halt(self) -> None: ...

    def stop(self) -> None: ...


def local_aws_environment(endpoint: str) -> dict[str, str]:
    """What boto3 needs to talk to the local AWS; any credentials do."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
    }


def configure_moto(endpoint: str) -> None:
    """Our runtime invokes the functions; moto must not try to run them in Docker itself."""
    request = Request(
        f"{endpoint}/moto-api/config",
        data=json.dumps({"lambda": {"use_docker": False}}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urlopen(request, timeout=5):
        pass


@contextlib.contextmanager
def quiet_moto() -> Iterator[list[str]]:
    """moto prints and warns once per resource type its CloudFormation does not create
    (here ``AWS::ApiGateway::Stage`` and ``AWS::S3::BucketPolicy``); collect them instead."""
    unsupported: list[str] = []
    moto_logger = logging.getLogger("moto")
    level = moto_logger.level
    moto_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("always")
            yield unsupported
    finally:
        moto_logger.setLevel(level)
    unsupported.extend(m.group(1) for w in caught if (m := re.search(r"parse (\S+) but", str(w.message))))


def detach_moto_lambda_triggers() -> None:
    """moto runs Lambda functions itself, through Docker, on every Kinesis put, SQS send and S3
    notification, whatever its configuration says. Our runtime delivers those events; moto's
    own dispatch goes (the mappings and notification configurations stay, and are read)."""
    from moto.kinesis.models import kinesis_backends
    from moto.s3 import notifications
    from moto.sqs.models import sqs_backends

    for account in kinesis_backends.values():
        for backend in account.values():
            for stream in backend.streams.values():
                stream.lambda_event_source_mappings.clear()
    for sqs_account in sqs_backends.values():
        for sqs_backend in sqs_account.values():
            for queue in sqs_backend.queues.values():
                queue.lambda_event_source_mappings.clear()
    notifications._invoke_awslambda = lambda *_args, **_kwargs: None  # type: ignore[assignment]


def is_up(endpoint: str) -> bool:
    """Whether something listens at the endpoint (moto, LocalStack, ...)."""
    url = urlsplit(endpoint)
    try:
        with socket.create_connection((url.hostname or "127.0.0.1", url.port or 80), timeout=1):
            return True
    except OSError:
        return False


LOCAL_WEBHOOK_SECRET = "local-dev-secret"  # noqa: S105 (the documented local value, CONTRACTS.md)
# The secrets moto's CloudFormation cannot create, seeded with the local values (or the
# environment's): Outputs key -> (environment variable, local value).
LOCAL_SECRETS = {
    "WebhookSecretName": ("WEBHOOK_SECRET", LOCAL_WEBHOOK_SECRET),
    "PiiPepperName": ("PII_PEPPER", "local-dev-pepper"),
}
LOCAL_WRITE_KEY = "local-dev-write-key"  # the tracking API's key of the source "local" (CONTRACTS.md)
LOCAL_ORIGINS = ("http://localhost:*", "http://127.0.0.1:*")  # pages the source "local" takes events from


def seed_secrets(session: boto3.session.Session, stack: DeployedStack) -> None:
    """Give each secret the template declares its local value (a changed value becomes the
    current version and the old one the previous, as a rotation would), and the source "local"
    its documented write key (``WRITE_KEY`` to choose another) and origins (pages on this machine,
    any port; origins added with ``make source-origins`` are kept)."""
    secrets = session.client("secretsmanager")
    for output, (variable, default) in LOCAL_SECRETS.items():
        name, value = stack.outputs[output], os.environ.get(variable) or default
        try:
            if secrets.get_secret_value(SecretId=name)["SecretString"] != value:
                secrets.put_secret_value(SecretId=name, SecretString=value)
        except secrets.exceptions.ResourceNotFoundException:
            secrets.create_secret(Name=name, SecretString=value)
    pepper = secrets.get_secret_value(SecretId=stack.outputs["PiiPepperName"])["SecretString"]
    write_key = os.environ.get("WRITE_KEY") or LOCAL_WRITE_KEY
    sources = DynamoSources(stack.outputs["ProfilesTableName"])
    issue_key("local", sources, pepper, datetime.now(UTC), write_key)
    set_origins("local", [*sources.load().sources["local"].allowed_origins, *LOCAL_ORIGINS], sources)


@dataclass
class EmbeddedStack:
    """``with EmbeddedStack() as stack:`` runs everything until the block ends.

    ``faults_spec``: faults the local AWS injects into the functions' calls (``embedded.faults``).
    ``aws_port``: where moto listens (0 picks a free port). ``endpoint``: use an AWS endpoint
    that is already running instead (a ``make local``, or LocalStack). ``redeploy``: with an
    endpoint, whether to deploy the template there or use the stack as it is. ``api_port``:
    the HTTP front (0 picks a free port; None starts none). ``poll_streams``: run the Kinesis
    and SQS event source mappings, S3 notifications and schedules (off for a one-off ``invoke`` beside a running stack).
    """

    aws_port: int = 4566
    api_port: int | None = 3000
    poll_streams: bool = True
    endpoint: str | None = None
    redeploy: bool = True
    log: TextIO = sys.stdout
    stack_name: str = STACK_NAME
    parameters: dict[str, str] = field(default_factory=dict)
    faults_spec: str = ""  # embedded.faults: "dynamodb=0.05 kinesis=0.05:error crash=0.01"
    isolated: bool = True  # False: every handler in this process, one at a time (the runtime before issue 22)
    deployed: DeployedStack | None = None
    runtime: LambdaRuntime | None = None
    api: ApiFront | None = None
    s3: S3Notifier | None = None
    scheduler: Scheduler | None = None
    not_created: list[str] = field(default_factory=list)  # resource types moto skips
    _moto: MotoServer | None = None
    _sources: list[EventSource] = field(default_factory=list)
    _saved_environment: dict[str, str | None] = field(default_factory=dict)

    def start(self) -> EmbeddedStack:
        if self.endpoint is None:
            logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's per-request access log
            try:
                self._moto = MotoServer(port=self.aws_port)
            except OSError as exc:
                raise PortInUse(
                    f"port {self.aws_port}: {exc} (is `make local` running? choose another with AWS_PORT=...)"
                ) from exc
            self._moto.start()
            self.endpoint = self._moto.url
            configure_moto(self.endpoint)
        environment = local_aws_environment(self.endpoint)
        self._saved_environment = {k: os.environ.get(k) for k in environment}
        os.environ.update(environment)
        session = boto3.session.Session(region_name=REGION)

        if self.redeploy or self._moto is not None:
            with quiet_moto() as unsupported:
                self.deployed = deploy(session, self.stack_name, self.parameters)
            self.not_created = sorted(set(unsupported))
            seed_secrets(session, self.deployed)
        else:
            self.deployed = attach(session, self.stack_name)
        if self._moto is not None:
            detach_moto_lambda_triggers()
        self.runtime = LambdaRuntime.from_stack(session, self.deployed, self.log, self.isolated)
        if self.faults_spec:
            self.inject(self.faults_spec)
        if self.api_port is not None:
            routes, stages = routes_from_stack(session, self.deployed)
            stage = next(iter(stages.values()), self.parameters.get("Stage", "dev"))
            try:
                api_key = os.environ.get("API_KEY") or LOCAL_API_KEY
                self.api = ApiFront(self.runtime, routes, stage, port=self.api_port, api_key=api_key)
            except OSError as exc:
                raise PortInUse(f"port {self.api_port} for the API: {exc}; choose another with API_PORT=...") from exc
            self._sources.append(self.api)
        if self.poll_streams:
            self._sources.append(KinesisPoller(session, self.runtime, mappings_from_stack(session, self.deployed)))
            self._sources.append(SqsPoller(session, self.runtime, sqs_mappings_from_stack(session, self.deployed)))
            self._sources.append(FirehoseDelivery(session, deliveries_from_template(session, self.deployed)))
            self.s3 = S3Notifier(session, self.runtime, notifications_from_stack(session, self.deployed))
            self._sources.append(self.s3)
            account = session.client("sts").get_caller_identity()["Account"]
            schedules = schedules_from_stack(session, datetime.now(UTC))
            self.scheduler = Scheduler(self.runtime, schedules, REGION, account)
            self._sources.append(self.scheduler)
        for source in self._sources:
            source.start()
        return self

    def stop(self) -> None:
        """Within seconds, whatever is running: no new deliveries, then every container stopped
        (a running retrain's too), then the sources' threads and the local AWS."""
        for source in self._sources:
            source.halt()
        if self.runtime is not None:
            self.runtime.stop()
        for source in reversed(self._sources):
            source.stop()
        self._sources.clear()
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
        for name, value in self._saved_environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    def __enter__(self) -> EmbeddedStack:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def inject(self, spec: str) -> None:
        """Faults from now on (``embedded.faults``); an empty spec clears them."""
        assert self._moto is not None and self.runtime is not None, "faults need the stack's own moto"
        self._moto.faults.clear()
        self._moto.faults.configure(spec)
        self.runtime.crash = self._moto.faults.crash

    @property
    def moto(self) -> MotoServer | None:
        """The local AWS this stack started (None when it uses another endpoint)."""
        return self._moto

    @property
    def outputs(self) -> dict[str, str]:
        assert self.deployed is not None, "start() first"
        return self.deployed.outputs


def log_file(path: Path) -> TextIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("a", buffering=1, encoding="utf-8")

"""The deployed architecture on the local AWS: template resources, handlers wired as Lambda does."""

from __future__ import annotations

import importlib
import json
import os
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
import requests

from avatar_dev.local.aws import REGION
from avatar_dev.local.content_credentials import development_identity
from avatar_dev.local.event_sources import LambdaContextStub, SqsEventSource
from avatar_dev.local.template import LocalStack, provision

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_sqs.client import SQSClient

FUNCTIONS = (
    "UploadApiFunction",
    "PhotoCheckFunction",
    "ModelsApiFunction",
    "OrchestratorFunction",
    "NotifierFunction",
    "TrainingSweeperFunction",
    "GenerateApiFunction",
    "StarterPackFunction",
)
# API Gateway's routes, as the template declares them: path prefix -> the handler's module.
_API_ROUTES = (
    ("/v1/photos", "services.upload.api"),
    ("/v1/models", "services.orchestrator.api"),
    ("/v1/me", "services.orchestrator.api"),
    ("/v1/avatars", "services.generate.api"),
)


def api_module(path: str) -> str | None:
    """The module of the API handler that owns `path`, as API Gateway routes it; None for no route."""
    return next((m for prefix, m in _API_ROUTES if path == prefix or path.startswith(prefix + "/")), None)


def http_api_event(method: str, path: str, *, user: str | None, body: Any = None) -> dict[str, Any]:
    """An API Gateway HTTP API (v2) event as the JWT authorizer passes it on; `user=None` carries no claims."""
    authorizer = {"jwt": {"claims": {"sub": user, "token_use": "access"}, "scopes": []}} if user is not None else {}
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "authorizer": authorizer,
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1"},
            "requestId": f"local-{uuid.uuid4().hex}",
            "stage": "$default",
        },
        "body": json.dumps(body) if body is not None else None,
        "isBase64Encoded": False,
    }


@dataclass
class IntakeStack:
    """The provisioned resources plus the handlers wired to them, as Lambda would run them."""

    stack: LocalStack
    s3: Any
    sqs: Any
    dynamodb: Any
    sns: Any
    events: Any
    secretsmanager: Any

    @property
    def bucket(self) -> str:
        """The photo bucket's name."""
        return self.stack.physical["PhotoBucket"]

    def call_api(self, event: dict[str, Any]) -> tuple[int, Any]:
        """Invoke the API handler that owns the event's route; returns (status, JSON body or None)."""
        path = event["rawPath"]
        module = api_module(path)
        if module is None:
            return 404, {"message": "Not Found"}  # API Gateway's own answer
        api = importlib.import_module(module)
        response = api.handler(event, LambdaContextStub(module))
        body = response.get("body")
        return int(response["statusCode"]), json.loads(body) if body else None

    def event_source(self, function_id: str, handler: Any) -> SqsEventSource:
        """A function's SQS event source as the template configures it."""
        source = self.stack.sqs_event_source(function_id)
        return SqsEventSource(
            self.sqs,
            source["QueueUrl"],
            self.stack.arns[source["QueueLogicalId"]],
            handler,
            batch_size=source["BatchSize"],
            function_name=function_id,
        )

    def upload(self, slot: dict[str, Any], data: bytes, content_type: str = "image/jpeg") -> None:
        """POST the file to S3 through its presigned form, as a browser does."""
        form = {**slot["fields"], "Content-Type": content_type}
        response = requests.post(slot["url"], data=form, files={"file": ("photo", data)}, timeout=60)
        if response.status_code not in (200, 201, 204):
            raise RuntimeError(f"upload refused by S3: {response.status_code} {response.text[:200]}")

    @property
    def photo_checks(self) -> SqsEventSource:
        """The photo-check function's event source."""
        from services.upload import photo_check

        return self.event_source("PhotoCheckFunction", photo_check.handler)

    def run_photo_checks(self) -> int:
        """Deliver everything queued to the photo-check handler, as the SQS event source does."""
        return self.photo_checks.drain()


def start_intake_stack(stack_name: str | None = None) -> IntakeStack:
    """Provision from template.yaml on the local AWS and set the functions' environment as the template does."""

    s3: S3Client = boto3.client("s3", region_name=REGION)
    sqs: SQSClient = boto3.client("sqs", region_name=REGION)
    dynamodb: DynamoDBClient = boto3.client("dynamodb", region_name=REGION)
    sns = boto3.client("sns", region_name=REGION)
    events = boto3.client("events", region_name=REGION)
    secrets = boto3.client("secretsmanager", region_name=REGION)
    stack = provision(
        stack_name=stack_name or f"t{uuid.uuid4().hex[:10]}",
        region=REGION,
        dynamodb=dynamodb,
        sqs=sqs,
        s3=s3,
        sns=sns,
        events=events,
        secrets=secrets,
    )
    # The deployment's step after `sam deploy` (docs/deploy.md), with the development identity made on first run.
    identity, _ = development_identity()
    secrets.put_secret_value(SecretId=stack.physical["ContentCredentialsSecret"], SecretString=identity.to_json())
    for function in FUNCTIONS:
        os.environ.update(stack.function_environment(function))
    reset_services()
    return IntakeStack(stack=stack, s3=s3, sqs=sqs, dynamodb=dynamodb, sns=sns, events=events, secretsmanager=secrets)


def reset_services() -> None:
    """Every service forgets its cached settings and clients (after the environment changed)."""
    from services.generate import dependencies as generate
    from services.notifier import dependencies as notifier
    from services.orchestrator import dependencies as orchestrator
    from services.starter_pack import dependencies as starter_pack
    from services.upload import dependencies as upload

    for service in (upload, generate, notifier, orchestrator, starter_pack):
        service.reset()

"""The intake part of the deployed architecture on the local AWS: template resources, handlers wired as Lambda does."""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
import requests

from avatar.local.aws import REGION
from avatar.local.event_sources import LambdaContextStub, SqsEventSource
from avatar.local.template import LocalStack, provision

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_sqs.client import SQSClient

FUNCTIONS = ("UploadApiFunction", "PhotoCheckFunction")


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
    photo_checks: SqsEventSource

    @property
    def bucket(self) -> str:
        """The photo bucket's name."""
        return self.stack.physical["PhotoBucket"]

    def call_api(self, event: dict[str, Any]) -> tuple[int, Any]:
        """Invoke the upload API handler with an HTTP API (v2) event; returns (status, JSON body or None)."""
        from services.upload import api

        context: Any = LambdaContextStub("UploadApiFunction")
        response = api.handler(event, context)
        body = response.get("body")
        return int(response["statusCode"]), json.loads(body) if body else None

    def upload(self, slot: dict[str, Any], data: bytes, content_type: str = "image/jpeg") -> None:
        """POST the file to S3 through its presigned form, as a browser does."""
        form = {**slot["fields"], "Content-Type": content_type}
        response = requests.post(slot["url"], data=form, files={"file": ("photo", data)}, timeout=60)
        if response.status_code not in (200, 201, 204):
            raise RuntimeError(f"upload refused by S3: {response.status_code} {response.text[:200]}")

    def run_photo_checks(self) -> int:
        """Deliver everything queued to the photo-check handler, as the SQS event source does."""
        return self.photo_checks.drain()


def start_intake_stack(stack_name: str | None = None) -> IntakeStack:
    """Provision from template.yaml on the local AWS and set the functions' environment as the template does."""
    from services.upload import dependencies, photo_check

    s3: S3Client = boto3.client("s3", region_name=REGION)
    sqs: SQSClient = boto3.client("sqs", region_name=REGION)
    dynamodb: DynamoDBClient = boto3.client("dynamodb", region_name=REGION)
    stack = provision(
        stack_name=stack_name or f"t{uuid.uuid4().hex[:10]}", region=REGION, dynamodb=dynamodb, sqs=sqs, s3=s3
    )
    for function in FUNCTIONS:
        os.environ.update(stack.function_environment(function))
    dependencies.reset()
    source = stack.sqs_event_source("PhotoCheckFunction")
    checks = SqsEventSource(
        sqs,
        source["QueueUrl"],
        stack.arns[source["QueueLogicalId"]],
        photo_check.handler,
        batch_size=source["BatchSize"],
        function_name="PhotoCheckFunction",
    )
    return IntakeStack(stack=stack, s3=s3, sqs=sqs, dynamodb=dynamodb, photo_checks=checks)

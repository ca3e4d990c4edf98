"""The orchestrator's adapters, built on first use (never at import) and reused across invocations."""

from __future__ import annotations

from functools import cache

import boto3
from botocore.config import Config

from avatar.aws.dynamodb.jobs import JobTable
from avatar.aws.dynamodb.users import UserTable
from avatar.aws.eventbridge import EventBus
from avatar.aws.multi_model_endpoint import MultiModelEndpoint
from avatar.aws.s3.orchestration import OrchestrationBucket
from avatar.aws.sqs import OrchestratorQueue
from avatar.aws.training_endpoint import AsyncTrainingEndpoint
from services.orchestrator.settings import get_settings

_RETRIES = Config(retries={"mode": "standard", "max_attempts": 4})
# One attempt: throttling goes back to SQS (visibility timeout) instead of holding the function.
_ENDPOINT = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=3, read_timeout=10)


@cache
def job_table() -> JobTable:
    """Jobs and the user's model in the table."""
    return JobTable(boto3.client("dynamodb", config=_RETRIES), get_settings().table_name)


@cache
def user_table() -> UserTable:
    """A user's records, as erasure removes them."""
    return UserTable(boto3.client("dynamodb", config=_RETRIES), get_settings().table_name)


@cache
def files() -> OrchestrationBucket:
    """Manifests, results and user data in the bucket."""
    return OrchestrationBucket(boto3.client("s3", config=_RETRIES), get_settings().bucket_name)


@cache
def queue() -> OrchestratorQueue:
    """The orchestrator's own queue."""
    return OrchestratorQueue(boto3.client("sqs", config=_RETRIES), get_settings().queue_url)


@cache
def training_endpoint() -> AsyncTrainingEndpoint:
    """The asynchronous training endpoint."""
    return AsyncTrainingEndpoint(
        boto3.client("sagemaker-runtime", config=_ENDPOINT), get_settings().training_endpoint_name
    )


@cache
def avatar_endpoint() -> MultiModelEndpoint | None:
    """The multi-model endpoint serving users' models (erasure makes it forget them), if the deployment names one."""
    name = get_settings().avatar_endpoint_name
    if not name:
        return None
    return MultiModelEndpoint(boto3.client("sagemaker-runtime", config=_ENDPOINT), name)


@cache
def events() -> EventBus:
    """The event bus."""
    return EventBus(boto3.client("events", config=_RETRIES), get_settings().event_bus_name)


def reset() -> None:
    """Forget cached settings and clients (tests and the local stack change the environment)."""
    for cached in (get_settings, job_table, user_table, files, queue, training_endpoint, avatar_endpoint, events):
        cached.cache_clear()

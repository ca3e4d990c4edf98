"""The notifier's adapters, built on first use (never at import) and reused across invocations."""

from __future__ import annotations

from functools import cache

import boto3
from botocore.config import Config

from avatar.aws.dynamodb.jobs import JobTable
from avatar.aws.eventbridge import EventBus
from avatar.aws.s3.orchestration import OrchestrationBucket
from services.notifier.settings import get_settings

_RETRIES = Config(retries={"mode": "standard", "max_attempts": 4})


@cache
def job_table() -> JobTable:
    """Jobs and the user's model in the table."""
    return JobTable(boto3.client("dynamodb", config=_RETRIES), get_settings().table_name)


@cache
def files() -> OrchestrationBucket:
    """Asynchronous results and model artifacts in the bucket."""
    return OrchestrationBucket(boto3.client("s3", config=_RETRIES), get_settings().bucket_name)


@cache
def events() -> EventBus:
    """The event bus."""
    return EventBus(boto3.client("events", config=_RETRIES), get_settings().event_bus_name)


def reset() -> None:
    """Forget cached settings and clients (tests and the local stack change the environment)."""
    for cached in (get_settings, job_table, files, events):
        cached.cache_clear()

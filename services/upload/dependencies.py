"""The upload service's adapters, built on first use (never at import) and reused across invocations."""

from __future__ import annotations

from functools import cache

import boto3
from botocore.config import Config

from avatar.aws.dynamodb.jobs import JobTable
from avatar.aws.dynamodb.photos import PhotoTable
from avatar.aws.s3.photos import PhotoBucket
from avatar.aws.sqs import OrchestratorQueue
from services.upload.settings import get_settings

_RETRIES = Config(retries={"mode": "standard", "max_attempts": 4}, signature_version="s3v4")


@cache
def photo_table() -> PhotoTable:
    """Photos and verdicts in the table."""
    return PhotoTable(boto3.client("dynamodb", config=_RETRIES), get_settings().table_name)


@cache
def job_table() -> JobTable:
    """Jobs in the table (the automatic first training)."""
    return JobTable(boto3.client("dynamodb", config=_RETRIES), get_settings().table_name)


@cache
def photo_bucket() -> PhotoBucket:
    """The photo files."""
    return PhotoBucket(boto3.client("s3", config=_RETRIES), get_settings().bucket_name)


@cache
def orchestrator_queue() -> OrchestratorQueue:
    """Where the automatic first training is queued."""
    return OrchestratorQueue(boto3.client("sqs", config=_RETRIES), get_settings().queue_url or "")


def reset() -> None:
    """Forget cached settings and clients (tests and the local stack change the environment)."""
    for cached in (get_settings, photo_table, job_table, photo_bucket, orchestrator_queue):
        cached.cache_clear()

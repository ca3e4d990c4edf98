"""The generate service's adapters, built on first use (never at import) and reused across invocations."""

from __future__ import annotations

from functools import cache

import boto3
from botocore.config import Config

from avatar.aws import secrets
from avatar.aws.dynamodb.avatars import AvatarHistoryTable
from avatar.aws.dynamodb.in_flight import InFlightTable
from avatar.aws.dynamodb.registry import ModelRegistryTable
from avatar.aws.multi_model_endpoint import MultiModelEndpoint
from avatar.aws.s3.avatars import AvatarImages
from avatar.provenance.content_credentials import ContentCredentials
from services.generate.settings import get_settings

_RETRIES = Config(retries={"mode": "standard", "max_attempts": 3}, signature_version="s3v4")
# One attempt per call: the domain retries busy answers itself, within the API's time budget.
_ENDPOINT = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=2, read_timeout=25)


@cache
def model_registry() -> ModelRegistryTable:
    """Users' models and versions in the table."""
    return ModelRegistryTable(boto3.client("dynamodb", config=_RETRIES), get_settings().table_name)


@cache
def requests_in_flight() -> InFlightTable:
    """Each user's generate requests in flight."""
    return InFlightTable(boto3.client("dynamodb", config=_RETRIES), get_settings().table_name)


@cache
def avatar_history() -> AvatarHistoryTable:
    """The user's generated avatars in the table."""
    return AvatarHistoryTable(boto3.client("dynamodb", config=_RETRIES), get_settings().table_name)


@cache
def avatar_images() -> AvatarImages:
    """Where generated images go."""
    return AvatarImages(boto3.client("s3", config=_RETRIES), get_settings().bucket_name)


@cache
def avatar_endpoint() -> MultiModelEndpoint:
    """The multi-model endpoint behind sagemaker-runtime."""
    settings = get_settings()
    return MultiModelEndpoint(
        boto3.client("sagemaker-runtime", config=_ENDPOINT),
        settings.endpoint_name,
        setup_target_model=settings.setup_target_model,
    )


@cache
def content_credentials() -> ContentCredentials:
    """The C2PA signer, with the deployment's identity from Secrets Manager (read once per instance: a rotated
    identity applies to new instances)."""
    client = boto3.client("secretsmanager", config=_RETRIES)
    return secrets.content_credentials(client, get_settings().content_credentials_secret_id)


def reset() -> None:
    """Forget cached settings and clients (tests and the local stack change the environment)."""
    for cached in (
        get_settings,
        content_credentials,
        model_registry,
        requests_in_flight,
        avatar_history,
        avatar_images,
        avatar_endpoint,
    ):
        cached.cache_clear()

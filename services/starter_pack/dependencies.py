"""The starter-pack function's adapters, built on first use (never at import) and reused across invocations."""

from __future__ import annotations

from functools import cache

import boto3
from botocore.config import Config

from avatar.aws import secrets
from avatar.aws.dynamodb.avatars import AvatarHistoryTable
from avatar.aws.dynamodb.packs import StarterPackTable
from avatar.aws.dynamodb.registry import ModelRegistryTable
from avatar.aws.eventbridge import EventBus
from avatar.aws.multi_model_endpoint import MultiModelEndpoint
from avatar.aws.s3.avatars import AvatarImages
from avatar.provenance.content_credentials import ContentCredentials
from services.starter_pack.settings import get_settings

_RETRIES = Config(retries={"mode": "standard", "max_attempts": 4}, signature_version="s3v4")
# One attempt per call (the domain retries busy answers itself); a pack request may wait behind other users' batches.
_ENDPOINT = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=2, read_timeout=60)


@cache
def model_registry() -> ModelRegistryTable:
    """Users' models and versions in the table."""
    return ModelRegistryTable(boto3.client("dynamodb", config=_RETRIES), get_settings().table_name)


@cache
def starter_packs() -> StarterPackTable:
    """Each model version's starter pack in the table."""
    return StarterPackTable(boto3.client("dynamodb", config=_RETRIES), get_settings().table_name)


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
    client = boto3.client("sagemaker-runtime", config=_ENDPOINT)
    return MultiModelEndpoint(client, settings.endpoint_name, setup_target_model=settings.setup_target_model)


@cache
def events() -> EventBus:
    """The event bus."""
    return EventBus(boto3.client("events", config=_RETRIES), get_settings().event_bus_name)


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
        starter_packs,
        avatar_history,
        avatar_images,
        avatar_endpoint,
        events,
    ):
        cached.cache_clear()

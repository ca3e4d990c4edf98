"""The S3 key layout, in one place: every prefix is per user, so one user's data is one listing away."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from avatar.errors import InvalidKey

# Cognito `sub` claims are UUIDs; development users are short names. Never a slash: it would escape the prefix.
_USER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,127}$")
_PHOTO_ID = re.compile(r"^[0-9a-f]{32}$")

UPLOADS = "uploads"
PHOTOS = "photos"


def is_valid_user_id(user_id: str) -> bool:
    """True when `user_id` is safe to use inside a key prefix."""
    return bool(_USER_ID.fullmatch(user_id)) and ".." not in user_id


def new_photo_id() -> str:
    """A fresh, unguessable photo id."""
    return uuid.uuid4().hex


def is_valid_photo_id(photo_id: str) -> bool:
    """True when `photo_id` has the shape `new_photo_id` makes."""
    return bool(_PHOTO_ID.fullmatch(photo_id))


def upload_key(user_id: str, photo_id: str) -> str:
    """Where the browser uploads the original photo."""
    return f"{UPLOADS}/{user_id}/{photo_id}"


def normalized_photo_key(user_id: str, photo_id: str) -> str:
    """Where the checked, upright, metadata-free copy used for training lives."""
    return f"{PHOTOS}/{user_id}/{photo_id}.jpg"


@dataclass(frozen=True)
class UploadKey:
    """An `uploads/<user>/<photo id>` key taken apart."""

    user_id: str
    photo_id: str


def parse_upload_key(key: str) -> UploadKey:
    """Split an (already URL-decoded) upload key; raises InvalidKey for anything else."""
    parts = key.split("/")
    if len(parts) != 3 or parts[0] != UPLOADS:
        raise InvalidKey(f"not an upload key: {key!r}")
    _, user_id, photo_id = parts
    if not is_valid_user_id(user_id) or not is_valid_photo_id(photo_id):
        raise InvalidKey(f"malformed user or photo id in {key!r}")
    return UploadKey(user_id=user_id, photo_id=photo_id)


MODELS = "models"
JOBS = "jobs"
CLASS_IMAGES = "class-images"


def model_artifact_key(user_id: str, version: str) -> str:
    """Where a trained per-user model lives; a version is never overwritten."""
    return f"{MODELS}/{user_id}/{version}.tar.gz"


def training_progress_key(user_id: str, job_id: str) -> str:
    """Where the trainer publishes a job's progress."""
    return f"{JOBS}/{user_id}/{job_id}/progress.json"


OUTPUTS = "outputs"


def target_model(artifact_key: str) -> str:
    """The multi-model endpoint's TargetModel for an artifact: its key below the endpoint's `models/` prefix."""
    if not artifact_key.startswith(f"{MODELS}/"):
        raise InvalidKey(f"not a model artifact key: {artifact_key!r}")
    return artifact_key.removeprefix(f"{MODELS}/")


def generated_image_key(user_id: str, request_id: str, index: int, seed: int) -> str:
    """Where a generated avatar is kept (a lifecycle rule expires them)."""
    return f"{OUTPUTS}/{user_id}/{request_id}/{index}-{seed}.png"


MANIFESTS = "manifests"
ASYNC_OUTPUTS = "async-outputs"
ASYNC_FAILURES = "async-failures"
# Every prefix that holds a user's data directly under `<prefix>/<user id>/`: erasure empties each of them.
USER_PREFIXES = (UPLOADS, PHOTOS, MANIFESTS, JOBS, MODELS, OUTPUTS, ASYNC_OUTPUTS, ASYNC_FAILURES)


def training_manifest_key(user_id: str, job_id: str) -> str:
    """The asynchronous training invocation's input."""
    return f"{MANIFESTS}/{user_id}/{job_id}.json"


@dataclass(frozen=True)
class JobKey:
    """A training job named by a manifest key."""

    user_id: str
    job_id: str


def parse_manifest_key(key: str) -> JobKey:
    """Split a `manifests/<user>/<job>.json` key; raises InvalidKey for anything else."""
    parts = key.split("/")
    if len(parts) != 3 or parts[0] != MANIFESTS or not parts[2].endswith(".json"):
        raise InvalidKey(f"not a training manifest key: {key!r}")
    user_id, job_id = parts[1], parts[2].removesuffix(".json")
    if not is_valid_user_id(user_id) or not job_id:
        raise InvalidKey(f"malformed user or job id in {key!r}")
    return JobKey(user_id=user_id, job_id=job_id)


def user_prefixes(user_id: str) -> list[str]:
    """Every key prefix holding the user's objects."""
    if not is_valid_user_id(user_id):
        raise InvalidKey(f"not a valid user id: {user_id!r}")
    return [f"{prefix}/{user_id}/" for prefix in USER_PREFIXES]


def s3_uri(bucket: str, key: str) -> str:
    """`s3://bucket/key`."""
    return f"s3://{bucket}/{key}"


def split_s3_uri(uri: str) -> tuple[str, str]:
    """(bucket, key) of an `s3://bucket/key` URI; raises InvalidKey otherwise."""
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise InvalidKey(f"not an S3 URI: {uri!r}")
    bucket, key = uri[5:].split("/", 1)
    if not bucket or not key:
        raise InvalidKey(f"not an S3 URI: {uri!r}")
    return bucket, key

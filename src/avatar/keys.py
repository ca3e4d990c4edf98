"""The S3 key layout, in one place: every prefix is per user so one user's data is one listing away."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

# Cognito `sub` claims are UUIDs; development users are short names. Never a slash: it would escape the prefix.
_USER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,127}$")
_PHOTO_ID = re.compile(r"^[0-9a-f]{32}$")

UPLOADS = "uploads"
PHOTOS = "photos"


class InvalidKey(ValueError):
    """An object key or identifier that does not follow the layout."""


def is_valid_user_id(user_id: str) -> bool:
    """True when `user_id` is safe to use inside a key prefix."""
    return bool(_USER_ID.match(user_id)) and ".." not in user_id


def new_photo_id() -> str:
    """A fresh, unguessable photo id."""
    return uuid.uuid4().hex


def is_valid_photo_id(photo_id: str) -> bool:
    """True when `photo_id` has the shape `new_photo_id` makes."""
    return bool(_PHOTO_ID.match(photo_id))


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

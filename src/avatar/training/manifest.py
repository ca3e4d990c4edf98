"""The asynchronous training invocation's input: written by the orchestrator, read by the GPU job (light imports)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from avatar.keys import PHOTOS, is_valid_user_id, model_artifact_key
from avatar.training.options import TrainingOptions

JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{7,63}$")
_PHOTO_FILE = re.compile(r"^[0-9a-f]{32}\.jpg$")


class TrainingManifest(BaseModel):
    """The asynchronous invocation's input, written by the orchestrator: never a user-supplied archive."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    manifest_version: Literal[1] = 1
    user_id: str
    job_id: str
    photo_keys: list[str] = Field(min_length=1, max_length=50)
    options: TrainingOptions = TrainingOptions()
    backgrounds_per_photo: int = Field(1, ge=0, le=4, description="generated-background copies per photo")
    min_photos: int = Field(6, ge=1, le=50, description="fewest usable photos after preparation")

    @field_validator("user_id")
    @classmethod
    def _user(cls, value: str) -> str:
        if not is_valid_user_id(value):
            raise ValueError("not a valid user id")
        return value

    @field_validator("job_id")
    @classmethod
    def _job(cls, value: str) -> str:
        if not JOB_ID.match(value):
            raise ValueError("job_id must be 8-64 letters, digits, '-' or '_'")
        return value

    @model_validator(mode="after")
    def _photos_of_this_user(self) -> TrainingManifest:
        prefix = f"{PHOTOS}/{self.user_id}/"
        for key in self.photo_keys:
            if not key.startswith(prefix) or not _PHOTO_FILE.match(key.removeprefix(prefix)):
                raise ValueError(f"photo key {key!r} is not a normalized photo of user {self.user_id}")
        if len(set(self.photo_keys)) != len(self.photo_keys):
            raise ValueError("photo keys repeat")
        return self

    @property
    def model_key(self) -> str:
        """Where this job's model goes."""
        return model_artifact_key(self.user_id, self.job_id)

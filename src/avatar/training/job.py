"""One fine-tuning job, as the asynchronous GPU endpoint runs it: photos in S3 -> adapter archive in S3."""

from __future__ import annotations

import json
import logging
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from avatar.keys import PHOTOS, is_valid_user_id, model_artifact_key
from avatar.training.artifact import model_name
from avatar.training.class_images import ClassImageStore
from avatar.training.fine_tune import FineTuneFailed, fine_tune
from avatar.training.options import TrainingOptions
from avatar.training.progress import ProgressCallback, TrainingProgress, ignore_progress

logger = logging.getLogger(__name__)

_JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{7,63}$")
_PHOTO_FILE = re.compile(r"^[0-9a-f]{32}\.jpg$")


class TrainingJobFailed(Exception):
    """The job cannot produce a model; the message is the failure reason SageMaker reports."""


class StorageError(Exception):
    """S3 failed after the client's retries."""


class TrainingStorage(Protocol):
    """The job's view of the bucket."""

    def read(self, key: str) -> bytes:
        """An object's bytes; raises KeyError when missing, StorageError on failure."""
        ...

    def write_new(self, key: str, data: bytes, content_type: str) -> None:
        """Create `key`; raises FileExistsError if it exists (artifacts are never overwritten)."""
        ...

    def write(self, key: str, data: bytes, content_type: str) -> None:
        """Create or replace `key`."""
        ...


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
        if not _JOB_ID.match(value):
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


def run_training_job(
    manifest: TrainingManifest,
    storage: TrainingStorage,
    *,
    base_model: str,
    cache_dir: Path,
    class_store: ClassImageStore,
    work_root: Path | None = None,
    device: str | None = None,
    progress: ProgressCallback = ignore_progress,
    s3_client: Any = None,
) -> dict[str, Any]:
    """Download, prepare, train, package and upload; returns `{status, model_key, metrics}` or raises."""
    work = Path(tempfile.mkdtemp(prefix=f"job-{manifest.job_id}-", dir=work_root))  # one folder per job
    try:
        photos = []
        for key in manifest.photo_keys:
            try:
                photos.append((key, storage.read(key)))
            except KeyError as exc:
                raise TrainingJobFailed(f"photo {key} is missing from the bucket") from exc
            except StorageError as exc:
                raise TrainingJobFailed(f"could not read photo {key}: {exc}") from exc
        try:
            result = fine_tune(
                photos,
                work,
                base_model=base_model,
                options=manifest.options,
                backgrounds_per_photo=manifest.backgrounds_per_photo,
                min_photos=manifest.min_photos,
                cache_dir=cache_dir,
                class_store=class_store,
                name=model_name(manifest.user_id, manifest.job_id),
                user_id=manifest.user_id,
                job_id=manifest.job_id,
                device=device,
                progress=progress,
                s3_client=s3_client,
            )
        except FineTuneFailed as exc:
            raise TrainingJobFailed(str(exc)) from exc
        try:
            storage.write_new(manifest.model_key, result.archive.read_bytes(), "application/gzip")
        except FileExistsError as exc:
            raise TrainingJobFailed(f"{manifest.model_key} already exists; a model version is never replaced") from exc
        except StorageError as exc:
            raise TrainingJobFailed(f"could not upload the model: {exc}") from exc
        outcome = {
            "status": "succeeded",
            "user_id": manifest.user_id,
            "job_id": manifest.job_id,
            "model_key": manifest.model_key,
            "adapter_bytes": result.adapter_bytes,
            "archive_bytes": result.archive.stat().st_size,
            "photos_used": result.photos_used,
            "photos_rejected": [photo.model_dump() for photo in result.rejected],
            "metrics": result.metrics.as_dict(),
        }
        progress(TrainingProgress(phase="done", step=result.metrics.steps, total_steps=result.metrics.steps))
        logger.info("training job %s finished: %s", manifest.job_id, json.dumps(outcome))
        return outcome
    finally:
        shutil.rmtree(work, ignore_errors=True)

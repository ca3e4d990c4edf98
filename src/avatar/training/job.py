"""One fine-tuning job, as the asynchronous GPU endpoint runs it: photos in S3 -> adapter archive in S3."""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any, Protocol

from avatar.training.artifact import model_name
from avatar.training.class_images import ClassImageStore
from avatar.training.fine_tune import FineTuneFailed, fine_tune
from avatar.training.manifest import TrainingManifest
from avatar.training.progress import ProgressCallback, TrainingProgress, ignore_progress

logger = logging.getLogger(__name__)


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
    execution_env: str | None = None,
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
                execution_env=execution_env,
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

"""One fine-tuning job, as the asynchronous GPU endpoint runs it: photos in S3 -> the user's model archive in S3."""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any, Protocol

from avatar.contracts.training import TrainingManifest, TrainingProgress, TrainingResult
from avatar.errors import FineTuneFailed, StorageUnavailable
from avatar.fine_tuning.class_images import ClassImageStore
from avatar.fine_tuning.fine_tune import fine_tune
from avatar.fine_tuning.model_archive import triton_model_name
from avatar.fine_tuning.progress import ProgressCallback, ignore_progress

logger = logging.getLogger(__name__)


class TrainingStorage(Protocol):
    """The job's view of the bucket (failures raise StorageUnavailable)."""

    def read(self, key: str) -> bytes | None:
        """An object's bytes; None when it is missing."""
        ...

    def write_new(self, key: str, data: bytes, content_type: str) -> bool:
        """Create `key`; False when it exists (a model version is never replaced)."""
        ...

    def write(self, key: str, data: bytes, content_type: str) -> None:
        """Create or replace `key`."""


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
) -> TrainingResult:
    """Download, prepare, train, package and upload; raises FineTuneFailed with the reason a user reads."""
    work = Path(tempfile.mkdtemp(prefix=f"job-{manifest.job_id}-", dir=work_root))  # one folder per job
    try:
        photos = []
        for key in manifest.photo_keys:
            try:
                data = storage.read(key)
            except StorageUnavailable as exc:
                raise FineTuneFailed(f"could not read photo {key}: {exc.message}") from exc
            if data is None:
                raise FineTuneFailed(f"photo {key} is missing from the bucket")
            photos.append((key, data))
        result = fine_tune(
            photos,
            work,
            base_model=base_model,
            plan=manifest.plan,
            cache_dir=cache_dir,
            class_store=class_store,
            name=triton_model_name(manifest.user_id, manifest.job_id),
            user_id=manifest.user_id,
            job_id=manifest.job_id,
            device=device,
            progress=progress,
            s3_client=s3_client,
            execution_env=execution_env,
        )
        try:
            created = storage.write_new(manifest.model_key, result.archive.read_bytes(), "application/gzip")
        except StorageUnavailable as exc:
            raise FineTuneFailed(f"could not upload the model: {exc.message}") from exc
        if not created:
            raise FineTuneFailed(f"{manifest.model_key} already exists; a model version is never replaced")
        outcome = TrainingResult(
            user_id=manifest.user_id,
            job_id=manifest.job_id,
            model_key=manifest.model_key,
            lora_bytes=result.lora_bytes,
            archive_bytes=result.archive.stat().st_size,
            photos_used=result.photos_used,
            photos_rejected=list(result.rejected),
            metrics=result.metrics,
        )
        progress(TrainingProgress(phase="done", step=result.metrics.steps, total_steps=result.metrics.steps))
        logger.info("training job %s finished: %s", manifest.job_id, outcome.model_dump_json())
        return outcome
    finally:
        shutil.rmtree(work, ignore_errors=True)

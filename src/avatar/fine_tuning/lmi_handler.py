"""The asynchronous training endpoint's request handler, without DJL: `gpu/training/model.py` calls it."""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path

from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from avatar.contracts.training import TrainingManifest, TrainingResult
from avatar.errors import FineTuneFailed
from avatar.fine_tuning.job import run_training_job
from avatar.fine_tuning.progress import Throttled, fan_out, log_progress
from avatar.object_keys import CLASS_IMAGES

logger = logging.getLogger(__name__)


class TrainingSettings(BaseSettings):
    """The endpoint's environment (set on the SageMaker model)."""

    model_config = SettingsConfigDict(env_prefix="AVATAR_", frozen=True)

    bucket: str
    base_model: str = "tiny"
    cache_dir: Path = Path("/tmp/avatar-cache")  # noqa: S108 (the container's scratch disk)
    work_dir: Path | None = None
    class_images_prefix: str = CLASS_IMAGES
    progress_interval_seconds: float = 10.0
    # Where the multi-model endpoint keeps the models' conda-pack environment; written into every packaged model.
    triton_execution_env: str | None = None


@cache
def get_settings() -> TrainingSettings:
    """Read once, on first use."""
    return TrainingSettings()  # filled from the environment


def handle_training_request(body: bytes | None, settings: TrainingSettings | None = None) -> TrainingResult | None:
    """Run one job from its JSON manifest; None for the container's empty warm-up call; raises FineTuneFailed with the
    reason SageMaker reports."""
    if not body:
        return None
    import boto3
    from botocore.config import Config

    from avatar.aws.s3.training import S3ClassImageStore, S3ProgressPublisher, TrainingBucket
    from avatar.object_keys import training_progress_key

    settings = settings or get_settings()
    try:
        manifest = TrainingManifest.model_validate_json(body)
    except ValidationError as exc:
        raise FineTuneFailed(f"invalid training manifest: {exc}") from exc
    client = boto3.client("s3", config=Config(retries={"mode": "standard", "max_attempts": 8}))
    bucket = TrainingBucket(client, settings.bucket)
    publisher = S3ProgressPublisher(
        bucket,
        training_progress_key(manifest.user_id, manifest.job_id),
        user_id=manifest.user_id,
        job_id=manifest.job_id,
    )
    logger.info("training job %s for user %s: %d photos", manifest.job_id, manifest.user_id, len(manifest.photo_keys))
    return run_training_job(
        manifest,
        bucket,
        base_model=settings.base_model,
        cache_dir=settings.cache_dir,
        class_store=S3ClassImageStore(client, settings.bucket, settings.class_images_prefix),
        work_root=settings.work_dir,
        progress=fan_out(
            Throttled(publisher, interval=settings.progress_interval_seconds),
            Throttled(log_progress(logger), interval=settings.progress_interval_seconds),
        ),
        s3_client=client,
        execution_env=settings.triton_execution_env,
    )

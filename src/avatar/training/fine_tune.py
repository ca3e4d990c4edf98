"""Photos -> prepared images -> LoRA adapter -> per-user model archive, on local disk (the job and the CLI share it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avatar.adapter_format import ADAPTER_WEIGHTS
from avatar.diffusion.base_model import BaseModelUnavailable, pipeline_resolution, resolve_base_model
from avatar.training.artifact import package_user_model, write_metadata
from avatar.training.class_images import ClassImageStore
from avatar.training.options import TrainingOptions
from avatar.training.prepare import PrepareOptions, RejectedPhoto, prepare_photos
from avatar.training.progress import ProgressCallback, TrainingProgress, ignore_progress
from avatar.training.trainer import (
    TrainingFailed,
    TrainingMetrics,
    default_device,
    train_lora,
    weight_dtype,
)

ARCHIVE_NAME = "model.tar.gz"


class FineTuneFailed(Exception):
    """No model could be made; the message is for the user."""


@dataclass(frozen=True)
class FineTuneResult:
    """What a fine-tune left in its folder."""

    adapter_dir: Path
    archive: Path
    prepared_dir: Path
    metrics: TrainingMetrics
    photos_used: int
    rejected: tuple[RejectedPhoto, ...]

    @property
    def adapter_bytes(self) -> int:
        """Size of the LoRA weights file."""
        return (self.adapter_dir / ADAPTER_WEIGHTS).stat().st_size


def fine_tune(
    photos: Sequence[tuple[str, bytes]],
    out_dir: Path,
    *,
    base_model: str,
    options: TrainingOptions,
    cache_dir: Path,
    class_store: ClassImageStore,
    name: str,
    backgrounds_per_photo: int = 1,
    min_photos: int = 6,
    user_id: str | None = None,
    job_id: str | None = None,
    device: str | None = None,
    progress: ProgressCallback = ignore_progress,
    s3_client: Any = None,
    execution_env: str | None = None,
) -> FineTuneResult:
    """Write `out_dir/prepared/`, `out_dir/adapter/` and `out_dir/model.tar.gz`; raises FineTuneFailed.

    `execution_env`: the multi-model endpoint's conda-pack environment, named in the packaged model's config.
    """
    import torch

    progress(TrainingProgress(phase="preparing"))
    try:
        base = resolve_base_model(base_model, cache_dir=cache_dir, s3_client=s3_client)
    except BaseModelUnavailable as exc:
        raise FineTuneFailed(str(exc)) from exc
    device = device or default_device()
    pipeline = base.load(dtype=weight_dtype(options, device))
    resolution = options.resolution or pipeline_resolution(pipeline)
    prepared = prepare_photos(
        photos,
        PrepareOptions(resolution=resolution, backgrounds_per_photo=backgrounds_per_photo, seed=options.seed),
    )
    unreadable = [photo for photo in prepared.rejected if photo.reason == "unreadable"]
    if unreadable:
        raise FineTuneFailed(f"photo {unreadable[0].source} is unreadable ({unreadable[0].detail})")
    if prepared.photo_count < min_photos:
        raise FineTuneFailed(
            f"too few usable photos: {prepared.photo_count} of {len(photos)} show a face clearly enough and "
            f"{min_photos} are needed; add photos where the face is large, sharp and well lit"
        )
    prepared_dir = out_dir / "prepared"
    prepared.write(prepared_dir)
    adapter_dir = out_dir / "adapter"
    try:
        metrics = train_lora(
            pipeline,
            [image.pixels for image in prepared.images],
            options,
            adapter_dir,
            base_sha256=base.sha256,
            class_store=class_store,
            device=device,
            progress=progress,
        )
    except torch.OutOfMemoryError as exc:
        raise FineTuneFailed(
            f"out of GPU memory at {resolution} px, batch {options.batch_size}: "
            "lower the batch size or resolution, or turn on gradient checkpointing"
        ) from exc
    except TrainingFailed as exc:
        raise FineTuneFailed(str(exc)) from exc
    progress(TrainingProgress(phase="packaging", step=metrics.steps, total_steps=metrics.steps))
    write_metadata(
        adapter_dir,
        base_model=base.spec,
        base_model_sha256=base.sha256,
        options=options,
        metrics=metrics,
        photos=prepared.photo_count,
        user_id=user_id,
        job_id=job_id,
    )
    archive = out_dir / ARCHIVE_NAME
    archive.write_bytes(package_user_model(adapter_dir, name=name, execution_env=execution_env))
    return FineTuneResult(
        adapter_dir=adapter_dir,
        archive=archive,
        prepared_dir=prepared_dir,
        metrics=metrics,
        photos_used=prepared.photo_count,
        rejected=prepared.rejected,
    )

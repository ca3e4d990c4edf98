"""Photos -> prepared images -> LoRA -> per-user model archive, on local disk (the job and the CLI share it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avatar.contracts.training import RejectedPhoto, TrainingFigures, TrainingPlan, TrainingProgress
from avatar.diffusion.base_checkpoints import resolve_base_model
from avatar.errors import BaseModelUnavailable, FineTuneFailed
from avatar.fine_tuning.class_images import ClassImageStore
from avatar.fine_tuning.model_archive import package_user_model, write_identity, write_metadata
from avatar.fine_tuning.preparation import PrepareOptions, prepare_photos
from avatar.fine_tuning.progress import ProgressCallback, ignore_progress
from avatar.fine_tuning.trainer import default_device, train_lora, weight_dtype
from avatar.lora_format import LORA_FOLDER, LORA_WEIGHTS

ARCHIVE_NAME = "model.tar.gz"


@dataclass(frozen=True)
class FineTuneResult:
    """What a fine-tune left in its folder."""

    lora_dir: Path
    archive: Path
    prepared_dir: Path
    metrics: TrainingFigures
    photos_used: int
    rejected: tuple[RejectedPhoto, ...]

    @property
    def lora_bytes(self) -> int:
        """Size of the LoRA weights file."""
        return (self.lora_dir / LORA_WEIGHTS).stat().st_size


def fine_tune(
    photos: Sequence[tuple[str, bytes]],
    out_dir: Path,
    *,
    base_model: str,
    plan: TrainingPlan,
    cache_dir: Path,
    class_store: ClassImageStore,
    name: str,
    user_id: str | None = None,
    job_id: str | None = None,
    device: str | None = None,
    progress: ProgressCallback = ignore_progress,
    s3_client: Any = None,
    execution_env: str | None = None,
) -> FineTuneResult:
    """Write `out_dir/prepared/`, `out_dir/lora/` and `out_dir/model.tar.gz`; raises FineTuneFailed.

    `execution_env`: the multi-model endpoint's conda-pack environment, named in the packaged model's config.
    """
    options = plan.options
    progress(TrainingProgress(phase="preparing"))
    try:
        base = resolve_base_model(base_model, cache_dir=cache_dir, s3_client=s3_client)
        resolution = options.resolution or base.native_resolution
    except BaseModelUnavailable as exc:
        raise FineTuneFailed(exc.message) from exc
    prepared = prepare_photos(
        photos,
        PrepareOptions(resolution=resolution, backgrounds_per_photo=plan.backgrounds_per_photo, seed=options.seed),
    )
    unreadable = [photo for photo in prepared.rejected if photo.reason == "unreadable"]
    if unreadable:
        raise FineTuneFailed(f"photo {unreadable[0].source} is unreadable ({unreadable[0].detail})")
    if prepared.photo_count < plan.min_photos:
        raise FineTuneFailed(
            f"too few usable photos: {prepared.photo_count} of {len(photos)} show a face clearly enough and "
            f"{plan.min_photos} are needed; add photos where the face is large, sharp and well lit"
        )
    prepared_dir = out_dir / "prepared"
    prepared.write(prepared_dir)
    # Loaded only now: a set that cannot make a model fails before torch and the (gigabytes of) weights are loaded.
    import torch

    device = device or default_device()
    pipeline = base.load(dtype=weight_dtype(options, device))
    lora_dir = out_dir / LORA_FOLDER
    try:
        metrics = train_lora(
            pipeline,
            [image.pixels for image in prepared.images],
            options,
            lora_dir,
            base_sha256=base.sha256,
            class_store=class_store,
            device=device,
            progress=progress,
            identity=prepared.identity(),
        )
    except torch.OutOfMemoryError as exc:
        raise FineTuneFailed(
            f"out of GPU memory at {resolution} px, batch {options.batch_size}: "
            "lower the batch size or resolution, or turn on gradient checkpointing"
        ) from exc
    progress(TrainingProgress(phase="packaging", step=metrics.steps, total_steps=metrics.steps))
    write_metadata(
        lora_dir,
        base_model=base.spec,
        base_model_sha256=base.sha256,
        options=options,
        metrics=metrics,
        photos=prepared.photo_count,
        user_id=user_id,
        job_id=job_id,
    )
    write_identity(lora_dir, prepared.identity())
    archive = out_dir / ARCHIVE_NAME
    archive.write_bytes(package_user_model(lora_dir, name=name, execution_env=execution_env))
    return FineTuneResult(
        lora_dir=lora_dir,
        archive=archive,
        prepared_dir=prepared_dir,
        metrics=metrics,
        photos_used=prepared.photo_count,
        rejected=prepared.rejected,
    )

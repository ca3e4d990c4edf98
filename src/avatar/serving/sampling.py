"""Sampling images on a pipeline: requests that share sampler settings as one call, and a private pipeline with one
user's LoRA (the per-user model's fallback, and the reference design the serving benchmark compares against)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from avatar.contracts.generation import GeneratedImage, GenerationRequest, image_seeds, most_alike
from avatar.errors import LoraRefused
from avatar.lora_format import IDENTITY_NAME, LORA_WEIGHTS, METADATA_NAME
from avatar.prompts import personalize
from avatar.provenance.xmp import marked_png

if TYPE_CHECKING:
    from avatar.diffusion.base_checkpoints import BaseCheckpoint

logger = logging.getLogger(__name__)


class DeadlinePassed(Exception):
    """Every caller of the work gave up waiting: it was not started, or stopped between two steps."""


def generate_rows(
    pipeline: Any, requests: Sequence[GenerationRequest], *, deadline: float | None = None
) -> list[list[GeneratedImage]]:
    """Run requests that share steps, guidance and size as one pipeline call; image i of a request uses seed
    `seed + i` (see `image_seeds`), so each image can be made again alone. Past `deadline` (a Unix time: every
    caller has given up by then) the call stops at the next step and raises DeadlinePassed."""
    import torch

    if len({r.sampler_settings for r in requests}) != 1:
        raise ValueError("one pipeline call needs the same steps, guidance scale and size for every request")
    seeds = [image_seeds(r) for r in requests]
    prompts = [r.prompt for r in requests for _ in range(r.num_images)]
    negatives = [r.negative_prompt for r in requests for _ in range(r.num_images)]
    generators = [torch.Generator(device="cpu").manual_seed(seed) for row in seeds for seed in row]
    first = requests[0]
    abandoned = False

    def stop_when_abandoned(pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        nonlocal abandoned
        if deadline is not None and time.time() >= deadline:
            abandoned = pipe._interrupt = True  # diffusers skips the remaining steps
        return tensors

    with torch.inference_mode():
        output = pipeline(
            prompts,
            negative_prompt=negatives if any(negatives) else None,
            num_inference_steps=first.steps,
            guidance_scale=first.guidance_scale,
            width=first.width,
            height=first.height,
            generator=generators,
            callback_on_step_end=stop_when_abandoned if deadline is not None else None,
        )
    if abandoned:
        raise DeadlinePassed("every caller stopped waiting: the generation was stopped")
    images = iter(output.images)
    answers = []
    for row in seeds:
        answer = []
        for seed in row:
            # Marked as AI-made as it is encoded: no PNG leaves the serving side without the mark.
            answer.append(GeneratedImage(png=marked_png(next(images)), seed=seed))
        answers.append(answer)
    return answers


def load_for_inference(base: BaseCheckpoint) -> Any:
    """The base's pipeline on the best device: fp16 on a GPU, fp32 on CPU; no progress bars."""
    import torch

    from avatar.fine_tuning.trainer import default_device

    device = default_device()
    pipeline = base.load(dtype=torch.float16 if device == "cuda" else torch.float32, device=device)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def generate(pipeline: Any, request: GenerationRequest) -> list[GeneratedImage]:
    """Generate `request.num_images` images of one request."""
    return generate_rows(pipeline, [request])[0]


class PrivatePipeline:
    """A private base pipeline with one user's LoRA: the per-user model's fallback when the shared base is absent,
    and the reference design `avatar bench serving` compares against."""

    def __init__(self, pipeline: Any, token: str, identity: Any = None) -> None:
        self.pipeline = pipeline
        self.token = token
        self.identity = identity  # avatar.identity.likeness.Identity, or None: images are not scored

    @classmethod
    def load(cls, lora_dir: Path, *, cache_dir: Path, base_model: str | None = None) -> PrivatePipeline:
        """Load the base the LoRA names (or `base_model`), check the LoRA against it, and load the LoRA."""
        from avatar.diffusion.base_checkpoints import resolve_base_model
        from avatar.serving.loras import open_lora

        try:
            trained_on = str(json.loads((lora_dir / METADATA_NAME).read_text())["base_model"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise LoraRefused(f"LoRA {lora_dir} has no readable {METADATA_NAME}: {exc}") from exc
        base = resolve_base_model(base_model or trained_on, cache_dir=cache_dir)
        lora = open_lora(lora_dir, base_sha256=base.sha256)
        pipeline = load_for_inference(base)
        pipeline.load_lora_weights(lora_dir, weight_name=LORA_WEIGHTS, adapter_name="user")
        from avatar.identity.scoring import read_identity

        identity_file = lora_dir / IDENTITY_NAME
        return cls(pipeline, lora.token, read_identity(identity_file if identity_file.is_file() else None))

    def generate(self, request: GenerationRequest) -> list[GeneratedImage]:
        """Generate with the user's token put into the prompt; every candidate of a `best_of` request, scored, the
        most alike kept."""
        from avatar.identity.scoring import score_images, serving_face_models

        personal = request.as_candidates().model_copy(update={"prompt": personalize(request.prompt, self.token)})
        models = serving_face_models() if self.identity is not None else None
        return most_alike(score_images(generate(self.pipeline, personal), self.identity, models), request.num_images)

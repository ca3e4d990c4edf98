"""Choosing the checkpoint to ship by likeness: the trainer keeps the LoRA at a few steps, generates validation images
with fixed prompts and seeds at each, scores how much they look like the person, and ships the most alike."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from avatar.contracts.generation import GeneratedImage
from avatar.contracts.training import CheckpointLikeness, TrainingOptions

# Fixed, so that checkpoints (and trainings) are compared on the same images; image i uses seed VALIDATION_SEED + i.
VALIDATION_PROMPTS = (
    "a portrait photo of <<TOK>> person, looking at the camera",
    "a close-up photo of <<TOK>> person, natural light",
)
VALIDATION_SEED = 1234

# Scores validation images: for each, whether a face was found and its likeness (None without a face).
Scorer = Callable[[Sequence[GeneratedImage]], list[GeneratedImage]]


def checkpoint_steps(total_steps: int, count: int) -> list[int]:
    """`count` steps evenly spaced up to `total_steps` (the last always among them)."""
    if count <= 0:
        return []
    return sorted({max(1, round(total_steps * i / count)) for i in range(1, count + 1)})


def judge_checkpoint(step: int, scored: Sequence[GeneratedImage]) -> CheckpointLikeness:
    """A checkpoint's score from its scored validation images."""
    alike = [image.likeness for image in scored if image.face_found and image.likeness is not None]
    return CheckpointLikeness(
        step=step,
        likeness=round(sum(alike) / len(alike), 4) if alike else None,
        faces_found=len(alike),
        images=len(scored),
    )


def choose_checkpoint(curve: Sequence[CheckpointLikeness]) -> tuple[int, str]:
    """The step to ship and why: the highest likeness (the later on a tie); the last when no image had a face."""
    judged = [point for point in curve if point.likeness is not None]
    if not judged:
        return curve[-1].step, "no validation image had a face: the last checkpoint is shipped"
    best = max(judged, key=lambda point: (point.likeness, point.step))
    return best.step, f"the most alike checkpoint (likeness {best.likeness:.3f}, faces in {best.faces_found} images)"


@dataclass
class CheckpointJudge:
    """Judges the LoRA at the chosen steps and puts the best one back at the end.

    `generate` makes the validation images with the pipeline as it is at that step; `score` scores them."""

    steps: list[int]
    generate: Callable[[], list[GeneratedImage]]
    score: Scorer
    curve: list[CheckpointLikeness] = field(default_factory=list)
    snapshots: dict[int, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0

    def maybe_judge(self, step: int, trained: Sequence[Any]) -> bool:
        """At a checkpoint step: keep the LoRA's weights, generate and score; True when it judged."""
        if step not in self.steps:
            return False
        started = time.perf_counter()
        self.snapshots[step] = snapshot(trained)
        self.curve.append(judge_checkpoint(step, self.score(self.generate())))
        self.seconds += time.perf_counter() - started
        return True

    def restore_best(self, trained: Sequence[Any]) -> tuple[int, str]:
        """Put the chosen checkpoint's weights back into the trained modules; returns its step and why."""
        step, because = choose_checkpoint(self.curve)
        restore(trained, self.snapshots[step])
        return step, because


def snapshot(trained: Sequence[Any]) -> dict[str, Any]:
    """A copy (on the CPU) of every trainable parameter of the trained modules."""
    return {
        f"{index}.{name}": parameter.detach().to("cpu", copy=True)
        for index, module in enumerate(trained)
        for name, parameter in module.named_parameters()
        if parameter.requires_grad
    }


def restore(trained: Sequence[Any], weights: dict[str, Any]) -> None:
    """Copy a snapshot back into the trained modules' parameters."""
    import torch

    with torch.no_grad():
        for index, module in enumerate(trained):
            for name, parameter in module.named_parameters():
                if parameter.requires_grad:
                    parameter.copy_(weights[f"{index}.{name}"].to(parameter.device))


def validation_images(pipeline: Any, options: TrainingOptions, *, resolution: int, device: str) -> list[GeneratedImage]:
    """The fixed validation images with the pipeline's current LoRA: `options.validation_images` of them, cycling
    through the prompts, image i with seed VALIDATION_SEED + i. Modules the trainer keeps off the device (a cached
    VAE, a frozen text encoder) come onto it for the call and go back."""
    import torch

    target = torch.device(device)
    keep_off_device = [
        module for module in (pipeline.vae, pipeline.text_encoder) if next(module.parameters()).device != target
    ]

    prompts = [options.personal_prompt(VALIDATION_PROMPTS[i % len(VALIDATION_PROMPTS)]) for i in range(
        options.validation_images
    )]  # fmt: skip
    seeds = [VALIDATION_SEED + i for i in range(options.validation_images)]
    modules = [pipeline.unet, pipeline.text_encoder]
    training = [module.training for module in modules]
    moved = [(module, next(module.parameters()).device) for module in keep_off_device]
    try:
        for module, _ in moved:
            module.to(device)
        for module in modules:
            module.eval()
        with torch.no_grad():
            output = pipeline(
                prompts,
                num_inference_steps=options.validation_steps,
                width=resolution,
                height=resolution,
                generator=[torch.Generator(device="cpu").manual_seed(seed) for seed in seeds],
            )
    finally:
        for module, was_training in zip(modules, training, strict=True):
            module.train(was_training)
        for module, where in moved:
            module.to(where)
    images = []
    for picture, seed in zip(output.images, seeds, strict=True):
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        images.append(GeneratedImage(png=buffer.getvalue(), seed=seed))
    return images

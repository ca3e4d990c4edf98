"""Generation requests and image generation with a user's adapter (used by the per-user Triton model)."""

from __future__ import annotations

import io
import json
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from avatar.diffusion.base_model import resolve_base_model
from avatar.training.artifact import METADATA_NAME
from avatar.training.options import TOKEN_PLACEHOLDER
from avatar.training.trainer import ADAPTER_WEIGHTS, default_device

logger = logging.getLogger(__name__)


class GenerationRequest(BaseModel):
    """One generate call: up to four images of one prompt."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prompt: str = Field(min_length=1, max_length=500)
    negative_prompt: str = Field("", max_length=500)
    seed: int | None = Field(None, ge=0, le=2**32 - 1)
    steps: int = Field(30, ge=1, le=100)
    guidance_scale: float = Field(7.5, ge=0.0, le=20.0)
    width: int | None = Field(None, ge=64, le=1024)
    height: int | None = Field(None, ge=64, le=1024)
    num_images: int = Field(1, ge=1, le=4)

    @field_validator("width", "height")
    @classmethod
    def _multiple_of_8(cls, value: int | None) -> int | None:
        if value is not None and value % 8:
            raise ValueError("must be a multiple of 8")
        return value


@dataclass(frozen=True)
class GeneratedImage:
    """A PNG and the seed that makes it again."""

    png: bytes
    seed: int


def request_from_tensors(tensors: Mapping[str, np.ndarray]) -> GenerationRequest:
    """Build a request from Triton input tensors (prompt as bytes, the rest scalars); raises ValidationError."""
    fields: dict[str, Any] = {}
    for name, value in tensors.items():
        item = np.asarray(value).reshape(-1)[0]
        fields[name] = item.decode("utf-8") if isinstance(item, bytes) else item.item()
    return GenerationRequest.model_validate(fields)


def personalize(prompt: str, token: str) -> str:
    """Put the user's token where the prompt says `<<TOK>>`, or in front of the prompt when it does not."""
    if TOKEN_PLACEHOLDER in prompt:
        return prompt.replace(TOKEN_PLACEHOLDER, token)
    return f"{token} {prompt}"


def generate(pipeline: Any, request: GenerationRequest) -> list[GeneratedImage]:
    """Generate `request.num_images` images; image i uses seed `seed + i`, so each can be made again alone."""
    import torch

    first_seed = request.seed if request.seed is not None else secrets.randbelow(2**32 - 4)
    seeds = [first_seed + offset for offset in range(request.num_images)]
    generators = [torch.Generator(device="cpu").manual_seed(seed) for seed in seeds]
    with torch.inference_mode():
        output = pipeline(
            [request.prompt] * request.num_images,
            negative_prompt=[request.negative_prompt] * request.num_images if request.negative_prompt else None,
            num_inference_steps=request.steps,
            guidance_scale=request.guidance_scale,
            width=request.width,
            height=request.height,
            generator=generators,
        )
    images = []
    for image, seed in zip(output.images, seeds, strict=True):
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        images.append(GeneratedImage(png=buffer.getvalue(), seed=seed))
    return images


class UserModel:
    """A base pipeline with one user's adapter loaded (the fallback the serving issue replaces with a shared base)."""

    def __init__(self, pipeline: Any, metadata: dict[str, Any]) -> None:
        self.pipeline = pipeline
        self.metadata = metadata

    @property
    def token(self) -> str:
        """The user's identifier token."""
        return str(self.metadata["token"])

    @classmethod
    def load(cls, adapter_dir: Path, *, cache_dir: Path, base_model: str | None = None) -> UserModel:
        """Load the base named in the adapter's metadata (or `base_model`) and the adapter on top of it."""
        import torch

        metadata: dict[str, Any] = json.loads((adapter_dir / METADATA_NAME).read_text())
        base = resolve_base_model(base_model or metadata["base_model"], cache_dir=cache_dir)
        if base.sha256 != metadata["base_model_sha256"]:
            logger.warning(
                "adapter %s was trained on base %s but %s was loaded: images may differ",
                adapter_dir,
                metadata["base_model_sha256"][:12],
                base.sha256[:12],
            )
        device = default_device()
        pipeline = base.load(dtype=torch.float16 if device == "cuda" else torch.float32, device=device)
        pipeline.load_lora_weights(adapter_dir, weight_name=ADAPTER_WEIGHTS, adapter_name="user")
        return cls(pipeline, metadata)

    def generate(self, request: GenerationRequest) -> list[GeneratedImage]:
        """Generate with the user's token put into the prompt."""
        personal = request.model_copy(update={"prompt": personalize(request.prompt, self.token)})
        return generate(self.pipeline, personal)

"""Generation requests (the API's body and the Triton inputs) and image generation on a pipeline.

Imports no ML library at module level: the generate Lambda imports the request model from here.
"""

from __future__ import annotations

import io
import json
import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from avatar.adapter_format import ADAPTER_WEIGHTS, METADATA_NAME
from avatar.training.options import TOKEN_PLACEHOLDER

if TYPE_CHECKING:
    import numpy as np

    from avatar.diffusion import base_model

logger = logging.getLogger(__name__)


# The Triton input tensors of a generate call, in the order of the models' config.pbtxt.
INPUTS = ("prompt", "negative_prompt", "seed", "steps", "guidance_scale", "width", "height", "num_images")


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

    @property
    def sampler_settings(self) -> tuple[int, float, int | None, int | None]:
        """What requests must share to run as one pipeline call: steps, guidance scale and size."""
        return (self.steps, self.guidance_scale, self.width, self.height)

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
    import numpy as np

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


def first_seed(request: GenerationRequest) -> int:
    """The request's seed, or a fresh random one (leaving room for `num_images` consecutive seeds)."""
    return request.seed if request.seed is not None else secrets.randbelow(2**32 - 4)


def generate_rows(pipeline: Any, requests: Sequence[GenerationRequest]) -> list[list[GeneratedImage]]:
    """Run requests that share steps, guidance and size as one pipeline call; image i of a request uses seed
    `seed + i`, so each image can be made again alone."""
    import torch

    if len({r.sampler_settings for r in requests}) != 1:
        raise ValueError("one pipeline call needs the same steps, guidance scale and size for every request")
    seeds = [[start + offset for offset in range(r.num_images)] for r, start in ((r, first_seed(r)) for r in requests)]
    prompts = [r.prompt for r in requests for _ in range(r.num_images)]
    negatives = [r.negative_prompt for r in requests for _ in range(r.num_images)]
    generators = [torch.Generator(device="cpu").manual_seed(seed) for row in seeds for seed in row]
    first = requests[0]
    with torch.inference_mode():
        output = pipeline(
            prompts,
            negative_prompt=negatives if any(negatives) else None,
            num_inference_steps=first.steps,
            guidance_scale=first.guidance_scale,
            width=first.width,
            height=first.height,
            generator=generators,
        )
    images = iter(output.images)
    answers = []
    for row in seeds:
        answer = []
        for seed in row:
            buffer = io.BytesIO()
            next(images).save(buffer, format="PNG")
            answer.append(GeneratedImage(png=buffer.getvalue(), seed=seed))
        answers.append(answer)
    return answers


def load_for_inference(base: base_model.BaseModel) -> Any:
    """The base's pipeline on the best device: fp16 on a GPU, fp32 on CPU; no progress bars."""
    import torch

    from avatar.training.trainer import default_device

    device = default_device()
    pipeline = base.load(dtype=torch.float16 if device == "cuda" else torch.float32, device=device)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def generate(pipeline: Any, request: GenerationRequest) -> list[GeneratedImage]:
    """Generate `request.num_images` images of one request."""
    return generate_rows(pipeline, [request])[0]


class UserModel:
    """A private base pipeline with one user's adapter: the per-user model's fallback when the shared base is absent,
    and the reference design `avatar bench serving` compares against."""

    def __init__(self, pipeline: Any, token: str) -> None:
        self.pipeline = pipeline
        self.token = token

    @classmethod
    def load(cls, adapter_dir: Path, *, cache_dir: Path, base_model: str | None = None) -> UserModel:
        """Load the base the adapter names (or `base_model`), check the adapter against it, and load the adapter."""
        from avatar.diffusion.base_model import resolve_base_model
        from avatar.serving.adapters import AdapterRefused, open_adapter

        try:
            trained_on = str(json.loads((adapter_dir / METADATA_NAME).read_text())["base_model"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise AdapterRefused(f"adapter {adapter_dir} has no readable {METADATA_NAME}: {exc}") from exc
        base = resolve_base_model(base_model or trained_on, cache_dir=cache_dir)
        adapter = open_adapter(adapter_dir, base_sha256=base.sha256)
        pipeline = load_for_inference(base)
        pipeline.load_lora_weights(adapter_dir, weight_name=ADAPTER_WEIGHTS, adapter_name="user")
        return cls(pipeline, adapter.token)

    def generate(self, request: GenerationRequest) -> list[GeneratedImage]:
        """Generate with the user's token put into the prompt."""
        personal = request.model_copy(update={"prompt": personalize(request.prompt, self.token)})
        return generate(self.pipeline, personal)

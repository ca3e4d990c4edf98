"""The generation request (the generate API's body, and the Triton inputs every serving model reads) and the images
that come back. Imports no ML library: the generate Lambda uses it."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator, model_validator

from avatar.contracts.api import ApiBody

if TYPE_CHECKING:
    import numpy as np

# The Triton input tensors of a generate call, in the order of the models' config.pbtxt.
INPUTS = ("prompt", "negative_prompt", "seed", "steps", "guidance_scale", "width", "height", "num_images")
# The most one request may cost the endpoint: steps x megapixels x images. 42 is 40 steps of four 512x512 images (or
# 40 steps of one 1024x1024 image): about 13 s on an A10G at ~3 steps/s for a batch of four (an estimate until the GPU
# figures are measured), inside the generate API's ~22 s budget, so one user's heaviest request cannot hold the
# endpoint for a whole budget. A deployment on slower hardware sets a lower bound (MAX_STEP_MEGAPIXELS).
MAX_STEP_MEGAPIXELS = 42.0
NATIVE_SIDE = 512  # a size left out is the base's native size (SD 2.1 base)
# An optional INT64 input: the Unix time in milliseconds after which nobody waits for the answer; the shared base
# does not start work on a request past it.
DEADLINE = "deadline_ms"
# An optional boolean input of the per-user and shared models: true asks the per-user model to forget its user (drop
# the LoRA from the shared base, delete its files, unload itself) instead of generating; erasure sends it.
FORGET = "forget"
# Seeds are 32-bit; image i of a request uses seed + i, wrapping around, so every seed returned can be sent back.
SEEDS = 2**32
MAX_SEED = SEEDS - 1


class GenerationRequest(ApiBody):
    """One generate call: up to four images of one prompt."""

    prompt: str = Field(min_length=1, max_length=500, description="put <<TOK>> where the person goes")
    negative_prompt: str = Field("", max_length=500)
    seed: int | None = Field(None, ge=0, le=MAX_SEED)
    steps: int = Field(30, ge=1, le=100)
    guidance_scale: float = Field(7.5, ge=0.0, le=20.0)
    width: int | None = Field(None, ge=64, le=1024)
    height: int | None = Field(None, ge=64, le=1024)
    num_images: int = Field(1, ge=1, le=4)

    @property
    def sampler_settings(self) -> tuple[int, float, int | None, int | None]:
        """What requests must share to run as one pipeline call: steps, guidance scale and size."""
        return (self.steps, self.guidance_scale, self.width, self.height)

    def step_megapixels(self, native_side: int = NATIVE_SIDE) -> float:
        """What the request costs: steps x megapixels x images (a size left out is the base's `native_side`)."""
        pixels = (self.width or native_side) * (self.height or native_side)
        return self.steps * pixels / 1e6 * self.num_images

    @model_validator(mode="after")
    def _within_cost(self) -> GenerationRequest:
        if (cost := self.step_megapixels()) > MAX_STEP_MEGAPIXELS:
            raise ValueError(
                f"steps x megapixels x images is {cost:.1f}, over {MAX_STEP_MEGAPIXELS:g} (e.g. 40 "
                "steps of four 512x512 images): use fewer steps, a smaller size or fewer images"
            )
        return self

    @field_validator("width", "height")
    @classmethod
    def _multiple_of_8(cls, value: int | None) -> int | None:
        if value is not None and value % 8:
            raise ValueError("must be a multiple of 8")
        return value

    def with_fixed_seed(self) -> GenerationRequest:
        """This request with its seed chosen now (a retry then makes the same images)."""
        return self.model_copy(update={"seed": first_seed(self)})


def first_seed(request: GenerationRequest) -> int:
    """The request's seed, or a fresh random one."""
    return request.seed if request.seed is not None else secrets.randbelow(SEEDS)


def image_seeds(request: GenerationRequest) -> list[int]:
    """The seed of each image of the request: `seed + i`, wrapping around within the accepted range, so each image
    can be made again alone with the seed returned for it."""
    first = first_seed(request)
    return [(first + i) % SEEDS for i in range(request.num_images)]


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

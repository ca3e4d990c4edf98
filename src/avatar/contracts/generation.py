"""The generation request (the generate API's body, and the Triton inputs every serving model reads) and the images
that come back. Imports no ML library: the generate Lambda uses it."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator

from avatar.contracts.api import ApiBody

if TYPE_CHECKING:
    import numpy as np

# The Triton input tensors of a generate call, in the order of the models' config.pbtxt.
INPUTS = ("prompt", "negative_prompt", "seed", "steps", "guidance_scale", "width", "height", "num_images")
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

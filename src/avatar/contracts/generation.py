"""The generation request (the generate API's body, and the Triton inputs every serving model reads) and the images
that come back. Imports no ML library: the generate Lambda uses it."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field, field_validator, model_validator

from avatar.contracts.api import ApiBody

if TYPE_CHECKING:
    import numpy as np

# The Triton input tensors of a generate call, in the order of the models' config.pbtxt.
INPUTS = ("prompt", "negative_prompt", "seed", "steps", "guidance_scale", "width", "height", "num_images", "best_of")
# The Triton outputs: the PNGs, their seeds, and each image's likeness to the user (FP32): 0..1 where a face was
# found, NO_FACE where none was, NOT_SCORED (NaN) where the model has no identity or the server no face models.
OUTPUTS = ("images", "seeds", "likeness")
NO_FACE = -1.0
NOT_SCORED = float("nan")
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


# The bounds of a generate request's fields, shared by the API body (AvatarRequest) and the request the endpoint runs.
Prompt = Annotated[str, Field(min_length=1, max_length=500, description="put <<TOK>> where the person goes")]
NegativePrompt = Annotated[str, Field(max_length=500)]
Seed = Annotated[int | None, Field(ge=0, le=MAX_SEED)]
Steps = Annotated[int, Field(ge=1, le=100)]
GuidanceScale = Annotated[float, Field(ge=0.0, le=20.0)]
Side = Annotated[int | None, Field(ge=64, le=1024)]
NumImages = Annotated[int, Field(ge=1, le=4)]
BestOf = Annotated[
    int | None,
    Field(
        ge=1,
        le=8,
        description="candidates to generate (at least num_images); the num_images most like the person are returned",
    ),
]


class GenerationRequest(ApiBody):
    """One generate call: up to four images of one prompt."""

    prompt: Prompt
    negative_prompt: NegativePrompt = ""
    seed: Seed = None
    steps: Steps = 30
    guidance_scale: GuidanceScale = 7.5
    width: Side = None
    height: Side = None
    num_images: NumImages = 1
    best_of: BestOf = None

    @property
    def candidates(self) -> int:
        """How many images are generated: `best_of`, else `num_images`."""
        return max(self.num_images, self.best_of or 0)

    def as_candidates(self) -> GenerationRequest:
        """This request generating every candidate (what the pipeline runs before the most alike are kept)."""
        return self.model_copy(update={"num_images": self.candidates, "best_of": None})

    @property
    def sampler_settings(self) -> tuple[int, float, int | None, int | None]:
        """What requests must share to run as one pipeline call: steps, guidance scale and size."""
        return (self.steps, self.guidance_scale, self.width, self.height)

    def step_megapixels(self, native_side: int = NATIVE_SIDE) -> float:
        """What the request costs: steps x megapixels x images generated, candidates included (a size left out is
        the base's `native_side`)."""
        pixels = (self.width or native_side) * (self.height or native_side)
        return self.steps * pixels / 1e6 * self.candidates

    @model_validator(mode="after")
    def _within_cost(self) -> GenerationRequest:
        if (cost := self.step_megapixels()) > MAX_STEP_MEGAPIXELS:
            raise ValueError(
                f"steps x megapixels x images is {cost:.1f}, over {MAX_STEP_MEGAPIXELS:g} (e.g. 40 "
                "steps of four 512x512 images): use fewer steps, a smaller size or fewer images"
            )
        return self

    @model_validator(mode="after")
    def _enough_candidates(self) -> GenerationRequest:
        if self.best_of is not None and self.best_of < self.num_images:
            raise ValueError("best_of must be at least num_images (the images returned are chosen from it)")
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


# What a style sets: a request naming a style may not set these too.
STYLE_FIELDS = ("prompt", "negative_prompt", "steps", "guidance_scale", "width", "height")


class AvatarRequest(ApiBody):
    """The generate API's body: a prompt (with its settings), or a curated style by its id (GET /v1/styles)."""

    prompt: Prompt | None = None
    style: str | None = Field(
        None, min_length=1, max_length=64, description="a style's id (GET /v1/styles), instead of a prompt"
    )
    negative_prompt: NegativePrompt = ""
    seed: Seed = None
    steps: Steps = 30
    guidance_scale: GuidanceScale = 7.5
    width: Side = None
    height: Side = None
    num_images: NumImages = 1
    best_of: BestOf = None

    @model_validator(mode="after")
    def _prompt_or_style(self) -> AvatarRequest:
        if (self.prompt is None) == (self.style is None):
            raise ValueError("give a prompt or a style (GET /v1/styles), not both")
        if self.style is not None and (clash := [f for f in STYLE_FIELDS if f in self.model_fields_set]):
            raise ValueError(f"a style sets its own {', '.join(clash)}: leave them out")
        return self


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
    """A PNG, the seed that makes it again, and its likeness to the user (None: not scored)."""

    png: bytes
    seed: int
    likeness: float | None = None
    face_found: bool | None = None

    @property
    def likeness_value(self) -> float:
        """The likeness as the Triton output carries it (NO_FACE, NOT_SCORED or 0..1)."""
        if self.face_found is None:
            return NOT_SCORED
        return self.likeness if self.face_found and self.likeness is not None else NO_FACE

    def with_likeness_value(self, value: float) -> GeneratedImage:
        """This image with the likeness a Triton output carried."""
        if value != value:  # NaN: not scored
            return self
        if value < 0:
            return replace(self, likeness=None, face_found=False)
        return replace(self, likeness=round(float(value), 3), face_found=True)


def most_alike(images: list[GeneratedImage], keep: int) -> list[GeneratedImage]:
    """The `keep` images most like the person, most alike first; unscored images keep their order, after scored
    ones without a face."""

    def rank(image: GeneratedImage) -> float:
        if image.face_found is None:
            return -2.0
        return image.likeness if image.likeness is not None else -1.0

    if all(image.face_found is None for image in images):
        return images[:keep]
    return sorted(images, key=rank, reverse=True)[:keep]


def request_from_tensors(tensors: Mapping[str, np.ndarray]) -> GenerationRequest:
    """Build a request from Triton input tensors (prompt as bytes, the rest scalars); raises ValidationError."""
    import numpy as np

    fields: dict[str, Any] = {}
    for name, value in tensors.items():
        item = np.asarray(value).reshape(-1)[0]
        fields[name] = item.decode("utf-8") if isinstance(item, bytes) else item.item()
    return GenerationRequest.model_validate(fields)

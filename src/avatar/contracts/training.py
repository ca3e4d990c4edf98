"""What crosses between the orchestration and the GPU training job: the options, the deployment's plan, the user's
request, the asynchronous invocation's manifest, the job's result and its progress (light imports: pydantic only).

A fine-tune is planned once, when `POST /v1/models` is called: the user's `TrainingRequest` is applied to the
deployment's `TrainingPlan` and the result validated as a whole, so a bad combination is a 422 then, not a failed job
later. The job stores the plan typed; the orchestrator turns it into the manifest; the GPU job answers a
`TrainingResult` and publishes `TrainingProgress` on the way.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator, model_validator

from avatar.contracts.api import ApiBody
from avatar.object_keys import PHOTOS, is_valid_user_id, model_artifact_key
from avatar.prompts import TOKEN_PLACEHOLDER

JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{7,63}$")
_PHOTO_FILE = re.compile(r"^[0-9a-f]{32}\.jpg$")
TOKEN_PATTERN = r"^[a-z][a-z0-9]{2,15}$"  # noqa: S105 (the identifier token's shape, not a secret)


class TrainingOptions(BaseModel):
    """DreamBooth + LoRA settings, defaults chosen for faces on SD 2.1 base (512 px). Prompts say `<<TOK>>` where the
    user's identifier token goes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    token: str = Field(
        "ohwx",
        pattern=TOKEN_PATTERN,
        description="rare identifier token (one lowercase word with a weak prior in CLIP's vocabulary)",
    )
    instance_prompt: str = Field(f"a photo of {TOKEN_PLACEHOLDER} person", max_length=200)
    class_prompt: str = Field("a photo of person", max_length=200)
    prior_preservation: bool = True
    prior_loss_weight: float = Field(1.0, ge=0.0, le=10.0)
    num_class_images: int = Field(100, ge=1, le=1000, description="generated once per base model and prompt, cached")
    class_image_steps: int = Field(25, ge=1, le=100, description="sampling steps for each class image")
    steps: int = Field(500, ge=1, le=5000, description="optimizer steps")
    learning_rate: float = Field(1e-4, gt=0.0, le=1e-2)
    rank: int = Field(16, ge=1, le=256, description="UNet LoRA rank")
    alpha: float | None = Field(None, gt=0.0, description="LoRA alpha; defaults to the rank (scale 1)")
    train_text_encoder: bool = False
    text_encoder_rank: int = Field(8, ge=1, le=256)
    resolution: int | None = Field(None, ge=64, le=1024, description="defaults to the base model's native size")
    batch_size: int = Field(1, ge=1, le=16)
    gradient_accumulation: int = Field(1, ge=1, le=32)
    gradient_checkpointing: bool = Field(
        False, description="trade ~80% more step time for less activation memory (for small GPUs or big batches)"
    )
    mixed_precision: Literal["auto", "no", "fp16", "bf16"] = "auto"
    use_8bit_adam: Literal["auto", "no"] = "auto"
    cache_latents: bool = True
    max_grad_norm: float = Field(1.0, gt=0.0)
    seed: int = Field(0, ge=0, le=2**32 - 1)
    validation_checkpoints: int = Field(
        3,
        ge=0,
        le=10,
        description="checkpoints (evenly spaced, the last included) judged by the likeness of validation images; "
        "the most alike is shipped (0: the last, unjudged)",
    )
    validation_images: int = Field(2, ge=1, le=8, description="validation images per checkpoint (fixed prompts, seeds)")
    validation_steps: int = Field(20, ge=1, le=100, description="sampling steps of each validation image")

    @model_validator(mode="after")
    def _coherent(self) -> TrainingOptions:
        if TOKEN_PLACEHOLDER not in self.instance_prompt:
            raise ValueError(f"instance_prompt must contain {TOKEN_PLACEHOLDER}, where the identifier token goes")
        if self.resolution is not None and self.resolution % 8:
            raise ValueError("resolution must be a multiple of 8")
        if self.token in self.class_prompt.lower().split():
            # Prior preservation trains the class prompt to stay as it was: a token that is one of its words would be
            # pulled both ways.
            raise ValueError(f"token {self.token!r} is a word of the class prompt {self.class_prompt!r}")
        return self

    @property
    def lora_alpha(self) -> float:
        """Alpha in effect."""
        return self.alpha if self.alpha is not None else float(self.rank)

    def personal_prompt(self, prompt: str) -> str:
        """A prompt with `<<TOK>>` replaced by this model's token."""
        return prompt.replace(TOKEN_PLACEHOLDER, self.token)


class TrainingRequest(ApiBody):
    """Options a user may set for a fine-tune (`POST /v1/models`); everything else comes from the deployment's plan."""

    steps: int | None = Field(None, ge=1, le=1500, description="optimizer steps (1-1500; about 0.2 s each on a GPU)")
    rank: int | None = Field(None, ge=4, le=64, description="LoRA rank (4-64); the LoRA grows with it")
    learning_rate: float | None = Field(None, ge=1e-6, le=1e-3)
    train_text_encoder: bool | None = Field(None, description="also adapt the text encoder (slower, larger)")
    token: str | None = Field(None, pattern=TOKEN_PATTERN, description="the identifier word prompts use for the user")
    seed: int | None = Field(None, ge=0, le=2**32 - 1)
    backgrounds_per_photo: int | None = Field(None, ge=0, le=4, description="generated-background copies per photo")


class TrainingPlan(BaseModel):
    """How a fine-tune runs: the deployment's defaults (`TRAINING_DEFAULTS`), with a user's choices once planned."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    options: TrainingOptions = TrainingOptions()
    backgrounds_per_photo: int = Field(1, ge=0, le=4, description="generated-background copies per photo")
    min_photos: int = Field(6, ge=1, le=50, description="fewest usable photos after preparation")

    def with_choices(self, request: TrainingRequest) -> TrainingPlan:
        """This plan with the user's choices applied, validated as a whole; raises pydantic's ValidationError."""
        chosen = request.model_dump(exclude_none=True)
        backgrounds = chosen.pop("backgrounds_per_photo", self.backgrounds_per_photo)
        options = TrainingOptions.model_validate(self.options.model_dump() | chosen)
        return self.model_copy(update={"options": options, "backgrounds_per_photo": backgrounds})


class TrainingManifest(TrainingPlan):
    """The asynchronous invocation's input, written by the orchestrator: a plan and the user's normalized photos,
    never a user-supplied archive."""

    manifest_version: Literal[1] = 1
    user_id: str
    job_id: str
    photo_keys: list[str] = Field(min_length=1, max_length=50)

    @field_validator("user_id")
    @classmethod
    def _user(cls, value: str) -> str:
        if not is_valid_user_id(value):
            raise ValueError("not a valid user id")
        return value

    @field_validator("job_id")
    @classmethod
    def _job(cls, value: str) -> str:
        if not JOB_ID.fullmatch(value):
            raise ValueError("job_id must be 8-64 letters, digits, '-' or '_'")
        return value

    @model_validator(mode="after")
    def _photos_of_this_user(self) -> TrainingManifest:
        prefix = f"{PHOTOS}/{self.user_id}/"
        for key in self.photo_keys:
            if not key.startswith(prefix) or not _PHOTO_FILE.fullmatch(key.removeprefix(prefix)):
                raise ValueError(f"photo key {key!r} is not a normalized photo of user {self.user_id}")
        if len(set(self.photo_keys)) != len(self.photo_keys):
            raise ValueError("photo keys repeat")
        return self

    @property
    def model_key(self) -> str:
        """Where this job's model goes."""
        return model_artifact_key(self.user_id, self.job_id)

    @property
    def plan(self) -> TrainingPlan:
        """The plan this manifest carries."""
        return TrainingPlan(
            options=self.options, backgrounds_per_photo=self.backgrounds_per_photo, min_photos=self.min_photos
        )


class _Figures(BaseModel):
    """Figures for JSON: frozen, floats rounded to 4 places."""

    model_config = ConfigDict(frozen=True)

    @field_serializer("*")
    def _rounded(self, value: Any) -> Any:
        return round(value, 4) if isinstance(value, float) else value


TrainingPhase = Literal["preparing", "class_images", "training", "packaging", "done"]


class CheckpointLikeness(_Figures):
    """One checkpoint of a training, judged by its validation images: their mean likeness to the person (of those
    with a face; None when none has one) and how many had a face."""

    step: int
    likeness: float | None
    faces_found: int
    images: int


class TrainingProgress(_Figures):
    """Where a job is. `step` of `total_steps` counts the phase's work: class images while they are generated, then
    optimizer steps; `eta_seconds` is the phase's time left."""

    phase: TrainingPhase
    user_id: str | None = None  # set by the job that publishes it
    job_id: str | None = None
    step: int = 0
    total_steps: int = 0
    loss: float | None = None
    images_per_second: float | None = None
    eta_seconds: float | None = None
    elapsed_seconds: float = 0.0
    checkpoints: list[CheckpointLikeness] = []  # the likeness curve so far


class TrainingFigures(_Figures):
    """What a fine-tune cost, and where it ended."""

    steps: int
    seconds: float
    seconds_per_step: float
    images_per_second: float
    final_loss: float
    peak_memory_bytes: int
    device: str
    precision: str
    optimizer: str
    resolution: int
    class_images: int
    class_images_cached: bool
    trainable_parameters: int
    checkpoints: list[CheckpointLikeness] = []  # the likeness curve: step -> likeness, faces found
    chosen_step: int | None = None  # the checkpoint shipped
    chosen_because: str | None = None
    validation_seconds: float = 0.0  # what judging the checkpoints cost


class RejectedPhoto(BaseModel):
    """A photo that gave no training image, and why."""

    model_config = ConfigDict(frozen=True)

    source: str
    reason: str
    detail: str


class TrainingResult(BaseModel):
    """The training job's answer: where the model is and what it cost (the endpoint stores it as its output)."""

    model_config = ConfigDict(frozen=True)

    status: Literal["succeeded"] = "succeeded"
    user_id: str
    job_id: str
    model_key: str
    lora_bytes: int
    archive_bytes: int
    photos_used: int
    photos_rejected: list[RejectedPhoto] = []
    metrics: TrainingFigures

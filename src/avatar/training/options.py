"""Training options: validated bounds, defaults chosen for faces on SD 2.1 base (512 px)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

TOKEN_PLACEHOLDER = "<<TOK>>"  # noqa: S105 (a prompt placeholder, not a secret)


class TrainingOptions(BaseModel):
    """DreamBooth + LoRA settings. Prompts say `<<TOK>>` where the user's identifier token goes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    token: str = Field(
        "ohwx",
        pattern=r"^[a-z][a-z0-9]{2,15}$",
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

    @model_validator(mode="after")
    def _token_in_prompt(self) -> TrainingOptions:
        if TOKEN_PLACEHOLDER not in self.instance_prompt:
            raise ValueError(f"instance_prompt must contain {TOKEN_PLACEHOLDER}, where the identifier token goes")
        if self.resolution is not None and self.resolution % 8:
            raise ValueError("resolution must be a multiple of 8")
        return self

    @property
    def lora_alpha(self) -> float:
        """Alpha in effect."""
        return self.alpha if self.alpha is not None else float(self.rank)

    def personal_prompt(self, prompt: str) -> str:
        """A prompt with `<<TOK>>` replaced by this model's token."""
        return prompt.replace(TOKEN_PLACEHOLDER, self.token)

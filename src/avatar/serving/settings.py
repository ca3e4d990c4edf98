"""Settings of the Triton models (environment of the multi-model endpoint's container), read on first use."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServingSettings(BaseSettings):
    """`AVATAR_*` variables of the multi-model endpoint."""

    model_config = SettingsConfigDict(env_prefix="AVATAR_", frozen=True, extra="ignore")

    base_model: str = "tiny"  # tiny, a folder, s3://bucket/prefix or a hub id
    cache_dir: Path = Path("/tmp/avatar-cache")  # noqa: S108 (the container's scratch disk)
    base_model_name: str = "avatar_base"  # the Triton model holding the shared pipeline
    max_loras: int = Field(32, ge=1)
    max_lora_mb: int = Field(2048, ge=1)
    batch_strategy: Literal["mixed", "grouped"] = "mixed"
    # LoRA rank of the reusable LoRA slots (the training default); 0 turns slot reuse (hot-swapping) off.
    hotswap_rank: int = Field(16, ge=0)
    # Where the models' conda-pack environment lives on a SageMaker instance (every model's EXECUTION_ENV_PATH); the
    # setup model puts the archive it carries there. None where Triton's own Python has the ML stack (locally).
    triton_execution_env: str | None = None
    # Generated images scoring at or over this (open_nsfw's NSFW probability) are withheld: never stored or returned
    # (avatar.safety). 0 withholds everything; over 1, nothing.
    nsfw_threshold: float = Field(0.5, ge=0.0, le=1.01)


@cache
def get_settings() -> ServingSettings:
    """Read once per process."""
    return ServingSettings()

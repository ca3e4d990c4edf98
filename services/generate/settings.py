"""Settings of the generate service, from the environment the template sets; read on first use, not at import."""

from __future__ import annotations

from functools import cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from avatar.contracts.generation import MAX_STEP_MEGAPIXELS, NATIVE_SIDE


class GenerateSettings(BaseSettings):
    """Environment of the generate API function."""

    model_config = SettingsConfigDict(frozen=True)

    table_name: str
    bucket_name: str
    endpoint_name: str
    # The Secrets Manager secret with the C2PA signing identity (template: ContentCredentialsSecret).
    content_credentials_secret_id: str
    # The setup model (TargetModel), invoked when an instance lacks the models' Python environment; None: never.
    setup_target_model: str | None = None
    image_url_ttl_seconds: int = Field(900, ge=60, le=3600)
    # Retries must end before API Gateway's ~30 s: the rest of the budget goes to storing the images.
    retry_budget_seconds: float = Field(22.0, gt=0, le=27)
    retry_after_seconds: int = Field(10, ge=1)
    # Each user's generate requests in flight at once; more get 429 (each request is bounded in cost too).
    max_requests_in_flight: int = Field(2, ge=1)
    # What one request may cost (steps x megapixels x images), for the endpoint's hardware; and the base's native
    # size, for requests that leave the size out (avatar.contracts.generation).
    max_step_megapixels: float = Field(MAX_STEP_MEGAPIXELS, gt=0, le=MAX_STEP_MEGAPIXELS)
    native_side: int = Field(NATIVE_SIDE, ge=64, le=1024)


@cache
def get_settings() -> GenerateSettings:
    """The settings, read once per process."""
    return GenerateSettings()  # pydantic-settings fills the fields from the environment

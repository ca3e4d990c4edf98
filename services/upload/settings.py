"""Settings of the upload service, from the environment the template sets; read on first use, not at import."""

from __future__ import annotations

from datetime import timedelta
from functools import cache

from pydantic_settings import BaseSettings, SettingsConfigDict

from avatar.contracts.training import TrainingPlan
from avatar.intake.uploads import IntakeLimits


class UploadSettings(BaseSettings):
    """Environment of the upload API and photo-check functions."""

    model_config = SettingsConfigDict(frozen=True)

    table_name: str
    bucket_name: str
    upload_url_ttl_seconds: int = 300
    max_upload_bytes: int = 15 * 1024 * 1024
    max_photos_per_user: int = 40
    # Queue the first training as soon as the 10th photo is accepted (template parameter AutoStartTraining).
    auto_start_training: bool = False
    queue_url: str | None = None
    # JSON, e.g. {"options": {"steps": 400}}: the deployment's training plan, for the automatic first training.
    training_defaults: TrainingPlan = TrainingPlan()

    @property
    def limits(self) -> IntakeLimits:
        """The intake limits these settings describe."""
        return IntakeLimits(
            max_photos_per_user=self.max_photos_per_user,
            max_upload_bytes=self.max_upload_bytes,
            upload_url_ttl=timedelta(seconds=self.upload_url_ttl_seconds),
        )


@cache
def get_settings() -> UploadSettings:
    """The settings, read once per process."""
    return UploadSettings()  # pydantic-settings fills the fields from the environment

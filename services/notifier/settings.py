"""Settings of the notifier, from the environment the template sets; read on first use, not at import."""

from __future__ import annotations

from functools import cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from avatar.training_jobs.timeouts import Timeouts


class NotifierSettings(BaseSettings):
    """Environment of the notifier function."""

    model_config = SettingsConfigDict(frozen=True)

    table_name: str
    bucket_name: str
    event_bus_name: str = "default"
    # The training endpoint's invocation timeout: a failure after this long is told to the user as a timeout.
    invocation_timeout_seconds: int = Field(3600, ge=60, le=3600)

    @property
    def timeouts(self) -> Timeouts:
        """The job timeouts these settings describe."""
        return Timeouts(invocation_seconds=self.invocation_timeout_seconds)


@cache
def get_settings() -> NotifierSettings:
    """The settings, read once per process."""
    return NotifierSettings()  # pydantic-settings fills the fields from the environment

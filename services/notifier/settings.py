"""Settings of the notifier, from the environment the template sets; read on first use, not at import."""

from __future__ import annotations

from functools import cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class NotifierSettings(BaseSettings):
    """Environment of the notifier function."""

    model_config = SettingsConfigDict(frozen=True)

    table_name: str
    bucket_name: str
    event_bus_name: str = "default"


@cache
def get_settings() -> NotifierSettings:
    """The settings, read once per process."""
    return NotifierSettings()  # pydantic-settings fills the fields from the environment

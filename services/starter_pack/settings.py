"""Settings of the starter-pack function, from the environment the template sets; read on first use, not at import."""

from __future__ import annotations

from functools import cache

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from avatar.generation.avatars import RetryPolicy
from avatar.generation.starter_pack import PackSettings
from avatar.generation.styles import StarterPackPlan, style_catalog


class StarterPackSettings(BaseSettings):
    """Environment of the starter-pack function."""

    model_config = SettingsConfigDict(frozen=True)

    table_name: str
    bucket_name: str
    endpoint_name: str
    # The Secrets Manager secret with the C2PA signing identity (template: ContentCredentialsSecret).
    content_credentials_secret_id: str
    event_bus_name: str = "default"
    setup_target_model: str | None = None
    # Images per style (None: the catalog's; 0: no starter packs) and the styles (comma-separated ids; None: the
    # catalog's).
    starter_pack_images_per_style: int | None = Field(None, ge=0, le=4)
    starter_pack_styles: str | None = None
    # Requests in flight at once: the user's model forwards one at a time, a second keeps it busy between styles.
    starter_pack_concurrency: int = Field(2, ge=1, le=16)
    # How long one style waits for a model still loading (or a busy endpoint) before the event is retried later.
    starter_pack_retry_budget_seconds: float = Field(120.0, gt=0, le=600)
    # The function's timeout: a delivery holds the pack this long, then a redelivery may take over.
    starter_pack_lease_seconds: float = Field(900.0, ge=60)

    @model_validator(mode="after")
    def _styles_are_in_the_catalog(self) -> StarterPackSettings:
        known = {style.id for style in style_catalog().styles}
        unknown = [style for style in self.plan.styles if style not in known]
        if unknown:
            raise ValueError(f"STARTER_PACK_STYLES names styles the catalog lacks: {unknown}")
        return self

    @property
    def plan(self) -> StarterPackPlan:
        """The catalog's starter pack with this deployment's overrides."""
        catalog = style_catalog().starter_pack
        changes: dict[str, object] = {}
        if self.starter_pack_images_per_style is not None:
            changes["images_per_style"] = self.starter_pack_images_per_style
        if self.starter_pack_styles is not None:
            changes["styles"] = tuple(s.strip() for s in self.starter_pack_styles.split(",") if s.strip())
        return StarterPackPlan.model_validate(catalog.model_dump() | changes)

    @property
    def pack(self) -> PackSettings:
        """How each pack is made."""
        return PackSettings(
            concurrency=self.starter_pack_concurrency,
            policy=RetryPolicy(budget_seconds=self.starter_pack_retry_budget_seconds),
            lease_seconds=self.starter_pack_lease_seconds,
        )


@cache
def get_settings() -> StarterPackSettings:
    """The settings, read once per process."""
    return StarterPackSettings()  # pydantic-settings fills the fields from the environment

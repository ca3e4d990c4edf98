"""Events this system publishes on its EventBridge bus for other systems: `source` = EVENT_SOURCE, `detail-type` =
the class name, `detail` = the model's JSON. A new field is a compatible change; anything else is a new
`schema_version`. Delivery is at least once: consumers deduplicate on `event_id`, the same for the same fact.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

EVENT_SOURCE = "avatar.service"


class AvatarEvent(BaseModel):
    """Fields every event carries."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    detail_type: ClassVar[str]
    schema_version: Literal["1"] = "1"
    event_id: str = Field(description="stable per fact: the same fact published twice has the same id")
    user_id: str
    occurred_at: datetime


class AvatarModelReady(AvatarEvent):
    """A user's new model version is trained, stored and routable: generate requests now use it."""

    detail_type: ClassVar[str] = "AvatarModelReady"
    job_id: str
    model_version: int
    artifact_key: str = Field(description="the per-user model archive, also the multi-model endpoint's TargetModel")
    is_current: bool = Field(description="false when a newer version was already current (a late result)")
    training_seconds: float | None = None


class AvatarModelFailed(AvatarEvent):
    """A fine-tune ended without a model; `reason` is written for the user."""

    detail_type: ClassVar[str] = "AvatarModelFailed"
    job_id: str
    model_version: int
    reason: str


class AvatarPackReady(AvatarEvent):
    """The starter pack of a model version is made: its images are in the user's history (GET /v1/avatars)."""

    detail_type: ClassVar[str] = "AvatarPackReady"
    job_id: str
    model_version: int
    styles: list[str] = Field(description="the catalog styles of the pack, in its order")
    images: int = Field(description="images stored in the user's history")
    withheld: int = Field(description="images the safety check withheld (never stored)")
    catalog_version: str
    seconds: float = Field(description="from the first delivery's start to the announcement (retries included)")


class AvatarUserErased(AvatarEvent):
    """Every trace of the user is gone from this system's stores; subscribers should erase theirs."""

    detail_type: ClassVar[str] = "AvatarUserErased"


EVENTS: tuple[type[AvatarEvent], ...] = (AvatarModelReady, AvatarModelFailed, AvatarPackReady, AvatarUserErased)

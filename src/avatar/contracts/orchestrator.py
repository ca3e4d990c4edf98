"""Messages on the orchestrator's queue: from the models API and the photo check (a first training), and for erasure."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class StartTraining(BaseModel):
    """Queue a recorded job: write its manifest and invoke the asynchronous training endpoint."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["start_training"] = "start_training"
    user_id: str
    job_id: str


class EraseUser(BaseModel):
    """Remove every trace of a user (routing to their model already stopped)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["erase_user"] = "erase_user"
    user_id: str


OrchestratorMessage = Annotated[StartTraining | EraseUser, Field(discriminator="kind")]

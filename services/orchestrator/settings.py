"""Settings of the orchestrator's functions, from the environment the template sets; read on first use."""

from __future__ import annotations

from datetime import timedelta
from functools import cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from avatar.contracts.training import TrainingPlan
from avatar.training_jobs.timeouts import Timeouts


class OrchestratorSettings(BaseSettings):
    """Environment of the models API, the orchestrator worker and the sweeper."""

    model_config = SettingsConfigDict(frozen=True)

    table_name: str
    bucket_name: str
    queue_url: str
    training_endpoint_name: str = "avatar-training"
    # The multi-model endpoint serving users' models: erasure asks it to forget them. None: not asked.
    avatar_endpoint_name: str | None = None
    event_bus_name: str = "default"
    # SageMaker's asynchronous limit is one hour per invocation.
    invocation_timeout_seconds: int = Field(3600, ge=60, le=3600)
    queued_timeout_seconds: int = Field(1800, ge=60)
    deadline_margin_seconds: int = Field(900, ge=0)
    # The queue's maxReceiveCount: on the last delivery a job that keeps failing to start is marked FAILED.
    max_receive_count: int = Field(5, ge=1)
    # JSON, e.g. {"options": {"steps": 400}}: the deployment's training plan, under each user's choices.
    training_defaults: TrainingPlan = TrainingPlan()

    @property
    def timeouts(self) -> Timeouts:
        """The job timeouts these settings describe."""
        return Timeouts(
            queued=timedelta(seconds=self.queued_timeout_seconds),
            invocation_seconds=self.invocation_timeout_seconds,
            margin=timedelta(seconds=self.deadline_margin_seconds),
        )


@cache
def get_settings() -> OrchestratorSettings:
    """The settings, read once per process."""
    return OrchestratorSettings()  # pydantic-settings fills the fields from the environment

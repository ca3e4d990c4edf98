"""Every message that crosses a service boundary, as versioned pydantic models.

- Events this system publishes on its EventBridge bus for other systems (`source` = EVENT_SOURCE, `detail-type` = the
  class name, `detail` = the model's JSON). A new field is a compatible change; anything else is a new
  `schema_version`. Delivery is at least once: consumers deduplicate on `event_id`.
- Messages on the orchestrator's queue (from the models API and the photo check).
- The notification SageMaker's asynchronous endpoint publishes to SNS (parsed here, written by the local stand-in).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

EVENT_SOURCE = "avatar.service"


def sagemaker_time(moment: datetime) -> str:
    """A timestamp as SageMaker's notifications write it: `2026-01-25T22:46:00.608Z`."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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


class AvatarUserErased(AvatarEvent):
    """Every trace of the user is gone from this system's stores; subscribers should erase theirs."""

    detail_type: ClassVar[str] = "AvatarUserErased"


EVENTS: tuple[type[AvatarEvent], ...] = (AvatarModelReady, AvatarModelFailed, AvatarUserErased)


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


class AsyncRequestParameters(BaseModel):
    """What the invocation asked for."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    content_type: str | None = Field(None, alias="contentType")
    endpoint_name: str = Field(alias="endpointName")
    input_location: str = Field(alias="inputLocation")


class AsyncResponseParameters(BaseModel):
    """Where the result (or, in some error notifications, the failure body) is."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    content_type: str | None = Field(None, alias="contentType")
    output_location: str | None = Field(None, alias="outputLocation")
    failure_location: str | None = Field(None, alias="failureLocation")


class AsyncInferenceNotification(BaseModel):
    """SageMaker asynchronous inference's SNS message (success and error topics share the shape)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    aws_region: str | None = Field(None, alias="awsRegion")
    # Kept as SageMaker writes them (ISO 8601 with milliseconds and Z): only logged, never compared.
    event_time: str | None = Field(None, alias="eventTime")
    received_time: str | None = Field(None, alias="receivedTime")
    invocation_status: Literal["Completed", "Failed"] = Field(alias="invocationStatus")
    failure_reason: str | None = Field(None, alias="failureReason")
    failure_location: str | None = Field(None, alias="failureLocation")
    request_parameters: AsyncRequestParameters = Field(alias="requestParameters")
    response_parameters: AsyncResponseParameters | None = Field(None, alias="responseParameters")
    inference_id: str = Field(alias="inferenceId")
    event_version: str = Field("1.0", alias="eventVersion")
    event_source: Literal["aws:sagemaker"] = Field("aws:sagemaker", alias="eventSource")
    event_name: str = Field("InferenceResult", alias="eventName")

    @property
    def output_location(self) -> str | None:
        """Where a successful result is."""
        return self.response_parameters.output_location if self.response_parameters else None

    @property
    def failure_body_location(self) -> str | None:
        """Where the failure body is, wherever this notification says so."""
        nested = self.response_parameters.failure_location if self.response_parameters else None
        return self.failure_location or nested

    def as_message(self) -> dict[str, Any]:
        """The JSON SageMaker publishes (its field names)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

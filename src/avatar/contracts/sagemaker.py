"""The notification SageMaker's asynchronous endpoint publishes to SNS: parsed by the notifier, written by the local
stand-in. Field names are SageMaker's."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


def sagemaker_time(moment: datetime) -> str:
    """A timestamp as SageMaker's notifications write it: `2026-01-25T22:46:00.608Z`."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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

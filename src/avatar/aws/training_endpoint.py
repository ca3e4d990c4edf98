"""sagemaker-runtime adapter for the asynchronous training endpoint (InvokeEndpointAsync)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from avatar.errors import TrainingEndpointBusy, TrainingRefused
from avatar.training_jobs.ports import AsyncInvocation

_RETRYABLE_CODES = {"ThrottlingException", "ServiceUnavailable", "InternalFailure", "TooManyRequestsException"}


class AsyncTrainingEndpoint:
    """Queues one fine-tune per job: InferenceId = job id, input = the manifest in S3, output named after the job."""

    def __init__(self, client: Any, endpoint_name: str) -> None:
        self._client = client
        self._endpoint = endpoint_name

    def invoke(self, *, job_id: str, user_id: str, input_location: str, timeout_seconds: int) -> AsyncInvocation:
        """One InvokeEndpointAsync call; throttling and 5xx raise TrainingEndpointBusy, other errors TrainingRefused."""
        try:
            response = self._client.invoke_endpoint_async(
                EndpointName=self._endpoint,
                InputLocation=input_location,
                InferenceId=job_id,
                ContentType="application/json",
                InvocationTimeoutSeconds=timeout_seconds,
                # Results land under the user's prefix, named after the job, so erasure finds them.
                S3OutputPathExtension=user_id,
                Filename=f"{job_id}.out",
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            if code in _RETRYABLE_CODES or status == 429 or status >= 500:
                raise TrainingEndpointBusy(f"InvokeEndpointAsync {code or status}") from exc
            raise TrainingRefused(
                f"InvokeEndpointAsync {code}: {exc.response.get('Error', {}).get('Message')}"
            ) from exc
        except BotoCoreError as exc:
            raise TrainingEndpointBusy(f"InvokeEndpointAsync failed: {exc}") from exc
        return AsyncInvocation(
            output_location=response["OutputLocation"], failure_location=response.get("FailureLocation")
        )

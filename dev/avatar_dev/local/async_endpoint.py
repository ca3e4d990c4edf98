"""A local SageMaker asynchronous endpoint: InvokeEndpointAsync -> a worker runs the handler -> S3 + SNS.

What SageMaker does, and how: the request is accepted at once (202, with where the output and the failure will be),
the input is read from S3, the container's handler runs (here the real LMI handler, in-process), the result is written
to `<S3OutputPath>/<S3OutputPathExtension>/<Filename>` or a failure body to the failure path, and a notification in
SageMaker's format is published to the success or error SNS topic. Shared by the tests and the local stack.

Fault injection for tests: `throttle_next` answers ThrottlingException to that many invocations; `hold` keeps queued
work waiting until it is set (a long training).
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from avatar.contracts.sagemaker import (
    AsyncInferenceNotification,
    AsyncRequestParameters,
    AsyncResponseParameters,
    sagemaker_time,
)
from avatar.object_keys import split_s3_uri
from avatar_dev.local.sagemaker_runtime import EndpointError

logger = logging.getLogger(__name__)

# The container's request handler: the request body in, the response body out (a raise is a failed invocation).
AsyncHandler = Callable[[bytes], bytes]
MAX_INVOCATION_TIMEOUT_SECONDS = 3600


class AsyncEndpoint:
    """One asynchronous endpoint: a queue of invocations run by `max_concurrency` workers."""

    def __init__(
        self,
        *,
        name: str,
        handler: AsyncHandler,
        s3: Any,
        sns: Any,
        output_path: str,
        failure_path: str,
        success_topic_arn: str,
        error_topic_arn: str,
        region: str = "us-east-1",
        max_concurrency: int = 1,
    ) -> None:
        self.name = name
        self._handler = handler
        self._s3 = s3
        self._sns = sns
        self._output_path = output_path.rstrip("/")
        self._failure_path = failure_path.rstrip("/")
        self._success_topic = success_topic_arn
        self._error_topic = error_topic_arn
        self._region = region
        self._pool = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix=f"async-{name}")
        self._lock = threading.Lock()
        self._pending: list[Future[None]] = []
        self.throttle_next = 0
        self.hold = threading.Event()
        self.hold.set()
        self.invocations: list[str] = []  # inference ids accepted, in order
        self.notifications: list[dict[str, Any]] = []  # every message published, in order

    def invoke(self, headers: Mapping[str, str]) -> tuple[int, dict[str, str], bytes]:
        """Accept one InvokeEndpointAsync request (headers as boto3 sends them)."""
        header = {k.lower(): v for k, v in headers.items()}
        with self._lock:
            if self.throttle_next > 0:
                self.throttle_next -= 1
                raise EndpointError(400, "ThrottlingException", "Rate exceeded")
        input_location = header.get("x-amzn-sagemaker-inputlocation")
        if not input_location or not input_location.startswith("s3://"):
            raise EndpointError(400, "ValidationError", "InputLocation must be an s3:// URI")
        timeout = int(header.get("x-amzn-sagemaker-invocationtimeoutseconds", "900"))
        if not 1 <= timeout <= MAX_INVOCATION_TIMEOUT_SECONDS:
            raise EndpointError(400, "ValidationError", "InvocationTimeoutSeconds must be between 1 and 3600")
        inference_id = header.get("x-amzn-sagemaker-inference-id") or str(uuid.uuid4())
        extension = header.get("x-amzn-sagemaker-s3outputpathextension", "").strip("/")
        filename = header.get("x-amzn-sagemaker-filename") or f"{inference_id}.out"
        folder = f"/{extension}" if extension else ""
        output = f"{self._output_path}{folder}/{filename}"
        failure = f"{self._failure_path}{folder}/{filename.removesuffix('.out')}-error.out"
        request = AsyncRequestParameters(
            content_type=header.get("x-amzn-sagemaker-content-type"),
            endpoint_name=self.name,
            input_location=input_location,
        )
        received = datetime.now(UTC)
        with self._lock:
            self.invocations.append(inference_id)
            self._pending.append(self._pool.submit(self._run, inference_id, request, output, failure, received))
        answer = json.dumps({"InferenceId": inference_id}).encode()
        headers_out = {
            "Content-Type": "application/json",
            "X-Amzn-SageMaker-OutputLocation": output,
            "X-Amzn-SageMaker-FailureLocation": failure,
        }
        return 202, headers_out, answer

    def _run(
        self, inference_id: str, request: AsyncRequestParameters, output: str, failure: str, received: datetime
    ) -> None:
        self.hold.wait()
        try:
            bucket, key = split_s3_uri(request.input_location)
            body = self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            result = self._handler(body)
        except Exception as exc:
            logger.warning("async invocation %s failed: %s", inference_id, exc)
            # DJL Serving's answer to a handler exception, which SageMaker stores as the failure body.
            detail = json.dumps({"code": 424, "message": "prediction failure", "error": str(exc)})
            self._put(failure, detail.encode())
            reason = f'ClientError: Received client error (424) from primary with message "{detail}".'
            self._notify(inference_id, request, received, failure_reason=reason, failure_location=failure)
            return
        self._put(output, result)
        self._notify(inference_id, request, received, output_location=output)

    def _put(self, uri: str, body: bytes) -> None:
        bucket, key = split_s3_uri(uri)
        self._s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")

    def _notify(
        self,
        inference_id: str,
        request: AsyncRequestParameters,
        received: datetime,
        *,
        output_location: str | None = None,
        failure_reason: str | None = None,
        failure_location: str | None = None,
    ) -> None:
        notification = AsyncInferenceNotification(
            aws_region=self._region,
            event_time=sagemaker_time(datetime.now(UTC)),
            received_time=sagemaker_time(received),
            invocation_status="Failed" if failure_reason else "Completed",
            failure_reason=failure_reason,
            failure_location=failure_location,
            request_parameters=request,
            response_parameters=(
                AsyncResponseParameters(content_type="application/json", output_location=output_location)
                if output_location
                else None
            ),
            inference_id=inference_id,
        )
        topic = self._error_topic if failure_reason else self._success_topic
        message = notification.as_message()
        self._sns.publish(TopicArn=topic, Message=json.dumps(message))
        with self._lock:
            self.notifications.append({"topic": topic, "message": message})

    def wait_idle(self, timeout: float = 600.0) -> None:
        """Block until every accepted invocation has finished (and re-raise a stand-in bug, never a handler error)."""
        with self._lock:
            pending, self._pending = self._pending, []
        for future in pending:
            future.result(timeout=timeout)

    def close(self) -> None:
        """Stop the workers (queued work is dropped, as when an endpoint is deleted)."""
        self.hold.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

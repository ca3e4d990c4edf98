"""Lambda's SQS event source, locally: poll a queue and invoke a handler with Lambda's batch semantics."""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class LambdaContextStub:
    """The attributes of Lambda's context object that Powertools reads."""

    function_name: str
    memory_limit_in_mb: int = 512
    aws_request_id: str = ""
    invoked_function_arn: str = ""

    def __post_init__(self) -> None:
        self.aws_request_id = self.aws_request_id or str(uuid.uuid4())
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        """Lambda's remaining-time call."""
        return 30_000


@dataclass(frozen=True)
class PollResult:
    """What one poll delivered and how the handler answered."""

    received: int
    failed: int


class SqsEventSource:
    """Receives up to `batch_size` messages, invokes the handler, deletes the ones not reported as failures.

    Failures stay in flight until their visibility timeout ends; the queue's redrive policy moves them to the DLQ.
    """

    def __init__(
        self,
        sqs: SQSClient,
        queue_url: str,
        queue_arn: str,
        handler: Handler,
        *,
        batch_size: int,
        function_name: str,
    ) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._queue_arn = queue_arn
        self._handler = handler
        self._batch_size = batch_size
        self._function_name = function_name

    def poll_once(self, *, wait_seconds: int = 0, visibility_timeout: int | None = None) -> PollResult:
        """One receive-invoke-delete cycle."""
        receive: dict[str, Any] = {
            "QueueUrl": self._queue_url,
            "MaxNumberOfMessages": min(self._batch_size, 10),
            "WaitTimeSeconds": wait_seconds,
            "AttributeNames": ["All"],
            "MessageAttributeNames": ["All"],
        }
        if visibility_timeout is not None:
            receive["VisibilityTimeout"] = visibility_timeout
        messages = self._sqs.receive_message(**receive).get("Messages", [])
        if not messages:
            return PollResult(0, 0)
        event = {"Records": [self._record(m) for m in messages]}
        try:
            response = self._handler(event, LambdaContextStub(self._function_name))
        except Exception:
            # A function error fails the whole batch (Powertools raises when every record failed).
            logger.warning("%s failed the whole batch of %d", self._function_name, len(messages), exc_info=True)
            return PollResult(len(messages), len(messages))
        failed = {f["itemIdentifier"] for f in (response or {}).get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        return PollResult(len(messages), len(failed))

    def drain(self, *, max_polls: int = 100, visibility_timeout: int | None = None) -> int:
        """Poll until the queue answers empty; returns the number of messages handled.

        `visibility_timeout=0` makes failed messages come straight back (tests of retries and redrive)."""
        handled = 0
        for _ in range(max_polls):
            result = self.poll_once(visibility_timeout=visibility_timeout)
            if result.received == 0:
                return handled
            handled += result.received
        return handled

    def _record(self, message: Mapping[str, Any]) -> dict[str, Any]:
        body = message["Body"]
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": body,
            "attributes": message.get("Attributes", {}),
            "messageAttributes": message.get("MessageAttributes", {}),
            "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
            "eventSource": "aws:sqs",
            "eventSourceARN": self._queue_arn,
            "awsRegion": self._queue_arn.split(":")[3],
        }

"""Notifier: the asynchronous endpoint's SNS success and error topics -> SQS -> this Lambda -> DynamoDB + EventBridge.

Each record is validated at the edge (SQS record, SNS envelope, SageMaker's notification); an invalid one fails alone,
is retried and ends in the dead-letter queue. Repeated and late notifications change nothing (see
avatar.training_jobs.record_result).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.parser.models import SnsNotificationModel, SqsRecordModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Json

from avatar.contracts.sagemaker import AsyncInferenceNotification
from avatar.training_jobs.record_result import record_training_result
from services.notifier import dependencies
from services.notifier.settings import get_settings

logger = Logger(service="notifier")


class SageMakerSnsNotification(SnsNotificationModel):
    """SNS's envelope around SageMaker's notification."""

    Message: Json[AsyncInferenceNotification]  # type: ignore[assignment]


class NotificationRecord(SqsRecordModel):
    """An SQS record carrying one SNS notification."""

    body: Json[SageMakerSnsNotification]


processor = BatchProcessor(event_type=EventType.SQS, model=NotificationRecord)


def handle_record(record: NotificationRecord) -> None:
    """Record one training result; raising leaves the message on the queue."""
    notification = record.body.Message
    logger.append_keys(job_id=notification.inference_id)
    result = record_training_result(
        notification,
        bucket=get_settings().bucket_name,
        jobs=dependencies.job_table(),
        files=dependencies.files(),
        events=dependencies.events(),
        timeouts=get_settings().timeouts,
        now=datetime.now(UTC),
    )
    logger.info("training result handled", extra={"outcome": result.outcome, "status": notification.invocation_status})


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """Lambda entry point (SQS event source with ReportBatchItemFailures)."""
    return process_partial_response(event=event, record_handler=handle_record, processor=processor, context=context)

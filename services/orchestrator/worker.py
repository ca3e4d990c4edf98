"""Orchestrator worker: SQS -> start a training (manifest + InvokeEndpointAsync) or erase a user.

A raise marks only that message failed: it comes back after the visibility timeout and, after maxReceiveCount
deliveries, goes to the dead-letter queue. On the last delivery a job that still cannot start is marked FAILED first.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Json

from avatar.contracts.orchestrator import EraseUser, OrchestratorMessage, StartTraining
from avatar.erasure.erasure import erase_user
from avatar.training_jobs.outcomes import finish_failed
from avatar.training_jobs.start_training import start_training
from services.orchestrator import dependencies
from services.orchestrator.settings import get_settings

logger = Logger(service="orchestrator")


class OrchestratorRecord(SqsRecordModel):
    """An SQS record whose body is one orchestrator message (anything else fails at the edge: a poison message)."""

    body: Json[OrchestratorMessage]


processor = BatchProcessor(event_type=EventType.SQS, model=OrchestratorRecord)


def handle_record(record: OrchestratorRecord) -> None:
    """Run one message; raising leaves it on the queue."""
    message = record.body
    logger.append_keys(user_id=message.user_id, job_id=getattr(message, "job_id", None))
    now = datetime.now(UTC)
    if isinstance(message, EraseUser):
        erase_user(
            message.user_id,
            users=dependencies.user_table(),
            files=dependencies.files(),
            events=dependencies.events(),
            now=now,
            serving=dependencies.avatar_endpoint(),
        )
        return
    try:
        start_training(
            message.user_id,
            message.job_id,
            jobs=dependencies.job_table(),
            files=dependencies.files(),
            endpoint=dependencies.training_endpoint(),
            events=dependencies.events(),
            timeouts=get_settings().timeouts,
            now=now,
        )
    except Exception:
        if int(record.attributes.ApproximateReceiveCount) >= get_settings().max_receive_count:
            _give_up(message, now)
        raise


def _give_up(message: StartTraining, now: datetime) -> None:
    logger.exception("the job could not be started on its last delivery; it goes to the dead-letter queue")
    job = dependencies.job_table().get_job(message.user_id, message.job_id)
    if job is not None:
        reason = "the training could not be started; please try again"
        finish_failed(job, reason, jobs=dependencies.job_table(), events=dependencies.events(), now=now)


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """Lambda entry point (SQS event source with ReportBatchItemFailures)."""
    return process_partial_response(event=event, record_handler=handle_record, processor=processor, context=context)

"""Photo check: S3 ObjectCreated -> SQS -> this Lambda; one verdict per uploaded object version."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from avatar.contracts.s3 import uploaded_objects
from avatar.contracts.training import TrainingRequest
from avatar.errors import AvatarError, InvalidKey
from avatar.intake.verdicts import record_upload_verdict
from avatar.photo_check.checker import default_face_models
from avatar.photo_check.policy import CheckPolicy
from avatar.training_jobs.request_training import request_training
from avatar.training_jobs.timeouts import Timeouts
from services.upload import dependencies
from services.upload.settings import get_settings

logger = Logger(service="photo-check")
processor = BatchProcessor(event_type=EventType.SQS)


def check_record(record: SQSRecord) -> None:
    """Check every upload in one SQS message; raising marks just this message failed (retried, then the DLQ)."""
    for uploaded in uploaded_objects(record.body):
        try:
            result = record_upload_verdict(
                uploaded,
                photos=dependencies.photo_table(),
                files=dependencies.photo_bucket(),
                policy=CheckPolicy(max_bytes=get_settings().max_upload_bytes),
                face_models=default_face_models(),
                now=datetime.now(UTC),
            )
        except InvalidKey:
            logger.warning("ignoring an object outside the upload layout", extra={"key": uploaded.key})
            continue
        logger.info("upload handled", extra={"key": uploaded.key, "outcome": result.outcome})
        if result.accepted and result.photo is not None:
            _start_first_training(result.photo.user_id)


def _start_first_training(user_id: str) -> None:
    """With AUTO_START_TRAINING, the photo that completes a first set queues the first training."""
    settings = get_settings()
    if not settings.auto_start_training or not settings.queue_url:
        return
    try:
        job = request_training(
            user_id,
            TrainingRequest(),
            jobs=dependencies.job_table(),
            queue=dependencies.orchestrator_queue(),
            defaults=settings.training_defaults,
            timeouts=Timeouts(),
            now=datetime.now(UTC),
            only_first=True,
        )
    except AvatarError as error:
        # Not enough photos yet or already started: nothing to do. A queue outage left the job FAILED: the user can
        # start it with POST /v1/models. The photo's verdict stands either way.
        logger.info("no automatic start", extra={"user_id": user_id, "reason": error.code})
        return
    logger.info("first training queued automatically", extra={"user_id": user_id, "job_id": job.job_id})


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """Lambda entry point (SQS event source with ReportBatchItemFailures)."""
    return process_partial_response(event=event, record_handler=check_record, processor=processor, context=context)

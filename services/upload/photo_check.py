"""Photo check: S3 ObjectCreated -> SQS -> this Lambda; one verdict per uploaded object version."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from avatar.aws.s3_notifications import uploaded_objects
from avatar.keys import InvalidKey
from avatar.photos.check import default_face_detector
from avatar.photos.policy import CheckPolicy
from avatar.training_jobs import ModelsError, QueueUnavailable, Timeouts, TrainingRequest, request_training
from avatar.upload_check import CheckOutcome, check_upload
from services.upload import dependencies
from services.upload.settings import get_settings

logger = Logger(service="photo-check")
processor = BatchProcessor(event_type=EventType.SQS)


def check_record(record: SQSRecord) -> None:
    """Check every upload in one SQS message; raising marks just this message failed (retried, then the DLQ)."""
    for uploaded in uploaded_objects(record.body):
        try:
            result = check_upload(
                uploaded,
                photos=dependencies.photo_table(),
                storage=dependencies.photo_bucket(),
                policy=CheckPolicy(max_bytes=get_settings().max_upload_bytes),
                detector=default_face_detector(),
                now=datetime.now(UTC),
            )
        except InvalidKey:
            logger.warning("ignoring an object outside the upload layout", extra={"key": uploaded.key})
            continue
        logger.info("upload handled", extra={"key": uploaded.key, "outcome": result.outcome})
        if result.outcome is CheckOutcome.RECORDED and result.verdict and result.verdict.accepted:
            _start_first_training(result.photo.user_id if result.photo else "")


def _start_first_training(user_id: str) -> None:
    """With AUTO_START_TRAINING, the photo that completes a first set queues the first training."""
    settings = get_settings()
    if not settings.auto_start_training or not settings.queue_url or not user_id:
        return
    try:
        job = request_training(
            user_id,
            TrainingRequest(),
            jobs=dependencies.photo_table(),
            queue=dependencies.orchestrator_queue(),
            timeouts=Timeouts(),
            now=datetime.now(UTC),
            only_first=True,
        )
    except QueueUnavailable:  # the job was marked FAILED; the user can start it with POST /v1/models
        logger.exception("the automatic first training could not be queued", extra={"user_id": user_id})
        return
    except ModelsError as error:  # not enough photos yet, or already started: nothing to do
        logger.debug("no automatic start", extra={"user_id": user_id, "reason": error.code})
        return
    logger.info("first training queued automatically", extra={"user_id": user_id, "job_id": job.job_id})


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """Lambda entry point (SQS event source with ReportBatchItemFailures)."""
    return process_partial_response(event=event, record_handler=check_record, processor=processor, context=context)

"""Starter packs: AvatarModelReady (EventBridge rule on the bus -> SQS -> this Lambda) -> images in each pack style
in the user's history -> AvatarPackReady.

It subscribes exactly as another system would: a rule on the bus, its own queue and dead-letter queue. Each record is
validated at the edge (SQS record, EventBridge envelope, our event's contract) and fails alone; a pack being made by
another delivery, or a model still loading past the retry budget, fails the record so the queue delivers it again
(styles already made are kept: see avatar.generation.starter_pack).
"""

from __future__ import annotations

from typing import Any, Literal

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field, Json

from avatar.contracts.events import AvatarModelReady
from avatar.generation.starter_pack import make_starter_pack
from services.starter_pack import dependencies
from services.starter_pack.settings import get_settings

logger = Logger(service="starter-pack")


class ModelReadyEvent(BaseModel):
    """EventBridge's envelope around AvatarModelReady: the fields this function reads (Powertools' EventBridgeModel
    also requires `account` and `region`, which moto's rule targets leave out)."""

    id: str
    source: Literal["avatar.service"]  # avatar.contracts.events.EVENT_SOURCE
    detail_type: Literal["AvatarModelReady"] = Field(alias="detail-type")
    detail: AvatarModelReady


class ModelReadyRecord(SqsRecordModel):
    """An SQS record carrying one EventBridge event."""

    body: Json[ModelReadyEvent]


processor = BatchProcessor(event_type=EventType.SQS, model=ModelReadyRecord)


def handle_record(record: ModelReadyRecord) -> None:
    """Make the event's starter pack; raising leaves the message on the queue."""
    ready = record.body.detail
    logger.append_keys(user_id=ready.user_id, model_version=ready.model_version)
    settings = get_settings()
    result = make_starter_pack(
        ready,
        # A redelivery of this message (its invocation died) takes over at once; another message waits for the lease.
        holder=record.messageId,
        registry=dependencies.model_registry(),
        endpoint=dependencies.avatar_endpoint(),
        images=dependencies.avatar_images(),
        history=dependencies.avatar_history(),
        packs=dependencies.starter_packs(),
        events=dependencies.events(),
        plan=settings.plan,
        settings=settings.pack,
        signer=dependencies.content_credentials,
    )
    images = result.pack.images if result.pack else 0
    logger.info("starter pack handled", extra={"outcome": result.outcome, "images": images})


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """Lambda entry point (SQS event source with ReportBatchItemFailures)."""
    return process_partial_response(event=event, record_handler=handle_record, processor=processor, context=context)

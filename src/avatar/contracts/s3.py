"""S3 ObjectCreated notifications as they arrive through SQS, validated at the edge.

A small pydantic model of the fields we read, rather than Powertools' S3Model: that one requires fields we never use
(userIdentity, requestParameters, responseElements, bucket.ownerIdentity) which moto's notifications omit, and its
validator raises AttributeError instead of a validation error on some malformed records.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import unquote_plus

from pydantic import BaseModel, ValidationError

from avatar.errors import InvalidMessage


@dataclass(frozen=True)
class UploadedObject:
    """One S3 ObjectCreated record for an upload, URL-decoded."""

    key: str
    size: int
    version_id: str | None
    sequencer: str


class _S3Object(BaseModel):
    key: str
    size: int = 0
    versionId: str | None = None  # noqa: N815 (S3's field name)
    sequencer: str | None = None


class _S3Entity(BaseModel):
    object: _S3Object


class _S3Record(BaseModel):
    eventName: str  # noqa: N815
    eventTime: datetime  # noqa: N815
    s3: _S3Entity


class _S3Notification(BaseModel):
    Records: list[_S3Record]


def _ordering(record: _S3Record) -> str:
    # S3 always sends a sequencer for ObjectCreated; moto does not, so fall back to the event time.
    return record.s3.object.sequencer or f"{int(record.eventTime.timestamp() * 1_000_000):x}"


def uploaded_objects(body: str) -> list[UploadedObject]:
    """The created objects in one notification; [] for the `s3:TestEvent` S3 sends when notifications are set up."""
    try:
        payload = json.loads(body)
        if isinstance(payload, dict) and payload.get("Event") == "s3:TestEvent":
            return []
        notification = _S3Notification.model_validate(payload)
    except (ValueError, ValidationError) as exc:  # a poison message: it fails alone and ends in the DLQ
        raise InvalidMessage(f"not an S3 event notification: {exc}") from exc
    return [
        UploadedObject(
            # Keys arrive URL-encoded ("uploads%2Fu1%2Fa.jpg", "+" for spaces).
            key=unquote_plus(record.s3.object.key),
            size=record.s3.object.size,
            version_id=record.s3.object.versionId,
            sequencer=_ordering(record),
        )
        for record in notification.Records
        if record.eventName.startswith("ObjectCreated")
    ]

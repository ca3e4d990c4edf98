"""Checking an uploaded photo (S3 ObjectCreated): one verdict per upload, stale and repeated events record nothing."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from avatar import keys
from avatar.intake import ObjectGone, PhotoRepository, PhotoStorage
from avatar.model import Photo, PhotoStatus
from avatar.photos.check import check_photo
from avatar.photos.faces import FaceDetector
from avatar.photos.policy import CheckPolicy, check_size
from avatar.photos.verdict import PhotoVerdict

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class UploadedObject:
    """One S3 ObjectCreated record for an upload, URL-decoded."""

    key: str
    size: int
    version_id: str | None
    sequencer: str


class CheckOutcome(StrEnum):
    """What checking an uploaded object led to."""

    RECORDED = "recorded"
    ALREADY_RECORDED = "already_recorded"
    NOT_REQUESTED = "not_requested"
    GONE = "gone"


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one uploaded object, and the verdict when one was recorded."""

    outcome: CheckOutcome
    verdict: PhotoVerdict | None = None
    photo: Photo | None = None


def ordered_sequencer(sequencer: str) -> str:
    """S3 sequencers compare as hex numbers: left-pad them so string order is event order."""
    return sequencer.upper().rjust(32, "0")


def check_upload(
    uploaded: UploadedObject,
    *,
    photos: PhotoRepository,
    storage: PhotoStorage,
    policy: CheckPolicy,
    detector: FaceDetector,
    now: datetime,
) -> CheckResult:
    """Check an uploaded photo and record its verdict once per upload; repeated and stale events record nothing."""
    upload = keys.parse_upload_key(uploaded.key)
    photo = photos.get_photo(upload.user_id, upload.photo_id)
    if photo is None:
        # Deleted by the user, or never requested through the API: keep nothing of it.
        storage.delete_all_versions(uploaded.key)
        return CheckResult(CheckOutcome.NOT_REQUESTED)
    sequencer = ordered_sequencer(uploaded.sequencer)
    if photo.sequencer is not None and photo.sequencer >= sequencer:
        return CheckResult(CheckOutcome.ALREADY_RECORDED, photo=photo)

    size_reason = check_size(uploaded.size, policy)
    if size_reason is not None:
        verdict = PhotoVerdict(accepted=False, reasons=(size_reason,))
        checked = None
    else:
        try:
            data = storage.read(uploaded.key, uploaded.version_id)
        except ObjectGone:
            return CheckResult(CheckOutcome.GONE)
        others = {
            p.photo_id: p.fingerprint
            for p in photos.list_photos(upload.user_id)
            if p.status is PhotoStatus.ACCEPTED and p.fingerprint and p.photo_id != upload.photo_id
        }
        checked = check_photo(data, policy=policy, detector=detector, accepted_fingerprints=others)
        verdict = checked.verdict

    normalized_key = keys.normalized_photo_key(upload.user_id, upload.photo_id)
    if checked is not None and verdict.accepted:
        storage.write(normalized_key, checked.normalized_jpeg(), "image/jpeg")
    elif photo.normalized_key is not None:
        storage.delete_all_versions(normalized_key)  # a re-upload replaced an accepted photo with a refused one
    recorded = photo.model_copy(
        update={
            "status": PhotoStatus.ACCEPTED if verdict.accepted else PhotoStatus.REFUSED,
            "reasons": verdict.reasons,
            "face": verdict.face,
            "fingerprint": verdict.fingerprint if verdict.accepted else None,
            "normalized_key": normalized_key if verdict.accepted else None,
            "object_version": uploaded.version_id,
            "sequencer": sequencer,
            "checked_at": now,
        }
    )
    if not photos.record_verdict(recorded):
        if photos.get_photo(upload.user_id, upload.photo_id) is None:
            # Deleted, or its user erased, while it was being checked: keep nothing of it.
            storage.delete_all_versions(normalized_key)
            storage.delete_all_versions(uploaded.key)
            return CheckResult(CheckOutcome.NOT_REQUESTED)
        return CheckResult(CheckOutcome.ALREADY_RECORDED, photo=photo)
    logger.info(
        "photo checked",
        extra={
            "user_id": upload.user_id,
            "photo_id": upload.photo_id,
            "reasons": [str(r) for r in verdict.reasons],
        },
    )
    return CheckResult(CheckOutcome.RECORDED, verdict=verdict, photo=recorded)

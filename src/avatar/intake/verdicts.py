"""The verdict of an uploaded photo (S3 ObjectCreated): checked once per upload; repeated and stale events record
nothing, and an object nobody asked for is deleted."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from avatar import object_keys
from avatar.contracts.s3 import UploadedObject
from avatar.intake.ports import PhotoFiles, PhotoRecords
from avatar.photo_check.checker import check_photo
from avatar.photo_check.faces import FaceDetector
from avatar.photo_check.policy import CheckPolicy, check_size
from avatar.photo_check.verdict import PhotoVerdict
from avatar.records import Photo, PhotoStatus

logger = logging.getLogger(__name__)


class UploadOutcome(StrEnum):
    """What an uploaded object led to."""

    RECORDED = "recorded"
    ALREADY_RECORDED = "already_recorded"
    NOT_REQUESTED = "not_requested"
    GONE = "gone"


@dataclass(frozen=True)
class UploadVerdict:
    """The outcome of one uploaded object, and the verdict and photo when one was recorded."""

    outcome: UploadOutcome
    verdict: PhotoVerdict | None = None
    photo: Photo | None = None

    @property
    def accepted(self) -> bool:
        """A newly recorded, accepted photo."""
        return self.outcome is UploadOutcome.RECORDED and self.verdict is not None and self.verdict.accepted


def ordered_sequencer(sequencer: str) -> str:
    """S3 sequencers compare as hex numbers: left-pad them so string order is event order."""
    return sequencer.upper().rjust(32, "0")


def record_upload_verdict(
    uploaded: UploadedObject,
    *,
    photos: PhotoRecords,
    files: PhotoFiles,
    policy: CheckPolicy,
    detector: FaceDetector,
    now: datetime,
) -> UploadVerdict:
    """Check an uploaded photo and record its verdict once per upload (raises InvalidMessage for a key outside the
    upload layout)."""
    upload = object_keys.parse_upload_key(uploaded.key)
    photo = photos.get_photo(upload.user_id, upload.photo_id)
    if photo is None:
        # Deleted by the user, or never requested through the API: keep nothing of it.
        files.delete_all_versions(uploaded.key)
        return UploadVerdict(UploadOutcome.NOT_REQUESTED)
    sequencer = ordered_sequencer(uploaded.sequencer)
    if photo.sequencer is not None and photo.sequencer >= sequencer:
        return UploadVerdict(UploadOutcome.ALREADY_RECORDED, photo=photo)

    size_reason = check_size(uploaded.size, policy)
    if size_reason is not None:
        verdict = PhotoVerdict(accepted=False, reasons=(size_reason,))
        checked = None
    else:
        data = files.read(uploaded.key, uploaded.version_id)
        if data is None:
            return UploadVerdict(UploadOutcome.GONE)
        others = {
            p.photo_id: p.fingerprint
            for p in photos.list_photos(upload.user_id)
            if p.status is PhotoStatus.ACCEPTED and p.fingerprint and p.photo_id != upload.photo_id
        }
        checked = check_photo(data, policy=policy, detector=detector, accepted_fingerprints=others)
        verdict = checked.verdict

    normalized_key = object_keys.normalized_photo_key(upload.user_id, upload.photo_id)
    if checked is not None and verdict.accepted:
        files.write(normalized_key, checked.normalized_jpeg(), "image/jpeg")
    elif photo.normalized_key is not None:
        files.delete_all_versions(normalized_key)  # a re-upload replaced an accepted photo with a refused one
    recorded = photo.model_copy(
        update={
            "status": PhotoStatus.ACCEPTED if verdict.accepted else PhotoStatus.REFUSED,
            "reasons": verdict.reasons,
            "face": verdict.face,
            "fingerprint": verdict.fingerprint if verdict.accepted else None,
            "duplicate_of": verdict.duplicate_of,
            "normalized_key": normalized_key if verdict.accepted else None,
            "object_version": uploaded.version_id,
            "sequencer": sequencer,
            "checked_at": now,
        }
    )
    if not photos.record_verdict(recorded):
        if photos.get_photo(upload.user_id, upload.photo_id) is None:
            # Deleted, or its user erased, while it was being checked: keep nothing of it.
            files.delete_all_versions(normalized_key)
            files.delete_all_versions(uploaded.key)
            return UploadVerdict(UploadOutcome.NOT_REQUESTED)
        return UploadVerdict(UploadOutcome.ALREADY_RECORDED, photo=photo)
    logger.info(
        "photo checked",
        extra={"user_id": upload.user_id, "photo_id": upload.photo_id, "reasons": [str(r) for r in verdict.reasons]},
    )
    return UploadVerdict(UploadOutcome.RECORDED, verdict=verdict, photo=recorded)

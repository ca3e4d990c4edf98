"""The verdict of an uploaded photo (S3 ObjectCreated): checked once per upload; repeated and stale events record
nothing, and an object nobody asked for is deleted."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from avatar import object_keys
from avatar.contracts.s3 import UploadedObject
from avatar.identity.descriptors import decode_descriptor
from avatar.identity.likeness import IdentityPolicy, person_of_set
from avatar.identity.models import FaceModels
from avatar.intake.ports import PhotoFiles, PhotoRecords
from avatar.photo_check.checker import check_photo
from avatar.photo_check.policy import CheckPolicy, check_size
from avatar.photo_check.verdict import PhotoVerdict, Reason
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
    # Accepted photos of the user refused as `different_person` once this one gave the set a person.
    refused_since: tuple[str, ...] = ()

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
    face_models: FaceModels,
    now: datetime,
    identity: IdentityPolicy | None = None,
) -> UploadVerdict:
    """Check an uploaded photo and record its verdict once per upload (raises InvalidMessage for a key outside the
    upload layout).

    An accepted photo is then judged with the user's other accepted photos: once the set shows one person (see
    `person_set_verdicts`), a photo of anyone else is refused as `different_person`, this one or earlier ones."""
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
    outsiders: list[Photo] = []
    if size_reason is not None:
        verdict = PhotoVerdict(accepted=False, reasons=(size_reason,))
        checked = None
    else:
        data = files.read(uploaded.key, uploaded.version_id)
        if data is None:
            return UploadVerdict(UploadOutcome.GONE)
        others = [
            p
            for p in photos.list_photos(upload.user_id)
            if p.status is PhotoStatus.ACCEPTED and p.photo_id != upload.photo_id
        ]
        fingerprints = {p.photo_id: p.fingerprint for p in others if p.fingerprint}
        checked = check_photo(data, policy=policy, face_models=face_models, accepted_fingerprints=fingerprints)
        verdict = checked.verdict
        if verdict.accepted:
            verdict, outsiders = person_set_verdicts(upload.photo_id, verdict, others, identity or IdentityPolicy())

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
            "descriptor": verdict.descriptor if verdict.accepted else None,
            "yaw": verdict.yaw if verdict.accepted else None,
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
    refused_since = tuple(
        outsider.photo_id for outsider in outsiders if _refuse_as_different_person(outsider, photos, files, now)
    )
    return UploadVerdict(UploadOutcome.RECORDED, verdict=verdict, photo=recorded, refused_since=refused_since)


def person_set_verdicts(
    photo_id: str, verdict: PhotoVerdict, accepted_others: list[Photo], identity: IdentityPolicy
) -> tuple[PhotoVerdict, list[Photo]]:
    """Judge an accepted photo with the user's other accepted photos (those with a descriptor).

    While the set has no person (fewer than `identity.min_agreeing` photos agree, or two groups are as large), every
    photo stays accepted. Once it has one, this photo is refused as `different_person` if it is not that person, and
    the earlier accepted photos that are not that person are returned, to be refused too. The person cannot change
    afterwards: a photo of someone else is refused on arrival, so another group never grows."""
    assert verdict.descriptor is not None
    described = {p.photo_id: p for p in accepted_others if p.descriptor}
    descriptors = {i: decode_descriptor(p.descriptor) for i, p in described.items() if p.descriptor}
    descriptors[photo_id] = decode_descriptor(verdict.descriptor)
    person = person_of_set(descriptors, identity)
    if person is None:
        return verdict, []
    if photo_id not in person:
        refused = verdict.model_copy(update={"accepted": False, "reasons": (Reason.DIFFERENT_PERSON,)})
        return refused, []
    return verdict, [p for i, p in described.items() if i not in person]


def _refuse_as_different_person(photo: Photo, photos: PhotoRecords, files: PhotoFiles, now: datetime) -> bool:
    """Turn an accepted photo into a `different_person` refusal unless it changed meanwhile; drop its normalized
    copy (the training reads only accepted photos' copies)."""
    refused = photo.model_copy(
        update={
            "status": PhotoStatus.REFUSED,
            "reasons": (Reason.DIFFERENT_PERSON,),
            "fingerprint": None,
            "descriptor": None,
            "normalized_key": None,
            "checked_at": now,
        }
    )
    if not photos.replace_verdict(refused, expected=photo):
        return False
    if photo.normalized_key:
        files.delete_all_versions(photo.normalized_key)
    logger.info("photo refused as another person", extra={"user_id": photo.user_id, "photo_id": photo.photo_id})
    return True

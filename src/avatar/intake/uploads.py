"""The upload API's use cases: upload slots, the user's photo set, deletion."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from avatar import object_keys
from avatar.errors import AccountErasing, ConcurrentUpdate, PhotoNotFound, TooManyPhotos
from avatar.identity.coverage import Coverage, coverage
from avatar.intake.ports import PhotoFiles, PhotoRecords, PresignedUpload
from avatar.records import PHOTOS_NEEDED, Photo, PhotoStatus

# Reservations that lose a race read the profile again this many times in all before answering 409 (retryable).
RESERVE_ATTEMPTS = 5


@dataclass(frozen=True)
class UploadSlot:
    """A photo id reserved for the user, and where to POST the file."""

    photo_id: str
    upload: PresignedUpload


@dataclass(frozen=True)
class IntakeLimits:
    """Per-user limits of the intake API."""

    max_photos_per_user: int = 40
    max_upload_bytes: int = 15 * 1024 * 1024
    upload_url_ttl: timedelta = timedelta(minutes=5)
    # A pending slot whose upload window closed this long ago is forgotten (DynamoDB TTL deletes it later).
    pending_grace: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class PhotoSet:
    """A user's photos and how many more accepted ones a training needs."""

    photos: list[Photo]
    accepted: int
    needed: int
    coverage: Coverage


def _live_photos(photos: list[Photo], limits: IntakeLimits, now: datetime) -> list[Photo]:
    """Drop pending slots whose upload window is long closed: nothing can arrive for them any more."""
    deadline = now - limits.upload_url_ttl - limits.pending_grace
    return [p for p in photos if p.status is not PhotoStatus.PENDING or p.created_at >= deadline]


def request_uploads(
    user_id: str,
    count: int,
    *,
    photos: PhotoRecords,
    files: PhotoFiles,
    limits: IntakeLimits,
    now: datetime,
) -> list[UploadSlot]:
    """Reserve `count` photo ids for the user and presign one upload for each. The reservation is conditional on the
    profile as read (its photo revision, and no erasure), so concurrent requests cannot pass the limit together and
    no slot is recorded once an erasure has begun; raises TooManyPhotos, AccountErasing or ConcurrentUpdate."""
    for _ in range(RESERVE_ATTEMPTS):
        photos.ensure_user(user_id, now)
        profile = photos.get_profile(user_id)
        if profile is None or profile.erasing:  # None: the erasure forgot the profile just now
            raise AccountErasing("your account is being erased")
        live = _live_photos(photos.list_photos(user_id), limits, now)
        if len(live) + count > limits.max_photos_per_user:
            raise TooManyPhotos(
                f"you have {len(live)} photos and may keep at most {limits.max_photos_per_user}; delete some first"
            )
        reserved = [Photo(user_id=user_id, photo_id=object_keys.new_photo_id(), created_at=now) for _ in range(count)]
        try:
            photos.add_pending_photos(reserved, upload_expires_at=now + limits.upload_url_ttl, seen=profile)
            break
        except ConcurrentUpdate:
            continue  # another reservation (or the erasure) moved the profile: read it again
    else:
        raise ConcurrentUpdate("many uploads were requested at once; try again")
    ttl = int(limits.upload_url_ttl.total_seconds())
    return [
        UploadSlot(
            photo_id=photo.photo_id,
            upload=files.presign_upload(
                object_keys.upload_key(user_id, photo.photo_id), max_bytes=limits.max_upload_bytes, expires_in=ttl
            ),
        )
        for photo in reserved
    ]


def photo_set(user_id: str, *, photos: PhotoRecords, limits: IntakeLimits, now: datetime) -> PhotoSet:
    """The user's photos, oldest first, with the accepted count and how many are still needed."""
    live = sorted(_live_photos(photos.list_photos(user_id), limits, now), key=lambda p: p.created_at)
    accepted = [p for p in live if p.status is PhotoStatus.ACCEPTED]
    turns = coverage([p.yaw for p in accepted if p.yaw is not None])
    return PhotoSet(photos=live, accepted=len(accepted), needed=max(0, PHOTOS_NEEDED - len(accepted)), coverage=turns)


def delete_photo(user_id: str, photo_id: str, *, photos: PhotoRecords, files: PhotoFiles) -> None:
    """Delete a photo of the user: its record, then every version of its original and its normalized copy."""
    if not object_keys.is_valid_photo_id(photo_id) or photos.get_photo(user_id, photo_id) is None:
        raise PhotoNotFound(f"no photo {photo_id}")
    photos.delete_photo(user_id, photo_id)
    files.delete_all_versions(object_keys.upload_key(user_id, photo_id))
    files.delete_all_versions(object_keys.normalized_photo_key(user_id, photo_id))

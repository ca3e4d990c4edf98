"""Photo intake use cases of the API: upload slots, the user's photo set, deletion.

Plain domain code: collaborators come in as the ports below; the AWS adapters live in `avatar.aws`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from avatar import keys
from avatar.model import PHOTOS_NEEDED, Photo, PhotoStatus, UserProfile


class IntakeError(Exception):
    """A request the intake cannot satisfy; `code` is stable and public."""

    code = "intake_error"


class PhotoNotFound(IntakeError):
    """No such photo for this user (including another user's photo)."""

    code = "photo_not_found"


class TooManyPhotos(IntakeError):
    """The user would hold more photos than allowed."""

    code = "too_many_photos"


class AccountErasing(IntakeError):
    """The user asked for erasure: no new photos."""

    code = "account_erasing"


class StoreUnavailable(IntakeError):
    """A store (S3, DynamoDB) failed; the operation may be retried."""

    code = "service_unavailable"


class ObjectGone(IntakeError):
    """The uploaded object version no longer exists (deleted since it was uploaded)."""

    code = "object_gone"


@dataclass(frozen=True)
class PresignedUpload:
    """A browser-ready presigned POST: the form's URL and its fields."""

    url: str
    fields: dict[str, str]


@dataclass(frozen=True)
class UploadSlot:
    """A photo id reserved for the user, and where to POST the file."""

    photo_id: str
    upload: PresignedUpload


class PhotoRepository(Protocol):
    """Where photos and their verdicts are recorded."""

    def get_profile(self, user_id: str) -> UserProfile | None:
        """The user's profile, or None."""
        ...

    def ensure_user(self, user_id: str, now: datetime) -> None:
        """Create the user's profile (state COLLECTING) unless it exists."""

    def add_pending_photos(self, photos: list[Photo], upload_expires_at: datetime) -> None:
        """Record new pending photos; each must not exist yet."""

    def list_photos(self, user_id: str) -> list[Photo]:
        """All photos of the user."""
        ...

    def get_photo(self, user_id: str, photo_id: str) -> Photo | None:
        """One photo, or None."""
        ...

    def record_verdict(self, photo: Photo) -> bool:
        """Store a checked photo unless a newer (or the same) upload was already recorded; False if skipped."""
        ...

    def delete_photo(self, user_id: str, photo_id: str) -> None:
        """Remove the photo record; raises PhotoNotFound."""


class PhotoStorage(Protocol):
    """Where photo files live."""

    def presign_upload(self, key: str, *, max_bytes: int, expires_in: int) -> PresignedUpload:
        """A presigned POST for exactly `key`, image/* content, at most `max_bytes`."""
        ...

    def read(self, key: str, version_id: str | None) -> bytes:
        """The bytes of one object version; raises ObjectGone."""
        ...

    def write(self, key: str, data: bytes, content_type: str) -> None:
        """Store an object."""

    def delete_all_versions(self, key: str) -> None:
        """Remove every version of the object (and its delete markers)."""


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


def _live_photos(photos: list[Photo], limits: IntakeLimits, now: datetime) -> list[Photo]:
    """Drop pending slots whose upload window is long closed: nothing can arrive for them any more."""
    deadline = now - limits.upload_url_ttl - limits.pending_grace
    return [p for p in photos if p.status is not PhotoStatus.PENDING or p.created_at >= deadline]


def request_uploads(
    user_id: str,
    count: int,
    *,
    photos: PhotoRepository,
    storage: PhotoStorage,
    limits: IntakeLimits,
    now: datetime,
) -> list[UploadSlot]:
    """Reserve `count` photo ids for the user and presign one upload for each."""
    profile = photos.get_profile(user_id)
    if profile is not None and profile.erasing_since is not None:
        raise AccountErasing("your account is being erased")
    live = _live_photos(photos.list_photos(user_id), limits, now)
    if len(live) + count > limits.max_photos_per_user:
        raise TooManyPhotos(
            f"you have {len(live)} photos and may keep at most {limits.max_photos_per_user}; delete some first"
        )
    photos.ensure_user(user_id, now)
    reserved = [Photo(user_id=user_id, photo_id=keys.new_photo_id(), created_at=now) for _ in range(count)]
    photos.add_pending_photos(reserved, upload_expires_at=now + limits.upload_url_ttl)
    ttl = int(limits.upload_url_ttl.total_seconds())
    return [
        UploadSlot(
            photo_id=photo.photo_id,
            upload=storage.presign_upload(
                keys.upload_key(user_id, photo.photo_id), max_bytes=limits.max_upload_bytes, expires_in=ttl
            ),
        )
        for photo in reserved
    ]


def photo_set(user_id: str, *, photos: PhotoRepository, limits: IntakeLimits, now: datetime) -> PhotoSet:
    """The user's photos, oldest first, with the accepted count and how many are still needed."""
    live = sorted(_live_photos(photos.list_photos(user_id), limits, now), key=lambda p: p.created_at)
    accepted = sum(1 for p in live if p.status is PhotoStatus.ACCEPTED)
    return PhotoSet(photos=live, accepted=accepted, needed=max(0, PHOTOS_NEEDED - accepted))


def delete_photo(user_id: str, photo_id: str, *, photos: PhotoRepository, storage: PhotoStorage) -> None:
    """Delete a photo of the user: its record, then every version of its original and its normalized copy."""
    if not keys.is_valid_photo_id(photo_id) or photos.get_photo(user_id, photo_id) is None:
        raise PhotoNotFound(f"no photo {photo_id}")
    photos.delete_photo(user_id, photo_id)
    storage.delete_all_versions(keys.upload_key(user_id, photo_id))
    storage.delete_all_versions(keys.normalized_photo_key(user_id, photo_id))

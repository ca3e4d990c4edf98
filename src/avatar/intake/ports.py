"""What the intake needs from the outside: the user's records and the photo files."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from avatar.records import Photo, UserProfile


@dataclass(frozen=True)
class PresignedUpload:
    """A browser-ready presigned POST: the form's URL and its fields."""

    url: str
    fields: dict[str, str]


class PhotoRecords(Protocol):
    """Where photos and their verdicts are recorded."""

    def get_profile(self, user_id: str) -> UserProfile | None:
        """The user's profile, or None."""
        ...

    def ensure_user(self, user_id: str, now: datetime) -> None:
        """Create the user's profile (state COLLECTING) unless it exists."""

    def add_pending_photos(self, photos: list[Photo], upload_expires_at: datetime, *, seen: UserProfile) -> None:
        """Record new pending photos (each must not exist yet) and move the profile's photo revision on from
        `seen`'s, in one transaction; raises ConcurrentUpdate when the revision moved or the user is being erased."""

    def list_photos(self, user_id: str) -> list[Photo]:
        """All photos of the user."""
        ...

    def get_photo(self, user_id: str, photo_id: str) -> Photo | None:
        """One photo, or None."""
        ...

    def record_verdict(self, photo: Photo) -> bool:
        """Store a checked photo if it still exists and no same-or-newer upload of it was recorded (its `sequencer`);
        False when skipped."""
        ...

    def replace_verdict(self, photo: Photo, *, expected: Photo) -> bool:
        """Store `photo` over `expected` only if the record still holds the upload `expected` has (its `sequencer`),
        accepted or not as `expected` was; False when it changed or is gone."""
        ...

    def delete_photo(self, user_id: str, photo_id: str) -> None:
        """Remove the photo record; raises PhotoNotFound."""


class PhotoFiles(Protocol):
    """Where photo files live (a versioned bucket)."""

    def presign_upload(self, key: str, *, max_bytes: int, expires_in: int) -> PresignedUpload:
        """A presigned POST for exactly `key`, image/* content, at most `max_bytes`."""
        ...

    def read(self, key: str, version_id: str | None) -> bytes | None:
        """The bytes of one object version; None when it is gone."""
        ...

    def write(self, key: str, data: bytes, content_type: str) -> None:
        """Store an object."""

    def delete_all_versions(self, key: str) -> None:
        """Remove every version of exactly `key` (and its delete markers)."""

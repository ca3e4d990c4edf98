"""What erasure needs from the outside: the user's records, every object stored for them, and the serving side."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from avatar.records import TrainingJob, UserProfile


class UserRecords(Protocol):
    """The user's records in the table."""

    def mark_erasing(self, user_id: str, now: datetime) -> None:
        """Flag the profile (created if missing) so nothing routes to or starts for the user."""

    def get_profile(self, user_id: str) -> UserProfile | None:
        """The profile, or None."""
        ...

    def user_jobs(self, user_id: str) -> list[TrainingJob]:
        """Every job of the user."""
        ...

    def delete_user_records(self, user_id: str) -> int:
        """Delete every record but the profile; returns how many."""
        ...

    def forget_user(self, user_id: str) -> None:
        """Delete the erasing profile, the last record."""


class ServingSide(Protocol):
    """Where the user's models may be loaded: the multi-model endpoint."""

    def forget(self, artifact_key: str) -> bool:
        """Make the model of this artifact drop its LoRA, delete its files and unload; True when it was loaded.
        Raises ServiceUnavailable when the endpoint cannot be reached for now."""
        ...


class UserFiles(Protocol):
    """Every object the system stored for a user."""

    def delete_everything_under(self, prefix: str) -> int:
        """Delete every version and delete marker under `prefix`; returns how many."""
        ...

    def delete_uri(self, uri: str) -> None:
        """Delete every version of one object named by URI (objects of other buckets are not ours)."""

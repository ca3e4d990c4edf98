"""What training jobs need from the outside: the records (conditional writes), the bucket, the training endpoint.

Records move by `avatar.states`: a port method that takes a transition writes only if the stored state may leave by
it, and writes only what differs between the record before and after.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from avatar.contracts.training import TrainingProgress
from avatar.records import IdempotencyKey, KeyedJob, ModelVersion, Photo, TrainingJob, UserProfile
from avatar.states import Transition


@dataclass(frozen=True)
class AsyncInvocation:
    """Where the asynchronous endpoint will put the result or the failure."""

    output_location: str
    failure_location: str | None


class JobRecords(Protocol):
    """Users' profiles, photos, jobs and model versions."""

    def get_profile(self, user_id: str) -> UserProfile | None:
        """The user's profile, or None."""
        ...

    def ensure_user(self, user_id: str, now: datetime) -> None:
        """Create the profile in COLLECTING unless it exists."""

    def list_photos(self, user_id: str) -> list[Photo]:
        """All photos of the user."""
        ...

    def create_job(
        self, profile: UserProfile, queued: UserProfile, job: TrainingJob, *, idempotency_key: IdempotencyKey | None
    ) -> None:
        """Record the job and move the profile from `profile` to `queued` (the QUEUE transition, at its revision,
        unless the user is being erased), with the Idempotency-Key, in one transaction; raises ConcurrentUpdate."""

    def job_for_idempotency_key(self, user_id: str, idempotency_key: str, now: datetime) -> KeyedJob | None:
        """The job an earlier request with this key created (within a day) and that request's digest, or None."""
        ...

    def get_job(self, user_id: str, job_id: str) -> TrainingJob | None:
        """One job, or None."""
        ...

    def claim_job(self, job: TrainingJob, *, until: datetime, now: datetime) -> bool:
        """Take the right to invoke a QUEUED job until `until`, unless another claim is still valid."""
        ...

    def release_claim(self, job: TrainingJob) -> None:
        """Give the claim back after a transient failure."""

    def move_job(self, job: TrainingJob, moved: TrainingJob, transition: Transition) -> bool:
        """Write `moved` over `job` if the stored job may leave its state by `transition`; False otherwise."""
        ...

    def finish_ready(self, job: TrainingJob, ready: TrainingJob, version: ModelVersion) -> bool:
        """SUCCEED: write `ready` and record the version, in one transaction, unless the job may not leave its state
        that way or the user is being erased; False then."""
        ...

    def move_profile(self, profile: UserProfile, moved: UserProfile, transition: Transition | None) -> bool:
        """Write `moved` over `profile` if the stored one is still at `profile.revision`, the user is not being erased
        and (with a transition) the state may leave by it; False otherwise."""
        ...

    def mark_announced(self, job: TrainingJob) -> None:
        """Note that the job's outcome event was published."""

    def overdue_jobs(self, now: datetime) -> list[TrainingJob]:
        """In-flight jobs whose deadline passed."""
        ...


class TrainingFiles(Protocol):
    """The bucket as the orchestration sees it; failures raise StorageUnavailable (retryable)."""

    def write_manifest(self, key: str, body: bytes) -> str:
        """Store a manifest; returns its s3:// URI."""
        ...

    def read_result(self, uri: str) -> bytes | None:
        """An asynchronous output or failure object of this bucket; None when missing or elsewhere."""
        ...

    def exists(self, key: str) -> bool:
        """Whether an object exists."""
        ...

    def read_progress(self, key: str) -> TrainingProgress | None:
        """The progress the training job published, or None (missing or unreadable)."""
        ...

    def delete_everything_under(self, prefix: str) -> int:
        """Delete every version and delete marker under `prefix`; returns how many."""
        ...

    def delete_object(self, key: str) -> None:
        """Delete every version of exactly `key`."""

    def delete_uri(self, uri: str) -> None:
        """Delete every version of one object named by URI (objects of other buckets are not ours)."""


class TrainingEndpoint(Protocol):
    """The asynchronous training endpoint."""

    def invoke(self, *, job_id: str, user_id: str, input_location: str, timeout_seconds: int) -> AsyncInvocation:
        """Queue one invocation; raises TrainingEndpointBusy (retry) or TrainingRefused (for good)."""
        ...

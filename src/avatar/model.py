"""The data model: a user's photos, training jobs and model versions, and the state machine of their model."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from avatar.photos.verdict import FaceBox, Reason

PHOTOS_NEEDED = 10


class ModelState(StrEnum):
    """Where a user's avatar model stands."""

    COLLECTING = "COLLECTING"
    QUEUED = "QUEUED"
    TRAINING = "TRAINING"
    READY = "READY"
    FAILED = "FAILED"


# Every legal move. READY and FAILED may start a new training (a new version); nothing else moves backwards.
MODEL_TRANSITIONS: dict[ModelState, frozenset[ModelState]] = {
    ModelState.COLLECTING: frozenset({ModelState.QUEUED}),
    ModelState.QUEUED: frozenset({ModelState.TRAINING, ModelState.FAILED}),
    ModelState.TRAINING: frozenset({ModelState.READY, ModelState.FAILED}),
    ModelState.READY: frozenset({ModelState.QUEUED}),
    ModelState.FAILED: frozenset({ModelState.QUEUED}),
}


def states_leading_to(target: ModelState) -> frozenset[ModelState]:
    """The states from which `target` may be entered."""
    return frozenset(state for state, targets in MODEL_TRANSITIONS.items() if target in targets)


class PhotoStatus(StrEnum):
    """A photo's check status as the API reports it."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    REFUSED = "refused"


class Photo(BaseModel):
    """One photo of a user, from the upload request to its verdict."""

    model_config = ConfigDict(frozen=True)

    user_id: str
    photo_id: str
    status: PhotoStatus = PhotoStatus.PENDING
    reasons: tuple[Reason, ...] = ()
    face: FaceBox | None = None
    fingerprint: str | None = None
    normalized_key: str | None = None
    object_version: str | None = None
    sequencer: str | None = None
    created_at: datetime
    checked_at: datetime | None = None


class UserProfile(BaseModel):
    """The user's model pointer: its state, the optimistic-lock counter and the current version."""

    model_config = ConfigDict(frozen=True)

    user_id: str
    state: ModelState = ModelState.COLLECTING
    revision: int = 0
    current_version: int | None = None
    active_job_id: str | None = None
    jobs_started: int = 0
    erasing_since: datetime | None = None
    created_at: datetime
    updated_at: datetime


IN_FLIGHT = frozenset({ModelState.QUEUED, ModelState.TRAINING})


class TrainingJob(BaseModel):
    """One fine-tune of a user's model: QUEUED -> TRAINING -> READY | FAILED; its first outcome is final."""

    model_config = ConfigDict(frozen=True)

    user_id: str
    job_id: str
    version: int
    state: ModelState
    options: dict[str, Any] = {}
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    # When the sweeper gives up on it: queued too long, or past the invocation timeout plus a margin.
    deadline_at: datetime
    failure_reason: str | None = None
    output_location: str | None = None
    failure_location: str | None = None
    artifact_key: str | None = None
    announced: bool = False

    @property
    def in_flight(self) -> bool:
        """Queued or training."""
        return self.state in IN_FLIGHT


class ModelVersion(BaseModel):
    """A trained, immutable adapter artifact of a user (`models/<user>/<version>.tar.gz`)."""

    model_config = ConfigDict(frozen=True)

    user_id: str
    version: int
    job_id: str
    artifact_key: str
    created_at: datetime

"""The records the system keeps of a user: photos and their verdicts, the profile (the user's model), training jobs
and model versions. Plain, frozen values; `avatar.states` says how the model and its jobs may move."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from avatar.contracts.training import TrainingPlan
from avatar.photo_check.verdict import FaceBox, Reason
from avatar.states import IN_FLIGHT, ModelState

PHOTOS_NEEDED = 10  # accepted photos that make a set ready to train


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
    duplicate_of: str | None = None  # the accepted photo this one repeats (reason `duplicate`)
    descriptor: str | None = None  # an accepted photo's face descriptor (avatar.identity.descriptors)
    yaw: float | None = None  # an accepted photo's head turn in degrees, positive to the person's left
    normalized_key: str | None = None
    object_version: str | None = None
    sequencer: str | None = None
    created_at: datetime
    checked_at: datetime | None = None

    @property
    def usable(self) -> bool:
        """Accepted, with the normalized copy a training reads."""
        return self.status is PhotoStatus.ACCEPTED and self.normalized_key is not None


def accepted_photos(photos: list[Photo]) -> list[Photo]:
    """The photos a training may use."""
    return [photo for photo in photos if photo.usable]


class UserProfile(BaseModel):
    """The user's model: its state, the optimistic-lock counter, the version generate requests use, and whether the
    user asked for erasure."""

    model_config = ConfigDict(frozen=True)

    user_id: str
    state: ModelState = ModelState.COLLECTING
    revision: int = 0
    current_version: int | None = None
    active_job_id: str | None = None
    jobs_started: int = 0
    # Moves with every reservation of upload slots, which is conditional on it: the photo limit holds when many
    # requests reserve at once (a stale count cannot be written).
    photo_revision: int = 0
    erasing_since: datetime | None = None
    created_at: datetime
    updated_at: datetime

    @property
    def erasing(self) -> bool:
        """The user asked for erasure: nothing routes to or starts for them any more."""
        return self.erasing_since is not None

    def is_newer(self, version: int) -> bool:
        """Whether `version` would move the current-model pointer forward (it never moves back)."""
        return self.current_version is None or version > self.current_version


class TrainingJob(BaseModel):
    """One fine-tune of a user's model; it moves by `avatar.states` and its first outcome is final."""

    model_config = ConfigDict(frozen=True)

    user_id: str
    job_id: str
    version: int
    state: ModelState
    plan: TrainingPlan  # the deployment's defaults with the user's choices, validated when it was requested
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


class IdempotencyKey(BaseModel):
    """A client's Idempotency-Key with a digest of the request it came with: the key answers again only for the same
    request."""

    model_config = ConfigDict(frozen=True)

    key: str
    request_sha256: str


class KeyedJob(BaseModel):
    """The job an Idempotency-Key's first request created, and that request's digest."""

    model_config = ConfigDict(frozen=True)

    job_id: str
    request_sha256: str


def new_job_id() -> str:
    """A fresh job id (also the asynchronous InferenceId and the model's version key)."""
    return uuid.uuid4().hex


class ModelVersion(BaseModel):
    """A trained, immutable model of a user (`models/<user>/<job id>.tar.gz`)."""

    model_config = ConfigDict(frozen=True)

    user_id: str
    version: int
    job_id: str
    artifact_key: str
    created_at: datetime


class GeneratedAvatar(BaseModel):
    """One generated image in the user's history (`outputs/<user>/<request id>/<index>-<seed>.png`): what made it,
    so the person can find it again and make it again with its seed."""

    model_config = ConfigDict(frozen=True)

    user_id: str
    request_id: str
    index: int
    image_key: str
    seed: int
    prompt: str
    negative_prompt: str = ""
    width: int | None = None
    height: int | None = None
    likeness: float | None = None
    face_found: bool | None = None
    created_at: datetime
    style: str | None = None  # the catalog style that made it; None: the person's own prompt
    starter_pack: bool = False  # made for the person's starter pack when their model became ready


class StarterPack(BaseModel):
    """A model version's starter pack as it is made (`PACK#<version>` in the user's partition): which styles are
    done, what they gave, who is making it (a lease, so a duplicate event waits) and whether it was announced."""

    model_config = ConfigDict(frozen=True)

    user_id: str
    model_version: int
    started_at: datetime
    revision: int = 0
    holder: str | None = None  # the invocation making it
    lease_until: datetime | None = None
    styles_done: tuple[str, ...] = ()
    styles_failed: tuple[str, ...] = ()  # the model refused them (not retried: it would refuse again)
    images: int = 0
    withheld: int = 0
    announced_at: datetime | None = None

    def held_by_another(self, holder: str, now: datetime) -> bool:
        """Whether another invocation holds an unexpired lease on the pack."""
        return self.holder not in (None, holder) and self.lease_until is not None and self.lease_until > now

"""Training jobs from request to readiness: start, invoke the asynchronous endpoint, record the result, sweep.

Plain domain code. The job record is the single source of truth and every move is a conditional write, so a repeated
or late message changes nothing: a job is invoked at most once per claim, its first outcome is final, and a user's
current model only moves to a newer version. Collaborators are the ports below; `avatar.aws` holds the adapters.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from avatar import keys
from avatar.contracts import (
    AsyncInferenceNotification,
    AvatarEvent,
    AvatarModelFailed,
    AvatarModelReady,
    StartTraining,
)
from avatar.model import PHOTOS_NEEDED, ModelState, ModelVersion, Photo, PhotoStatus, TrainingJob, UserProfile
from avatar.training.manifest import TrainingManifest
from avatar.training.options import TrainingOptions

logger = logging.getLogger(__name__)


class ModelsError(Exception):
    """A request about the user's model that cannot be satisfied; `code` is stable and public."""

    code = "models_error"


class NotEnoughPhotos(ModelsError):
    """Fewer accepted photos than a training needs."""

    code = "not_enough_photos"


class TrainingInFlight(ModelsError):
    """A job is already queued or training."""

    code = "training_in_flight"


class AccountErasing(ModelsError):
    """The user asked for erasure; nothing new starts."""

    code = "account_erasing"


class QueueUnavailable(ModelsError):
    """The job could not be queued; it was marked FAILED and may be requested again."""

    code = "service_unavailable"


class JobConflict(Exception):
    """Another writer moved the profile or the job first (the conditional write failed)."""


class RetryLater(Exception):
    """A transient failure: leave the message on the queue so it comes back after its visibility timeout."""


class EndpointThrottled(RetryLater):
    """The asynchronous endpoint throttled or failed with a 5xx."""


class EndpointRefused(Exception):
    """The asynchronous endpoint refused the invocation for good (validation error, unknown endpoint)."""


class InvalidNotification(Exception):
    """A notification that names no job of ours (a poison message)."""


class TrainingRequest(BaseModel):
    """Options a user may set for a fine-tune (everything else comes from the deployment's defaults)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    steps: int | None = Field(None, ge=1, le=1500, description="optimizer steps (1-1500; about 0.2 s each on a GPU)")
    rank: int | None = Field(None, ge=4, le=64, description="LoRA rank (4-64); the adapter grows with it")
    learning_rate: float | None = Field(None, ge=1e-6, le=1e-3)
    train_text_encoder: bool | None = Field(None, description="also adapt the text encoder (slower, larger)")
    token: str | None = Field(
        None, pattern=r"^[a-z][a-z0-9]{2,15}$", description="the identifier word prompts use for the user"
    )
    seed: int | None = Field(None, ge=0, le=2**32 - 1)
    backgrounds_per_photo: int | None = Field(None, ge=0, le=4, description="generated-background copies per photo")


class JobDefaults(BaseModel):
    """The deployment's training defaults (the local stack sets tiny ones)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    options: TrainingOptions = TrainingOptions()
    backgrounds_per_photo: int = Field(1, ge=0, le=4)
    min_photos: int = Field(6, ge=1, le=50)


@dataclass(frozen=True)
class Timeouts:
    """How long a job may stay queued, and how long the endpoint may train (SageMaker's limit is 3600 s)."""

    queued: timedelta = timedelta(minutes=30)
    invocation_seconds: int = 3600
    margin: timedelta = timedelta(minutes=15)
    claim: timedelta = timedelta(minutes=2)

    @property
    def training(self) -> timedelta:
        """How long after the invocation the sweeper gives up."""
        return timedelta(seconds=self.invocation_seconds) + self.margin


@dataclass(frozen=True)
class AsyncInvocation:
    """Where the asynchronous endpoint will put the result or the failure."""

    output_location: str
    failure_location: str | None


class JobStore(Protocol):
    """Users' profiles, photos, jobs and model versions (conditional writes)."""

    def get_profile(self, user_id: str) -> UserProfile | None:
        """The user's profile, or None."""
        ...

    def ensure_user(self, user_id: str, now: datetime) -> None:
        """Create the profile in COLLECTING unless it exists."""

    def list_photos(self, user_id: str) -> list[Photo]:
        """All photos of the user."""
        ...

    def create_job(self, profile: UserProfile, job: TrainingJob, *, idempotency_key: str | None) -> None:
        """Record the job and move the profile to QUEUED at its revision; raises JobConflict."""

    def idempotent_job(self, user_id: str, idempotency_key: str) -> str | None:
        """The job an earlier request with this key created, or None."""
        ...

    def get_job(self, user_id: str, job_id: str) -> TrainingJob | None:
        """One job, or None."""
        ...

    def claim_job(self, job: TrainingJob, *, until: datetime, now: datetime) -> bool:
        """Take the right to invoke a QUEUED job until `until`, unless another claim is still valid."""
        ...

    def release_claim(self, job: TrainingJob) -> None:
        """Give the claim back after a transient failure."""

    def mark_training(
        self, job: TrainingJob, invocation: AsyncInvocation, *, now: datetime, deadline: datetime
    ) -> bool:
        """QUEUED -> TRAINING for the job and, when it is the active job, the profile."""
        ...

    def finish_ready(self, job: TrainingJob, version: ModelVersion, *, now: datetime) -> bool:
        """In flight -> READY with the version recorded, atomically; False if the job was not in flight."""
        ...

    def finish_failed(self, job: TrainingJob, reason: str, *, now: datetime) -> bool:
        """In flight -> FAILED with the reason; False if the job was not in flight."""
        ...

    def settle_profile(self, job: TrainingJob, *, now: datetime) -> bool:
        """Move the profile to the job's outcome when it is the active job; READY moves the current version forward
        only. True when the job's version became current."""
        ...

    def mark_announced(self, job: TrainingJob) -> None:
        """Note that the job's outcome event was published."""

    def overdue_jobs(self, now: datetime) -> list[TrainingJob]:
        """In-flight jobs whose deadline passed."""
        ...


class TrainingFiles(Protocol):
    """The bucket as the orchestration sees it."""

    def write_manifest(self, key: str, body: bytes) -> str:
        """Store a manifest; returns its s3:// URI."""
        ...

    def read_result(self, uri: str) -> bytes | None:
        """An asynchronous output or failure object; None when missing."""
        ...

    def exists(self, key: str) -> bool:
        """Whether an object exists."""
        ...

    def read_progress(self, key: str) -> dict[str, Any] | None:
        """The progress the trainer published, or None."""
        ...

    def delete_everything_under(self, prefix: str, *, exact: bool = False) -> int:
        """Delete every version of every object under `prefix` (only the key itself with `exact`)."""
        ...

    def delete_uri(self, uri: str) -> None:
        """Delete every version of one object named by URI (ignoring other buckets)."""


class TrainingEndpoint(Protocol):
    """The asynchronous training endpoint."""

    def invoke(self, *, job_id: str, user_id: str, input_location: str, timeout_seconds: int) -> AsyncInvocation:
        """Queue one inference; raises EndpointThrottled (retry) or EndpointRefused (permanent)."""
        ...


class TrainingQueue(Protocol):
    """The orchestrator's queue."""

    def send(self, message: BaseModel) -> None:
        """Send one message; raises QueueUnavailable."""


class EventPublisher(Protocol):
    """The event bus other systems subscribe to."""

    def publish(self, event: AvatarEvent) -> None:
        """Publish one event; raises RetryLater when the bus refused it."""


def new_job_id() -> str:
    """A fresh job id (also the asynchronous InferenceId and the model's version key)."""
    return uuid.uuid4().hex


def accepted_photos(photos: list[Photo]) -> list[Photo]:
    """The photos a training may use."""
    return [p for p in photos if p.status is PhotoStatus.ACCEPTED and p.normalized_key]


def request_training(
    user_id: str,
    request: TrainingRequest,
    *,
    jobs: JobStore,
    queue: TrainingQueue,
    timeouts: Timeouts,
    now: datetime,
    idempotency_key: str | None = None,
    only_first: bool = False,
) -> TrainingJob:
    """Record a QUEUED job and queue it; raises NotEnoughPhotos, TrainingInFlight, AccountErasing, QueueUnavailable.

    `only_first` starts nothing once the user has had a model or a job (the automatic start at the 10th photo).
    """
    replay = _replayed_job(jobs, user_id, idempotency_key)
    if replay is not None:
        return replay
    accepted = len(accepted_photos(jobs.list_photos(user_id)))
    if accepted < PHOTOS_NEEDED:
        raise NotEnoughPhotos(f"{accepted} accepted photos; a training needs {PHOTOS_NEEDED}")
    jobs.ensure_user(user_id, now)
    profile = jobs.get_profile(user_id)
    assert profile is not None  # ensured just above
    _check_can_start(profile)
    if only_first and profile.jobs_started:
        raise TrainingInFlight("a model was already requested")
    job = TrainingJob(
        user_id=user_id,
        job_id=new_job_id(),
        version=profile.jobs_started + 1,
        state=ModelState.QUEUED,
        options=request.model_dump(exclude_none=True),  # the deployment's defaults are added when it starts
        created_at=now,
        deadline_at=now + timeouts.queued,
    )
    try:
        jobs.create_job(profile, job, idempotency_key=idempotency_key)
    except JobConflict:
        replay = _replayed_job(jobs, user_id, idempotency_key)  # a concurrent retry with the same key won
        if replay is not None:
            return replay
        _check_can_start(jobs.get_profile(user_id))
        raise TrainingInFlight("another request changed your model at the same time; try again") from None
    try:
        queue.send(StartTraining(user_id=job.user_id, job_id=job.job_id))
    except QueueUnavailable:
        finish_failed(job, "the training could not be queued; please try again", jobs=jobs, now=now)
        raise
    logger.info("training queued", extra={"user_id": user_id, "job_id": job.job_id, "model_version": job.version})
    return job


def _replayed_job(jobs: JobStore, user_id: str, idempotency_key: str | None) -> TrainingJob | None:
    """The job an earlier request with the same Idempotency-Key created, if any."""
    earlier = jobs.idempotent_job(user_id, idempotency_key) if idempotency_key is not None else None
    return jobs.get_job(user_id, earlier) if earlier else None


def _check_can_start(profile: UserProfile | None) -> None:
    if profile is None:
        return
    if profile.erasing_since is not None:
        raise AccountErasing("your account is being erased")
    if profile.state in (ModelState.QUEUED, ModelState.TRAINING):
        raise TrainingInFlight(f"a training is already {profile.state.value.lower()} (job {profile.active_job_id})")


@dataclass(frozen=True)
class StartOutcome:
    """What a start message led to."""

    outcome: str  # "invoked" | "skipped" | "failed"
    job: TrainingJob | None = None


def start_training(
    user_id: str,
    job_id: str,
    *,
    jobs: JobStore,
    files: TrainingFiles,
    endpoint: TrainingEndpoint,
    events: EventPublisher,
    defaults: JobDefaults,
    timeouts: Timeouts,
    now: datetime,
) -> StartOutcome:
    """Write the manifest and invoke the endpoint once for a QUEUED job; repeated deliveries change nothing."""
    job = jobs.get_job(user_id, job_id)
    profile = jobs.get_profile(user_id)
    if job is None or job.state is not ModelState.QUEUED or profile is None or profile.erasing_since is not None:
        # Finished, failed, erased or being erased: a repeated or late delivery starts nothing.
        logger.info("start skipped", extra={"user_id": user_id, "job_id": job_id, "state": job and job.state})
        return StartOutcome("skipped", job)
    if not jobs.claim_job(job, until=now + timeouts.claim, now=now):
        latest = jobs.get_job(user_id, job_id)
        if latest is not None and latest.state is ModelState.QUEUED:
            raise RetryLater(f"job {job_id} is being started by another delivery")
        return StartOutcome("skipped", latest)
    photos = accepted_photos(jobs.list_photos(user_id))
    if len(photos) < PHOTOS_NEEDED:
        reason = f"only {len(photos)} accepted photos are left; a training needs {PHOTOS_NEEDED}"
        finish_failed(job, reason, jobs=jobs, events=events, now=now)
        return StartOutcome("failed", job)
    chosen = dict(job.options)
    backgrounds = int(chosen.pop("backgrounds_per_photo", defaults.backgrounds_per_photo))
    manifest = TrainingManifest(
        user_id=user_id,
        job_id=job_id,
        photo_keys=sorted(str(p.normalized_key) for p in photos)[:50],
        options=TrainingOptions.model_validate(defaults.options.model_dump() | chosen),
        backgrounds_per_photo=backgrounds,
        min_photos=defaults.min_photos,
    )
    try:
        location = files.write_manifest(
            keys.training_manifest_key(user_id, job_id), manifest.model_dump_json().encode()
        )
        invocation = endpoint.invoke(
            job_id=job_id, user_id=user_id, input_location=location, timeout_seconds=timeouts.invocation_seconds
        )
    except RetryLater:
        jobs.release_claim(job)
        raise
    except EndpointRefused as exc:
        reason = "the training service refused the job; please try again later"
        finish_failed(job, reason, jobs=jobs, events=events, now=now)
        logger.error("endpoint refused job", extra={"job_id": job_id, "error": str(exc)})
        return StartOutcome("failed", job)
    jobs.mark_training(job, invocation, now=now, deadline=now + timeouts.training)
    logger.info("training invoked", extra={"user_id": user_id, "job_id": job_id, "output": invocation.output_location})
    return StartOutcome("invoked", job)


def finish_failed(
    job: TrainingJob,
    reason: str,
    *,
    jobs: JobStore,
    now: datetime,
    events: EventPublisher | None = None,
) -> bool:
    """Mark an in-flight job FAILED (its first outcome wins), settle the profile, announce it when a bus is given."""
    if not jobs.finish_failed(job, reason, now=now):
        latest = jobs.get_job(job.user_id, job.job_id)
        if latest is None or latest.state is not ModelState.FAILED:
            return False
        job = latest
    else:
        job = job.model_copy(update={"state": ModelState.FAILED, "failure_reason": reason, "finished_at": now})
    jobs.settle_profile(job, now=now)
    if events is not None and not job.announced:
        events.publish(
            AvatarModelFailed(
                event_id=f"{job.job_id}:failed",
                user_id=job.user_id,
                occurred_at=job.finished_at or now,
                job_id=job.job_id,
                model_version=job.version,
                reason=job.failure_reason or reason,
            )
        )
        jobs.mark_announced(job)
    logger.info("training failed", extra={"user_id": job.user_id, "job_id": job.job_id, "reason": reason})
    return True


@dataclass(frozen=True)
class ResultOutcome:
    """What a notification led to."""

    outcome: str  # "ready" | "failed" | "duplicate" | "ignored" | "orphan_removed"
    job: TrainingJob | None = None


def record_training_result(
    notification: AsyncInferenceNotification,
    *,
    bucket: str,
    jobs: JobStore,
    files: TrainingFiles,
    events: EventPublisher,
    now: datetime,
) -> ResultOutcome:
    """Record what the asynchronous endpoint reports: a READY version, or FAILED with a reason a user can read."""
    try:
        manifest_bucket, manifest_key = keys.split_s3_uri(notification.request_parameters.input_location)
        named = keys.parse_manifest_key(manifest_key)
    except keys.InvalidKey as exc:
        raise InvalidNotification(str(exc)) from exc
    if manifest_bucket != bucket or named.job_id != notification.inference_id:
        raise InvalidNotification(f"notification {notification.inference_id} is not about a job of this service")
    job = jobs.get_job(named.user_id, named.job_id)
    if job is None:
        remove_orphaned_result(named.user_id, named.job_id, notification, files=files)
        return ResultOutcome("orphan_removed")
    if notification.invocation_status == "Failed":
        reason = user_facing_failure(notification, files, recorded_location=job.failure_location)
        if job.state is ModelState.READY:
            logger.warning("failure after success ignored", extra={"job_id": job.job_id})
            return ResultOutcome("ignored", job)
        duplicate = job.state is ModelState.FAILED and job.announced
        if duplicate:
            return ResultOutcome("duplicate", job)
        finish_failed(job, reason, jobs=jobs, events=events, now=now)
        logger.warning(
            "training endpoint failure",
            extra={"job_id": job.job_id, "failure_reason": notification.failure_reason},
        )
        return ResultOutcome("failed", jobs.get_job(job.user_id, job.job_id))
    if job.state is ModelState.FAILED:
        logger.warning("success after failure ignored: the first outcome is final", extra={"job_id": job.job_id})
        return ResultOutcome("ignored", job)
    if job.state is ModelState.READY and job.announced:
        return ResultOutcome("duplicate", job)
    problem, artifact_key, seconds = _check_output(job, notification, files)
    if problem is not None:
        finish_failed(job, problem, jobs=jobs, events=events, now=now)
        return ResultOutcome("failed", jobs.get_job(job.user_id, job.job_id))
    assert artifact_key is not None
    version = ModelVersion(
        user_id=job.user_id, version=job.version, job_id=job.job_id, artifact_key=artifact_key, created_at=now
    )
    if not jobs.finish_ready(job, version, now=now):
        latest = jobs.get_job(job.user_id, job.job_id)
        if latest is None:
            remove_orphaned_result(named.user_id, named.job_id, notification, files=files)
            return ResultOutcome("orphan_removed")
        if latest.state is not ModelState.READY:
            return ResultOutcome("ignored", latest)
    job = job.model_copy(update={"state": ModelState.READY, "finished_at": now, "artifact_key": artifact_key})
    is_current = jobs.settle_profile(job, now=now)
    events.publish(
        AvatarModelReady(
            event_id=f"{job.job_id}:ready",
            user_id=job.user_id,
            occurred_at=now,
            job_id=job.job_id,
            model_version=job.version,
            artifact_key=artifact_key,
            is_current=is_current,
            training_seconds=seconds,
        )
    )
    jobs.mark_announced(job)
    logger.info("model ready", extra={"user_id": job.user_id, "job_id": job.job_id, "model_version": job.version})
    return ResultOutcome("ready", job)


def _check_output(
    job: TrainingJob, notification: AsyncInferenceNotification, files: TrainingFiles
) -> tuple[str | None, str | None, float | None]:
    """(problem, artifact key, training seconds): the handler's JSON output must exist and name an existing model."""
    expected = keys.model_artifact_key(job.user_id, job.job_id)
    location = notification.output_location
    body = files.read_result(location) if location else None
    if body is None:
        return "training finished but its result is missing; please start a new training", None, None
    try:
        output = json.loads(body)
        model_key = output["model_key"]
        seconds = output.get("metrics", {}).get("seconds")  # the trainer's own time, without queueing
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
        return "training finished but its result could not be read; please start a new training", None, None
    if model_key != expected or output.get("status") != "succeeded":
        return "training finished with an unexpected result; please start a new training", None, None
    if not files.exists(model_key):
        return "training finished but the trained model is missing; please start a new training", None, None
    return None, model_key, float(seconds) if isinstance(seconds, int | float) else None


def user_facing_failure(
    notification: AsyncInferenceNotification, files: TrainingFiles, *, recorded_location: str | None = None
) -> str:
    """The job's own reason (the LMI handler raises TrainingJobFailed with one); SageMaker's text stays in logs."""
    location = notification.failure_body_location or recorded_location
    body = files.read_result(location) if location else None
    if body:
        try:
            detail = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            detail = None
        if isinstance(detail, dict):
            # DJL Serving answers a handler exception with {"code": 424, "message": ..., "error": <the reason>}.
            for field in ("error", "message"):
                if isinstance(detail.get(field), str) and detail[field].strip():
                    return str(detail[field]).strip()[:500]
    reason = notification.failure_reason or ""
    if "timed out" in reason.lower() or "timeout" in reason.lower():
        return "training took longer than allowed; please try again with fewer steps"
    return "training failed on the training service; please try again"


def remove_orphaned_result(
    user_id: str, job_id: str, notification: AsyncInferenceNotification, *, files: TrainingFiles
) -> None:
    """A result for a job that no longer exists (its user was erased): delete everything it wrote."""
    files.delete_everything_under(keys.model_artifact_key(user_id, job_id), exact=True)
    files.delete_everything_under(f"{keys.JOBS}/{user_id}/{job_id}/")
    files.delete_everything_under(keys.training_manifest_key(user_id, job_id), exact=True)
    for uri in (notification.output_location, notification.failure_body_location):
        if uri:
            files.delete_uri(uri)
    logger.warning("result of an unknown job removed", extra={"user_id": user_id, "job_id": job_id})


def fail_overdue_jobs(*, jobs: JobStore, events: EventPublisher, now: datetime) -> list[TrainingJob]:
    """Mark every in-flight job past its deadline FAILED and announce it, so no job stays QUEUED or TRAINING."""
    failed = []
    for job in jobs.overdue_jobs(now):
        if job.state is ModelState.QUEUED:
            reason = "the training could not be started in time; please try again"
        else:
            reason = "training did not finish in time; please try again"
        if finish_failed(job, reason, jobs=jobs, events=events, now=now):
            failed.append(job)
    return failed


class JobStatus(BaseModel):
    """A job as `GET /v1/models/current` shows it."""

    job_id: str
    model_version: int
    state: ModelState
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    queued_seconds: float | None = Field(description="from the request until training started")
    training_seconds: float | None = Field(description="from the start of training until it ended (or now)")
    failure_reason: str | None
    progress: dict[str, Any] | None = Field(description="what the trainer last published: phase, step, ETA")


class ModelStatus(BaseModel):
    """The user's model: its state, the version generate requests use, and the latest job."""

    state: ModelState
    current_version: int | None
    accepted_photos: int
    photos_needed: int
    job: JobStatus | None


def model_status(user_id: str, *, jobs: JobStore, files: TrainingFiles, now: datetime) -> ModelStatus:
    """Where the user's model stands, with the latest job's progress and timings."""
    profile = jobs.get_profile(user_id)
    accepted = len(accepted_photos(jobs.list_photos(user_id)))
    job = jobs.get_job(user_id, profile.active_job_id) if profile and profile.active_job_id else None
    return ModelStatus(
        state=profile.state if profile else ModelState.COLLECTING,
        current_version=profile.current_version if profile else None,
        accepted_photos=accepted,
        photos_needed=max(0, PHOTOS_NEEDED - accepted),
        job=_job_status(job, files, now) if job else None,
    )


def _job_status(job: TrainingJob, files: TrainingFiles, now: datetime) -> JobStatus:
    started, finished = job.started_at, job.finished_at
    progress = None
    if job.state is ModelState.TRAINING:
        progress = files.read_progress(keys.training_progress_key(job.user_id, job.job_id))
    return JobStatus(
        job_id=job.job_id,
        model_version=job.version,
        state=job.state,
        created_at=job.created_at,
        started_at=started,
        finished_at=finished,
        queued_seconds=round(((started or finished or now) - job.created_at).total_seconds(), 1),
        training_seconds=round(((finished or now) - started).total_seconds(), 1) if started else None,
        failure_reason=job.failure_reason,
        progress=progress,
    )

"""A user asks for a training (`POST /v1/models`, or the photo that completes a first set): the job is planned,
recorded QUEUED together with the user's model, and queued for the orchestrator."""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime

from pydantic import ValidationError

from avatar.contracts.orchestrator import StartTraining
from avatar.contracts.training import TrainingPlan, TrainingRequest
from avatar.errors import (
    AccountErasing,
    ConcurrentUpdate,
    IdempotencyKeyReused,
    InvalidRequest,
    NotEnoughPhotos,
    QueueUnavailable,
    TrainingInFlight,
)
from avatar.messaging import OrchestratorQueue
from avatar.records import PHOTOS_NEEDED, IdempotencyKey, TrainingJob, UserProfile, accepted_photos, new_job_id
from avatar.states import IN_FLIGHT, Transition, can, move
from avatar.training_jobs.outcomes import finish_failed
from avatar.training_jobs.ports import JobRecords
from avatar.training_jobs.timeouts import Timeouts

logger = logging.getLogger(__name__)


def plan_training(defaults: TrainingPlan, request: TrainingRequest) -> TrainingPlan:
    """The deployment's plan with the user's choices, validated as a whole; raises InvalidRequest with each problem."""
    try:
        return defaults.with_choices(request)
    except ValidationError as exc:
        problems = [{"loc": ["body", *map(str, e["loc"])], "msg": e["msg"]} for e in exc.errors()]
        raise InvalidRequest("these training options do not work together", details=problems) from exc


def request_training(
    user_id: str,
    request: TrainingRequest,
    *,
    jobs: JobRecords,
    queue: OrchestratorQueue,
    defaults: TrainingPlan,
    timeouts: Timeouts,
    now: datetime,
    idempotency_key: str | None = None,
    only_first: bool = False,
) -> TrainingJob:
    """Record a QUEUED job and queue it; raises InvalidRequest, NotEnoughPhotos, TrainingInFlight, AccountErasing or
    QueueUnavailable (the job is then FAILED and may be requested again).

    `only_first` starts nothing once the user has had a model or a job (the automatic start at the 10th photo).
    """
    keyed = _keyed(idempotency_key, request)
    replay = _replayed_job(jobs, user_id, keyed, now)
    if replay is not None:
        return replay
    plan = plan_training(defaults, request)
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
        state=move(Transition.QUEUE).target,
        plan=plan,
        created_at=now,
        deadline_at=now + timeouts.queued,
    )
    queued = profile.model_copy(
        update={
            "state": job.state,
            "revision": profile.revision + 1,
            "active_job_id": job.job_id,
            "jobs_started": job.version,
            "updated_at": now,
        }
    )
    try:
        jobs.create_job(profile, queued, job, idempotency_key=keyed)
    except ConcurrentUpdate:
        replay = _replayed_job(jobs, user_id, keyed, now)  # a concurrent retry with the same key won
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


def _keyed(idempotency_key: str | None, request: TrainingRequest) -> IdempotencyKey | None:
    """The key with the digest of the request's meaning (field order, spacing and explicit nulls do not count)."""
    if idempotency_key is None:
        return None
    canonical = request.model_dump_json(exclude_none=True)
    return IdempotencyKey(key=idempotency_key, request_sha256=hashlib.sha256(canonical.encode()).hexdigest())


def _replayed_job(jobs: JobRecords, user_id: str, keyed: IdempotencyKey | None, now: datetime) -> TrainingJob | None:
    """The job an earlier request with the same Idempotency-Key created, if any; raises IdempotencyKeyReused when
    that request was another one."""
    if keyed is None:
        return None
    earlier = jobs.job_for_idempotency_key(user_id, keyed.key, now)
    if earlier is None:
        return None
    if earlier.request_sha256 != keyed.request_sha256:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was already used with another request body; use a new key for a new request"
        )
    return jobs.get_job(user_id, earlier.job_id)


def _check_can_start(profile: UserProfile | None) -> None:
    if profile is None:
        return
    if profile.erasing:
        raise AccountErasing("your account is being erased")
    if profile.state in IN_FLIGHT or not can(profile.state, Transition.QUEUE):
        raise TrainingInFlight(f"a training is already {profile.state.value.lower()} (job {profile.active_job_id})")

"""How a job's move reaches the user's model, and a failed job other systems: the rules every use case shares.

The user's model follows its active job (QUEUED -> TRAINING -> READY | FAILED). Its current-model pointer only moves
forward: a READY version becomes current only if it is newer than the current one, whichever job it came from, so a
late result of an older job never replaces a newer model. An erasing user's model never moves.
"""

from __future__ import annotations

import logging
from datetime import datetime

from avatar.contracts.events import AvatarModelFailed
from avatar.errors import ConcurrentUpdate
from avatar.messaging import EventPublisher
from avatar.records import TrainingJob
from avatar.states import ModelState, Transition, can, transition_into
from avatar.training_jobs.ports import JobRecords

logger = logging.getLogger(__name__)

ATTEMPTS = 5  # optimistic writes of the profile before giving up (another writer moved it each time)


def follow_job(job: TrainingJob, *, jobs: JobRecords, now: datetime) -> bool:
    """Move the user's model after its active job, and its current-model pointer forward to a newer READY version;
    returns whether the job's version is the current one."""
    transition = transition_into(job.state)
    for _ in range(ATTEMPTS):
        profile = jobs.get_profile(job.user_id)
        if profile is None or profile.erasing:
            return False
        follows = profile.active_job_id == job.job_id and can(profile.state, transition)
        newer = job.state is ModelState.READY and profile.is_newer(job.version)
        if not follows and not newer:
            return job.state is ModelState.READY and profile.current_version == job.version
        changes: dict[str, object] = {"revision": profile.revision + 1, "updated_at": now}
        if follows:
            changes["state"] = job.state
        if newer:
            changes["current_version"] = job.version
        if jobs.move_profile(profile, profile.model_copy(update=changes), transition if follows else None):
            return newer
    raise ConcurrentUpdate(f"the model of {job.user_id} kept changing while job {job.job_id} settled")


def finish_failed(
    job: TrainingJob,
    reason: str,
    *,
    jobs: JobRecords,
    now: datetime,
    events: EventPublisher | None = None,
) -> bool:
    """Mark an in-flight job FAILED (its first outcome wins), move the user's model after it, and announce it when a
    bus is given; False when the job had already ended otherwise."""
    failed = job.model_copy(update={"state": ModelState.FAILED, "failure_reason": reason, "finished_at": now})
    if not can(job.state, Transition.FAIL) or not jobs.move_job(job, failed, Transition.FAIL):
        latest = jobs.get_job(job.user_id, job.job_id)
        if latest is None or latest.state is not ModelState.FAILED:
            return False
        failed = latest
    follow_job(failed, jobs=jobs, now=now)
    if events is not None and not failed.announced:
        events.publish(
            AvatarModelFailed(
                event_id=f"{failed.job_id}:failed",
                user_id=failed.user_id,
                occurred_at=failed.finished_at or now,
                job_id=failed.job_id,
                model_version=failed.version,
                reason=failed.failure_reason or reason,
            )
        )
        jobs.mark_announced(failed)
    logger.info("training failed", extra={"user_id": job.user_id, "job_id": job.job_id, "reason": reason})
    return True

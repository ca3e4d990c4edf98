"""The orchestrator starts a QUEUED job: it writes the manifest and invokes the asynchronous endpoint, once.

A job is invoked at most once per claim: the claim is a conditional write, so a repeated or concurrent delivery finds
it taken (or the job TRAINING) and does nothing. A transient failure gives the claim back and leaves the message for
SQS to deliver again; a permanent refusal ends the job FAILED.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from avatar import object_keys
from avatar.contracts.training import TrainingManifest
from avatar.errors import AvatarError, ConcurrentUpdate, TrainingRefused
from avatar.messaging import EventPublisher
from avatar.records import PHOTOS_NEEDED, TrainingJob, accepted_photos
from avatar.states import ModelState, Transition, move
from avatar.training_jobs.outcomes import finish_failed, follow_job
from avatar.training_jobs.ports import JobRecords, TrainingEndpoint, TrainingFiles
from avatar.training_jobs.timeouts import Timeouts

logger = logging.getLogger(__name__)

MAX_PHOTOS = 50  # the manifest's bound


class StartOutcome(StrEnum):
    """What a start message led to."""

    INVOKED = "invoked"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True)
class Started:
    """A start message's outcome and the job it was about."""

    outcome: StartOutcome
    job: TrainingJob | None = None


def start_training(
    user_id: str,
    job_id: str,
    *,
    jobs: JobRecords,
    files: TrainingFiles,
    endpoint: TrainingEndpoint,
    events: EventPublisher,
    timeouts: Timeouts,
    now: datetime,
) -> Started:
    """Write the manifest and invoke the endpoint once for a QUEUED job; repeated deliveries change nothing. Raises a
    retryable AvatarError when the message should come back later."""
    job = jobs.get_job(user_id, job_id)
    profile = jobs.get_profile(user_id)
    if job is None or job.state is not ModelState.QUEUED or profile is None or profile.erasing:
        # Finished, failed, erased or being erased: a repeated or late delivery starts nothing.
        logger.info("start skipped", extra={"user_id": user_id, "job_id": job_id, "state": job and job.state})
        return Started(StartOutcome.SKIPPED, job)
    if not jobs.claim_job(job, until=now + timeouts.claim, now=now):
        latest = jobs.get_job(user_id, job_id)
        if latest is not None and latest.state is ModelState.QUEUED:
            raise ConcurrentUpdate(f"job {job_id} is being started by another delivery")
        return Started(StartOutcome.SKIPPED, latest)
    photos = accepted_photos(jobs.list_photos(user_id))
    if len(photos) < PHOTOS_NEEDED:
        reason = f"only {len(photos)} accepted photos are left; a training needs {PHOTOS_NEEDED}"
        finish_failed(job, reason, jobs=jobs, events=events, now=now)
        return Started(StartOutcome.FAILED, job)
    manifest = TrainingManifest(
        user_id=user_id,
        job_id=job_id,
        photo_keys=sorted(str(p.normalized_key) for p in photos)[:MAX_PHOTOS],
        **dict(job.plan),
    )
    try:
        location = files.write_manifest(
            object_keys.training_manifest_key(user_id, job_id), manifest.model_dump_json().encode()
        )
        invocation = endpoint.invoke(
            job_id=job_id, user_id=user_id, input_location=location, timeout_seconds=timeouts.invocation_seconds
        )
    except TrainingRefused as refused:
        finish_failed(
            job, "the training service refused the job; please try again later", jobs=jobs, events=events, now=now
        )
        logger.error("endpoint refused job", extra={"job_id": job_id, "error": refused.message})
        return Started(StartOutcome.FAILED, job)
    except AvatarError as error:
        if error.retryable:
            jobs.release_claim(job)
        raise
    started = job.model_copy(
        update={
            "state": move(Transition.START).target,
            "started_at": now,
            "output_location": invocation.output_location,
            "failure_location": invocation.failure_location,
            "deadline_at": now + timeouts.training,
        }
    )
    if jobs.move_job(job, started, Transition.START):
        follow_job(started, jobs=jobs, now=now)
    logger.info("training invoked", extra={"user_id": user_id, "job_id": job_id, "output": invocation.output_location})
    return Started(StartOutcome.INVOKED, started)

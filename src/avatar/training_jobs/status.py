"""Where a user's model stands (`GET /v1/models/current`): its state, the version in use, and the latest job with its
timings, failure reason and the progress the training job last published."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from avatar import object_keys
from avatar.contracts.training import TrainingProgress
from avatar.records import PHOTOS_NEEDED, TrainingJob, accepted_photos
from avatar.states import ModelState
from avatar.training_jobs.ports import JobRecords, TrainingFiles


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
    progress: TrainingProgress | None = Field(description="what the training job last published: phase, step, ETA")


class ModelStatus(BaseModel):
    """The user's model: its state, the version generate requests use, and the latest job."""

    state: ModelState
    current_version: int | None
    accepted_photos: int
    photos_needed: int
    job: JobStatus | None


def model_status(user_id: str, *, jobs: JobRecords, files: TrainingFiles, now: datetime) -> ModelStatus:
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
        progress = files.read_progress(object_keys.training_progress_key(job.user_id, job.job_id))
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

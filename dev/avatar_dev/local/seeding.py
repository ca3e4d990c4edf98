"""Records made the way the product makes them, for benchmarks and tests that need a user in a given state."""

from __future__ import annotations

from datetime import datetime, timedelta

from avatar.contracts.training import TrainingPlan
from avatar.records import ModelVersion, TrainingJob
from avatar.states import ModelState
from avatar.training_jobs.outcomes import follow_job
from avatar.training_jobs.ports import JobRecords


def record_ready_model(jobs: JobRecords, user: str, *, version: int, artifact_key: str, now: datetime) -> None:
    """The user's model READY at `version` with `artifact_key`, recorded through the same port methods the training
    jobs use (as if a job had been requested and had succeeded)."""
    jobs.ensure_user(user, now)
    profile = jobs.get_profile(user)
    assert profile is not None
    job = TrainingJob(
        user_id=user,
        job_id=f"job{version:06d}",
        version=version,
        state=ModelState.QUEUED,
        plan=TrainingPlan(),
        created_at=now,
        deadline_at=now + timedelta(hours=1),
    )
    queued = profile.model_copy(
        update={"state": ModelState.QUEUED, "revision": profile.revision + 1, "active_job_id": job.job_id}
        | {"jobs_started": version}
    )
    jobs.create_job(profile, queued, job, idempotency_key=None)
    ready = job.model_copy(update={"state": ModelState.READY, "artifact_key": artifact_key, "finished_at": now})
    version_record = ModelVersion(
        user_id=user, version=version, job_id=job.job_id, artifact_key=artifact_key, created_at=now
    )
    assert jobs.finish_ready(job, ready, version_record)
    assert follow_job(ready, jobs=jobs, now=now)

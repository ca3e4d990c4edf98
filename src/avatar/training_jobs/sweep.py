"""The sweeper: every in-flight job past its deadline ends FAILED and is announced, so no job stays QUEUED or
TRAINING (a queue outage, a lost notification, a training that never ends)."""

from __future__ import annotations

from datetime import datetime

from avatar.messaging import EventPublisher
from avatar.records import TrainingJob
from avatar.states import ModelState
from avatar.training_jobs.outcomes import finish_failed
from avatar.training_jobs.ports import JobRecords


def fail_overdue_jobs(*, jobs: JobRecords, events: EventPublisher, now: datetime) -> list[TrainingJob]:
    """Mark every in-flight job past its deadline FAILED and announce it; returns the jobs it failed."""
    failed = []
    for job in jobs.overdue_jobs(now):
        if job.state is ModelState.QUEUED:
            reason = "the training could not be started in time; please try again"
        else:
            reason = "training did not finish in time; please try again"
        if finish_failed(job, reason, jobs=jobs, events=events, now=now):
            failed.append(job)
    return failed

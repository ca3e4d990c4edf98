"""The notifier records what the asynchronous endpoint reports: a READY version, or FAILED with a reason a user can
read. The first outcome is final: a duplicate, a late success after the sweeper gave up, or a failure after a
success changes nothing and publishes nothing. A result for a job that no longer exists (its user was erased) is
deleted."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import ValidationError

from avatar import object_keys
from avatar.contracts.events import AvatarModelReady
from avatar.contracts.sagemaker import AsyncInferenceNotification
from avatar.contracts.training import TrainingResult
from avatar.errors import InvalidKey, InvalidMessage
from avatar.messaging import EventPublisher
from avatar.records import ModelVersion, TrainingJob
from avatar.states import ModelState, Transition, can
from avatar.training_jobs.outcomes import finish_failed, follow_job
from avatar.training_jobs.ports import JobRecords, TrainingFiles
from avatar.training_jobs.timeouts import Timeouts

logger = logging.getLogger(__name__)


class ResultOutcome(StrEnum):
    """What a notification led to."""

    READY = "ready"
    FAILED = "failed"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"
    ORPHAN_REMOVED = "orphan_removed"


@dataclass(frozen=True)
class Recorded:
    """A notification's outcome and the job it was about."""

    outcome: ResultOutcome
    job: TrainingJob | None = None


def record_training_result(
    notification: AsyncInferenceNotification,
    *,
    bucket: str,
    jobs: JobRecords,
    files: TrainingFiles,
    events: EventPublisher,
    timeouts: Timeouts,
    now: datetime,
) -> Recorded:
    """Record a READY version, or FAILED with a reason a user can read; raises InvalidMessage for a notification
    about no job of this service."""
    try:
        manifest_bucket, manifest_key = object_keys.split_s3_uri(notification.request_parameters.input_location)
        named = object_keys.parse_manifest_key(manifest_key)
    except InvalidKey as exc:
        raise InvalidMessage(f"notification {notification.inference_id} names no training manifest: {exc}") from exc
    if manifest_bucket != bucket or named.job_id != notification.inference_id:
        raise InvalidMessage(f"notification {notification.inference_id} is not about a job of this service")
    job = jobs.get_job(named.user_id, named.job_id)
    if job is None:
        remove_orphaned_result(named.user_id, named.job_id, notification, files=files)
        return Recorded(ResultOutcome.ORPHAN_REMOVED)
    if notification.invocation_status == "Failed":
        return _record_failure(job, notification, jobs=jobs, files=files, events=events, timeouts=timeouts, now=now)
    if job.state is ModelState.FAILED:
        logger.warning("success after failure ignored: the first outcome is final", extra={"job_id": job.job_id})
        return Recorded(ResultOutcome.IGNORED, job)
    if job.state is ModelState.READY and job.announced:
        return Recorded(ResultOutcome.DUPLICATE, job)
    problem, result = _read_output(job, notification, files)
    if result is None:
        finish_failed(job, problem, jobs=jobs, events=events, now=now)
        return Recorded(ResultOutcome.FAILED, jobs.get_job(job.user_id, job.job_id))
    version = ModelVersion(
        user_id=job.user_id, version=job.version, job_id=job.job_id, artifact_key=result.model_key, created_at=now
    )
    ready = job.model_copy(update={"state": ModelState.READY, "finished_at": now, "artifact_key": result.model_key})
    if not can(job.state, Transition.SUCCEED) or not jobs.finish_ready(job, ready, version):
        latest = jobs.get_job(job.user_id, job.job_id)
        if latest is None:
            remove_orphaned_result(named.user_id, named.job_id, notification, files=files)
            return Recorded(ResultOutcome.ORPHAN_REMOVED)
        if latest.state is not ModelState.READY:
            return Recorded(ResultOutcome.IGNORED, latest)
        ready = latest
    is_current = follow_job(ready, jobs=jobs, now=now)
    events.publish(
        AvatarModelReady(
            event_id=f"{job.job_id}:ready",
            user_id=job.user_id,
            occurred_at=now,
            job_id=job.job_id,
            model_version=job.version,
            artifact_key=result.model_key,
            is_current=is_current,
            training_seconds=result.metrics.seconds,
        )
    )
    jobs.mark_announced(ready)
    logger.info("model ready", extra={"user_id": job.user_id, "job_id": job.job_id, "model_version": job.version})
    return Recorded(ResultOutcome.READY, ready)


def _record_failure(
    job: TrainingJob,
    notification: AsyncInferenceNotification,
    *,
    jobs: JobRecords,
    files: TrainingFiles,
    events: EventPublisher,
    timeouts: Timeouts,
    now: datetime,
) -> Recorded:
    if job.state is ModelState.READY:
        logger.warning("failure after success ignored", extra={"job_id": job.job_id})
        return Recorded(ResultOutcome.IGNORED, job)
    if job.state is ModelState.FAILED and job.announced:
        return Recorded(ResultOutcome.DUPLICATE, job)
    reason = user_facing_failure(notification, files, job=job, timeouts=timeouts, now=now)
    finish_failed(job, reason, jobs=jobs, events=events, now=now)
    logger.warning(
        "training endpoint failure", extra={"job_id": job.job_id, "failure_reason": notification.failure_reason}
    )
    return Recorded(ResultOutcome.FAILED, jobs.get_job(job.user_id, job.job_id))


def _read_output(
    job: TrainingJob, notification: AsyncInferenceNotification, files: TrainingFiles
) -> tuple[str, TrainingResult | None]:
    """The job's result, or the problem with it: it must exist, be the training job's answer and name this job's
    model, which must exist."""
    location = notification.output_location
    body = files.read_result(location) if location else None
    if body is None:
        return "training finished but its result is missing; please start a new training", None
    try:
        result = TrainingResult.model_validate_json(body)
    except ValidationError:
        return "training finished but its result could not be read; please start a new training", None
    if result.model_key != object_keys.model_artifact_key(job.user_id, job.job_id):
        return "training finished with an unexpected result; please start a new training", None
    if not files.exists(result.model_key):
        return "training finished but the trained model is missing; please start a new training", None
    return "", result


def user_facing_failure(
    notification: AsyncInferenceNotification,
    files: TrainingFiles,
    *,
    job: TrainingJob,
    timeouts: Timeouts,
    now: datetime,
) -> str:
    """The job's own reason (the training job raises FineTuneFailed with one, and DJL Serving stores it as the failure
    body), else a plain sentence; SageMaker's own text stays in the logs."""
    location = notification.failure_body_location or job.failure_location
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
    started = job.started_at or job.created_at
    if (now - started).total_seconds() >= timeouts.invocation_seconds:
        return "training took longer than allowed; please try again with fewer steps"
    return "training failed on the training service; please try again"


def remove_orphaned_result(
    user_id: str, job_id: str, notification: AsyncInferenceNotification, *, files: TrainingFiles
) -> None:
    """A result for a job that no longer exists (its user was erased): delete everything it wrote."""
    files.delete_object(object_keys.model_artifact_key(user_id, job_id))
    files.delete_everything_under(f"{object_keys.JOBS}/{user_id}/{job_id}/")
    files.delete_object(object_keys.training_manifest_key(user_id, job_id))
    for uri in (notification.output_location, notification.failure_body_location):
        if uri:
            files.delete_uri(uri)
    logger.warning("result of an unknown job removed", extra={"user_id": user_id, "job_id": job_id})

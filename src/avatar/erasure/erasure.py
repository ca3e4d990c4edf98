"""Erasing a user: stop routing to their model first, then remove every record and object, make the serving side
forget their models, then tell others.

Safe to repeat at any point: every step deletes what is there and nothing else, and the profile, which marks the
erasure in progress, is deleted last.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime

from avatar import object_keys
from avatar.contracts.events import AvatarUserErased
from avatar.contracts.orchestrator import EraseUser
from avatar.erasure.ports import ServingSide, UserFiles, UserRecords
from avatar.errors import ServiceUnavailable
from avatar.messaging import EventPublisher, OrchestratorQueue

logger = logging.getLogger(__name__)


def request_erasure(user_id: str, *, users: UserRecords, queue: OrchestratorQueue, now: datetime) -> None:
    """Stop routing to the user's model now and queue the erasure (raises QueueUnavailable; repeat to retry)."""
    users.mark_erasing(user_id, now)
    queue.send(EraseUser(user_id=user_id))
    logger.info("erasure requested", extra={"user_id": user_id})


@dataclass(frozen=True)
class ErasureReport:
    """What an erasure removed."""

    objects: int
    records: int
    announced: bool
    models_forgotten: int = 0  # per-user models that were loaded on the serving side and forgot the user


# The serving side is asked this many times (waiting 2 s, then 4 s) before the erasure goes on without it: the records
# that name the models are gone by then, so a retried message could not ask again. A model left loaded has no
# artifact any more (it is never loaded again) and goes when the endpoint unloads it (docs/deploy.md).
FORGET_ATTEMPTS = 3


def erase_user(
    user_id: str,
    *,
    users: UserRecords,
    files: UserFiles,
    events: EventPublisher,
    now: datetime,
    serving: ServingSide | None = None,
    retry_seconds: float = 2.0,
) -> ErasureReport:
    """Remove every object version and record of the user, make the serving side forget the user's models (their
    artifacts deleted first, so none can be loaded again), announce AvatarUserErased, then forget the profile."""
    profile = users.get_profile(user_id)
    if profile is not None and not profile.erasing:
        users.mark_erasing(user_id, now)  # an erase message always follows the mark; make sure anyway
        profile = users.get_profile(user_id)
    # Records first: a photo check, start or result that arrives from now on finds nothing of the user and
    # deletes what it would have written (see intake.verdicts and training_jobs.record_result).
    jobs = users.user_jobs(user_id)
    result_locations = [uri for job in jobs for uri in (job.output_location, job.failure_location)]
    models = [job.artifact_key for job in jobs if job.artifact_key]
    records = users.delete_user_records(user_id)
    objects = 0
    for uri in filter(None, result_locations):
        files.delete_uri(uri)
    for prefix in object_keys.user_prefixes(user_id):
        objects += files.delete_everything_under(prefix)
    forgotten = sum(_forget(serving, key, retry_seconds) for key in models) if serving is not None else 0
    announced = profile is not None
    if profile is not None:  # None: a repeated message after the erasure finished; it was announced then
        since = profile.erasing_since or now
        events.publish(
            AvatarUserErased(event_id=f"{user_id}:erased:{since.isoformat()}", user_id=user_id, occurred_at=now)
        )
        users.forget_user(user_id)
    logger.info(
        "user erased",
        extra={"user_id": user_id, "objects": objects, "records": records, "models_forgotten": forgotten},
    )
    return ErasureReport(objects=objects, records=records, announced=announced, models_forgotten=forgotten)


def _forget(serving: ServingSide, artifact_key: str, retry_seconds: float) -> bool:
    for attempt in range(1, FORGET_ATTEMPTS + 1):
        try:
            return serving.forget(artifact_key)
        except ServiceUnavailable as exc:
            if attempt == FORGET_ATTEMPTS:
                logger.warning("the serving side could not be asked to forget a model", extra={"error": str(exc)})
                return False
            time.sleep(retry_seconds * attempt)
    return False

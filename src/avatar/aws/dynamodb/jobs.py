"""The training jobs' records: a job and its user's model move by `avatar.states`, each move a conditional write."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from avatar.aws.dynamodb.table import (
    IN_FLIGHT_INDEX,
    IN_FLIGHT_PK,
    Update,
    UserPartition,
    changes_between,
    idempotency_sk,
    job_sk,
    model_sk,
    record_values,
    sortable,
    state_condition,
    to_item,
    user_pk,
)
from avatar.contracts.training import TrainingPlan
from avatar.records import IdempotencyKey, KeyedJob, ModelVersion, TrainingJob, UserProfile
from avatar.states import IN_FLIGHT, Transition

IDEMPOTENCY_TTL_SECONDS = 86_400
# Writes the user's model may make only while the user is not being erased.
_NOT_ERASING = "attribute_exists(PK) AND attribute_not_exists(erasing_since)"


def _job_key(job: TrainingJob) -> dict[str, str]:
    return {"PK": user_pk(job.user_id), "SK": job_sk(job.job_id)}


def _in_flight_keys(job: TrainingJob) -> dict[str, str]:
    """The sparse index's keys: only in-flight jobs have them, so the sweeper queries those alone."""
    return {"GSI1PK": IN_FLIGHT_PK, "GSI1SK": f"{sortable(job.deadline_at)}#{job.job_id}"}


def _job_item(job: TrainingJob) -> dict[str, Any]:
    # The plan as JSON: DynamoDB numbers would need Decimals for its floats, and it is only ever read whole.
    values = record_values(job, plan=True) | {"plan_json": job.plan.model_dump_json()}
    return _job_key(job) | {"type": "job"} | values | (_in_flight_keys(job) if job.in_flight else {})


def job_from(item: dict[str, Any]) -> TrainingJob:
    return TrainingJob.model_validate(item | {"plan": TrainingPlan.model_validate_json(item["plan_json"])})


class JobTable(UserPartition):
    """Training jobs, model versions and the user's model (the training jobs' JobRecords)."""

    def create_job(
        self, profile: UserProfile, queued: UserProfile, job: TrainingJob, *, idempotency_key: IdempotencyKey | None
    ) -> None:
        """Record the job, move the profile by QUEUE at its revision and keep the Idempotency-Key, all or nothing;
        raises ConcurrentUpdate."""
        items: list[dict[str, Any]] = [
            {"Update": self._profile_update(profile, queued, Transition.QUEUE)},
            {"Put": self._put_new(_job_item(job))},
        ]
        if idempotency_key is not None:
            record = {
                "PK": user_pk(job.user_id),
                "SK": idempotency_sk(idempotency_key.key),
                "type": "idempotency",
                "job_id": job.job_id,
                "request_sha256": idempotency_key.request_sha256,
                "expires_at": int(job.created_at.timestamp()) + IDEMPOTENCY_TTL_SECONDS,
            }
            items.append({"Put": self._put_new(record)})
        self.table.call("transact_write_items", TransactItems=items)

    def job_for_idempotency_key(self, user_id: str, idempotency_key: str, now: datetime) -> KeyedJob | None:
        """The job an earlier request with this key created (within a day) and that request's digest, or None."""
        item = self.table.get({"PK": user_pk(user_id), "SK": idempotency_sk(idempotency_key)})
        if not item or int(item.get("expires_at", 0)) < now.timestamp():
            return None
        return KeyedJob(job_id=str(item["job_id"]), request_sha256=str(item["request_sha256"]))

    def get_job(self, user_id: str, job_id: str) -> TrainingJob | None:
        """One training job of the user, or None."""
        item = self.table.get({"PK": user_pk(user_id), "SK": job_sk(job_id)})
        return job_from(item) if item else None

    def claim_job(self, job: TrainingJob, *, until: datetime, now: datetime) -> bool:
        """Take the right to invoke a QUEUED job until `until`, unless another claim is still valid."""
        condition, states = state_condition(Transition.START)
        update = Update().set({"claimed_until": sortable(until)})
        update.values[":now"] = sortable(now)
        update.values |= states
        return self.table.update(
            _job_key(job), update, f"{condition} AND (attribute_not_exists(claimed_until) OR claimed_until < :now)"
        )

    def release_claim(self, job: TrainingJob) -> None:
        """Give the claim back after a transient failure (the job may have moved on meanwhile: then nothing)."""
        condition, states = state_condition(Transition.START)
        update = Update().remove("claimed_until")
        update.values |= states
        self.table.update(_job_key(job), update, condition)

    def _job_update(self, job: TrainingJob, moved: TrainingJob, transition: Transition) -> dict[str, Any]:
        """The job's move as an UpdateItem: what changed, the in-flight index kept or dropped, the claim released."""
        condition, states = state_condition(transition)
        update = Update().set(changes_between(job, moved))
        if moved.in_flight:
            update.set(_in_flight_keys(moved))
        else:
            update.remove("GSI1PK", "GSI1SK")
        update.remove("claimed_until")
        update.values |= states
        return self.table.update_request(_job_key(job), update, condition)

    def move_job(self, job: TrainingJob, moved: TrainingJob, transition: Transition) -> bool:
        """Write `moved` over `job` if the stored job may leave its state by `transition`."""
        return self.table.apply_update(self._job_update(job, moved, transition))

    def finish_ready(self, job: TrainingJob, ready: TrainingJob, version: ModelVersion) -> bool:
        """SUCCEED and the version recorded, atomically, unless the user is being erased."""
        version_item = {"PK": user_pk(version.user_id), "SK": model_sk(version.version), "type": "model"}
        return self.table.transact(
            [
                {"Update": self._job_update(job, ready, Transition.SUCCEED)},
                {"Put": self._put_new(version_item | record_values(version))},
                {
                    "ConditionCheck": {
                        "TableName": self.table.name,
                        "Key": to_item(self.profile_key(job.user_id)),
                        "ConditionExpression": _NOT_ERASING,
                    }
                },
            ]
        )

    def _profile_update(
        self, profile: UserProfile, moved: UserProfile, transition: Transition | None
    ) -> dict[str, Any]:
        """The profile's move as an UpdateItem: at its revision, never for an erasing user, and by the state machine."""
        update = Update().set(changes_between(profile, moved))
        update.values[":revision"] = profile.revision
        condition = f"{_NOT_ERASING} AND revision = :revision"
        if transition is not None:
            states_condition, states = state_condition(transition)
            update.values |= states
            condition += f" AND {states_condition}"
        return self.table.update_request(self.profile_key(profile.user_id), update, condition)

    def move_profile(self, profile: UserProfile, moved: UserProfile, transition: Transition | None) -> bool:
        """Write `moved` over `profile` if the stored one is still at its revision and may leave by `transition`."""
        return self.table.apply_update(self._profile_update(profile, moved, transition))

    def mark_announced(self, job: TrainingJob) -> None:
        """Note that the outcome event was published (a repeated notification then publishes nothing)."""
        self.table.update(_job_key(job), Update().set({"announced": True}), "attribute_exists(PK)")

    def overdue_jobs(self, now: datetime) -> list[TrainingJob]:
        """In-flight jobs whose deadline passed (the sparse index holds only in-flight jobs)."""
        items = self.table.query(
            IndexName=IN_FLIGHT_INDEX,
            KeyConditionExpression="GSI1PK = :pk AND GSI1SK < :now",
            ExpressionAttributeValues=to_item({":pk": IN_FLIGHT_PK, ":now": sortable(now)}),
        )
        return [job for job in map(job_from, items) if job.state in IN_FLIGHT]

    def _put_new(self, item: dict[str, Any]) -> dict[str, Any]:
        return {"TableName": self.table.name, "Item": to_item(item), "ConditionExpression": "attribute_not_exists(PK)"}

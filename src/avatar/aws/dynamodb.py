"""The single DynamoDB table: a user's profile, photos, jobs and model versions share one partition.

Items (PK = USER#<user id>):
  SK = PROFILE            the model state machine (state, revision, current_version, active_job_id)
  SK = PHOTO#<photo id>   a photo and its verdict
  SK = JOB#<job id>       a training job (GSI1 indexes in-flight jobs by state and start time)
  SK = MODEL#<version>    an immutable model version (zero-padded so versions sort)
  SK = IDEMPOTENCY#<key>  a training request's Idempotency-Key -> its job (expires after a day)
Keeping everything in the user's partition makes erasure one query.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from avatar.avatars import CurrentModel
from avatar.intake import PhotoNotFound, StoreUnavailable
from avatar.model import IN_FLIGHT, ModelState, ModelVersion, Photo, TrainingJob, UserProfile, states_leading_to
from avatar.training_jobs import AsyncInvocation, JobConflict

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

PROFILE = "PROFILE"
IN_FLIGHT_INDEX = "GSI1"
IN_FLIGHT_PK = "INFLIGHT"
IDEMPOTENCY_TTL_SECONDS = 86_400
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


class IllegalTransition(Exception):
    """The model is not in a state the requested transition may leave from, or another writer moved it first."""


def user_pk(user_id: str) -> str:
    """The partition key of everything a user owns."""
    return f"USER#{user_id}"


def photo_sk(photo_id: str) -> str:
    """The sort key of a photo item."""
    return f"PHOTO#{photo_id}"


def model_sk(version: int) -> str:
    """The sort key of a model version (zero-padded so versions sort)."""
    return f"MODEL#{version:010d}"


def job_sk(job_id: str) -> str:
    """The sort key of a training job."""
    return f"JOB#{job_id}"


def _sortable(moment: datetime) -> str:
    """A fixed-width UTC timestamp, so string order is time order."""
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%S")


def _job_item(job: TrainingJob) -> dict[str, Any]:
    values = job.model_dump(mode="json", exclude={"options"})
    values["options_json"] = json.dumps(job.options)  # floats: DynamoDB numbers would need Decimals
    item = {"PK": user_pk(job.user_id), "SK": job_sk(job.job_id), "type": "job", **values}
    if job.in_flight:
        item |= {"GSI1PK": IN_FLIGHT_PK, "GSI1SK": f"{_sortable(job.deadline_at)}#{job.job_id}"}
    return _to_item(item)


def _job_from(item: Mapping[str, Any]) -> TrainingJob:
    values = _from_item(item)
    values["options"] = json.loads(values.pop("options_json", "{}"))
    return TrainingJob.model_validate(values)


def _to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in values.items() if v is not None}


def _from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    values = {k: _deserializer.deserialize(v) for k, v in item.items()}
    return {k: int(v) if isinstance(v, Decimal) else v for k, v in values.items()}


def _photo_item(photo: Photo) -> dict[str, Any]:
    values = photo.model_dump(mode="json", exclude_none=True)
    values["reasons"] = list(values["reasons"])
    return _to_item({"PK": user_pk(photo.user_id), "SK": photo_sk(photo.photo_id), "type": "photo", **values})


def _photo_from(item: Mapping[str, Any]) -> Photo:
    values = _from_item(item)
    face = values.get("face")
    if face is not None:
        values["face"] = {k: int(v) for k, v in face.items()}
    return Photo.model_validate(values)


class AvatarTable:
    """DynamoDB adapter for photos and the user's model state; every state change is a conditional write."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def _call(self, operation: str, **kwargs: Any) -> Any:
        try:
            return getattr(self._client, operation)(TableName=self._table, **kwargs)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise
            raise StoreUnavailable(f"DynamoDB {operation} failed: {exc.response['Error']['Code']}") from exc

    def ensure_user(self, user_id: str, now: datetime) -> None:
        """Create the user's profile in COLLECTING unless it exists."""
        profile = UserProfile(user_id=user_id, created_at=now, updated_at=now)
        item = _to_item({"PK": user_pk(user_id), "SK": PROFILE, "type": "user", **profile.model_dump(mode="json")})
        with contextlib.suppress(ClientError):  # the profile exists already
            self._call("put_item", Item=item, ConditionExpression="attribute_not_exists(PK)")

    def get_profile(self, user_id: str) -> UserProfile | None:
        """The user's profile, or None."""
        response = self._call("get_item", Key=_to_item({"PK": user_pk(user_id), "SK": PROFILE}), ConsistentRead=True)
        item = response.get("Item")
        return UserProfile.model_validate(_from_item(item)) if item else None

    def transition_model(
        self, user_id: str, to: ModelState, *, expected_revision: int, now: datetime, **changes: Any
    ) -> UserProfile:
        """Move the user's model to `to` if it is in a state that may lead there and nobody moved it since."""
        sources = sorted(states_leading_to(to))
        names = {"#state": "state", "#revision": "revision", "#updated": "updated_at"}
        values: dict[str, Any] = {
            ":to": to.value,
            ":rev": expected_revision,
            ":one": 1,
            ":now": now.isoformat(),
        }
        values |= {f":from{i}": state.value for i, state in enumerate(sources)}
        sets = ["#state = :to", "#revision = #revision + :one", "#updated = :now"]
        for i, (name, value) in enumerate(changes.items()):
            names[f"#c{i}"] = name
            values[f":c{i}"] = value
            sets.append(f"#c{i} = :c{i}")
        try:
            response = self._call(
                "update_item",
                Key=_to_item({"PK": user_pk(user_id), "SK": PROFILE}),
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression=f"#state IN ({', '.join(f':from{i}' for i in range(len(sources)))})"
                " AND #revision = :rev",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=_to_item(values),
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            raise IllegalTransition(f"cannot move {user_id}'s model to {to} from revision {expected_revision}") from exc
        return UserProfile.model_validate(_from_item(response["Attributes"]))

    def add_pending_photos(self, photos: list[Photo], upload_expires_at: datetime) -> None:
        """Record new pending photos in one transaction; DynamoDB TTL removes slots never uploaded."""
        expires = {"expires_at": _serializer.serialize(int(upload_expires_at.timestamp()) + 86_400)}
        try:
            self._client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": _photo_item(photo) | expires,
                            "ConditionExpression": "attribute_not_exists(PK)",
                        }
                    }
                    for photo in photos
                ]
            )
        except ClientError as exc:
            raise StoreUnavailable(f"DynamoDB transact_write_items failed: {exc.response['Error']['Code']}") from exc

    def list_photos(self, user_id: str) -> list[Photo]:
        """All photos of the user (one partition query, paginated)."""
        return [_photo_from(item) for item in self._partition(user_id, "PHOTO#")]

    def get_photo(self, user_id: str, photo_id: str) -> Photo | None:
        """One photo of the user, or None."""
        key = _to_item({"PK": user_pk(user_id), "SK": photo_sk(photo_id)})
        item = self._call("get_item", Key=key, ConsistentRead=True).get("Item")
        return _photo_from(item) if item else None

    def record_verdict(self, photo: Photo) -> bool:
        """Write the verdict only if the photo still exists and no same-or-newer upload was recorded."""
        try:
            self._call(
                "put_item",
                Item=_photo_item(photo),
                ConditionExpression="attribute_exists(PK) AND (attribute_not_exists(sequencer) OR sequencer < :seq)",
                ExpressionAttributeValues=_to_item({":seq": photo.sequencer}),
            )
        except ClientError:
            return False
        return True

    def delete_photo(self, user_id: str, photo_id: str) -> None:
        """Delete the photo item; raises PhotoNotFound if it is not there."""
        try:
            self._call(
                "delete_item",
                Key=_to_item({"PK": user_pk(user_id), "SK": photo_sk(photo_id)}),
                ConditionExpression="attribute_exists(PK)",
            )
        except ClientError as exc:
            raise PhotoNotFound(f"no photo {photo_id}") from exc

    def record_model_version(self, version: ModelVersion) -> None:
        """Write an immutable model version once; a repeated write of the same version changes nothing."""
        item = _to_item(
            {"PK": user_pk(version.user_id), "SK": model_sk(version.version), "type": "model"}
            | version.model_dump(mode="json")
        )
        with contextlib.suppress(ClientError):  # recorded already
            self._call("put_item", Item=item, ConditionExpression="attribute_not_exists(PK)")

    def get_model_version(self, user_id: str, version: int) -> ModelVersion | None:
        """One model version of the user, or None."""
        key = _to_item({"PK": user_pk(user_id), "SK": model_sk(version)})
        item = self._call("get_item", Key=key, ConsistentRead=True).get("Item")
        return ModelVersion.model_validate(_from_item(item)) if item else None

    def current_model(self, user_id: str) -> CurrentModel | None:
        """The user's state and the artifact of their current version (ModelRegistry)."""
        profile = self.get_profile(user_id)
        if profile is None or profile.erasing_since is not None:
            return None  # erasure stops routing first
        version = (
            self.get_model_version(user_id, profile.current_version) if profile.current_version is not None else None
        )
        return CurrentModel(state=profile.state, artifact_key=version.artifact_key if version else None)

    # --- Training jobs -------------------------------------------------------------------------------------

    def create_job(self, profile: UserProfile, job: TrainingJob, *, idempotency_key: str | None) -> None:
        """Record the job and move the profile to QUEUED at its revision, in one transaction."""
        sources = sorted(states_leading_to(ModelState.QUEUED))
        values = {f":from{i}": state.value for i, state in enumerate(sources)} | {
            ":queued": ModelState.QUEUED.value,
            ":rev": profile.revision,
            ":one": 1,
            ":job": job.job_id,
            ":started": job.version,
            ":now": job.created_at.isoformat(),
        }
        items: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": _to_item({"PK": user_pk(job.user_id), "SK": PROFILE}),
                    "UpdateExpression": "SET #state = :queued, #revision = #revision + :one, active_job_id = :job,"
                    " jobs_started = :started, updated_at = :now",
                    "ConditionExpression": f"#state IN ({', '.join(f':from{i}' for i in range(len(sources)))})"
                    " AND #revision = :rev AND attribute_not_exists(erasing_since)",
                    "ExpressionAttributeNames": {"#state": "state", "#revision": "revision"},
                    "ExpressionAttributeValues": _to_item(values),
                }
            },
            {
                "Put": {
                    "TableName": self._table,
                    "Item": _job_item(job),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            },
        ]
        if idempotency_key is not None:
            record = {
                "PK": user_pk(job.user_id),
                "SK": f"IDEMPOTENCY#{idempotency_key}",
                "type": "idempotency",
                "job_id": job.job_id,
                "expires_at": int(job.created_at.timestamp()) + IDEMPOTENCY_TTL_SECONDS,
            }
            items.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": _to_item(record),
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                }
            )
        self._transact(items)

    def _transact(self, items: list[dict[str, Any]]) -> None:
        try:
            self._client.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "TransactionCanceledException":
                raise JobConflict(str(exc)) from exc
            raise StoreUnavailable(f"DynamoDB transact_write_items failed: {exc.response['Error']['Code']}") from exc

    def idempotent_job(self, user_id: str, idempotency_key: str) -> str | None:
        """The job an earlier request with this key created (within a day), or None."""
        key = _to_item({"PK": user_pk(user_id), "SK": f"IDEMPOTENCY#{idempotency_key}"})
        item = self._call("get_item", Key=key, ConsistentRead=True).get("Item")
        if not item or int(_from_item(item).get("expires_at", 0)) < datetime.now(UTC).timestamp():
            return None
        return str(_from_item(item)["job_id"])

    def get_job(self, user_id: str, job_id: str) -> TrainingJob | None:
        """One training job of the user, or None."""
        key = _to_item({"PK": user_pk(user_id), "SK": job_sk(job_id)})
        item = self._call("get_item", Key=key, ConsistentRead=True).get("Item")
        return _job_from(item) if item else None

    def _update(self, key: dict[str, Any], expression: str, condition: str, **values: Any) -> bool:
        names = {"#state": "state"} if "#state" in expression + condition else {}
        try:
            self._call(
                "update_item",
                Key=_to_item(key),
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeValues=_to_item({f":{k}": v for k, v in values.items()}),
                **({"ExpressionAttributeNames": names} if names else {}),
            )
        except ClientError:
            return False  # _call re-raises only the failed condition
        return True

    def _job_key(self, job: TrainingJob) -> dict[str, Any]:
        return {"PK": user_pk(job.user_id), "SK": job_sk(job.job_id)}

    def claim_job(self, job: TrainingJob, *, until: datetime, now: datetime) -> bool:
        """Take the right to invoke a QUEUED job until `until`, unless another claim is still valid."""
        return self._update(
            self._job_key(job),
            "SET claimed_until = :until",
            "#state = :queued AND (attribute_not_exists(claimed_until) OR claimed_until < :now)",
            until=_sortable(until),
            now=_sortable(now),
            queued=ModelState.QUEUED.value,
        )

    def release_claim(self, job: TrainingJob) -> None:
        """Give the claim back after a transient failure."""
        self._update(self._job_key(job), "REMOVE claimed_until", "#state = :queued", queued=ModelState.QUEUED.value)

    def mark_training(
        self, job: TrainingJob, invocation: AsyncInvocation, *, now: datetime, deadline: datetime
    ) -> bool:
        """QUEUED -> TRAINING for the job, with where its result will be, and for the profile when it is active."""
        moved = self._update(
            self._job_key(job),
            "SET #state = :training, started_at = :now, output_location = :output, failure_location = :failure,"
            " deadline_at = :deadline, GSI1SK = :gsi REMOVE claimed_until",
            "#state = :queued",
            training=ModelState.TRAINING.value,
            queued=ModelState.QUEUED.value,
            now=now.isoformat(),
            output=invocation.output_location,
            failure=invocation.failure_location or "",
            deadline=deadline.isoformat(),
            gsi=f"{_sortable(deadline)}#{job.job_id}",
        )
        self._update(
            {"PK": user_pk(job.user_id), "SK": PROFILE},
            "SET #state = :training, revision = revision + :one, updated_at = :now",
            "active_job_id = :job AND #state = :queued",
            training=ModelState.TRAINING.value,
            queued=ModelState.QUEUED.value,
            one=1,
            now=now.isoformat(),
            job=job.job_id,
        )
        return moved

    def _finish_job_update(self, job: TrainingJob, state: ModelState, now: datetime, **changes: Any) -> dict[str, Any]:
        sets = ", ".join(["#state = :to", "finished_at = :now", *(f"{name} = :{name}" for name in changes)])
        values = {":to": state.value, ":now": now.isoformat(), ":q": "QUEUED", ":t": "TRAINING"} | {
            f":{name}": value for name, value in changes.items()
        }
        return {
            "Key": _to_item(self._job_key(job)),
            "UpdateExpression": f"SET {sets} REMOVE GSI1PK, GSI1SK, claimed_until",
            "ConditionExpression": "#state IN (:q, :t)",
            "ExpressionAttributeNames": {"#state": "state"},
            "ExpressionAttributeValues": _to_item(values),
        }

    def finish_ready(self, job: TrainingJob, version: ModelVersion, *, now: datetime) -> bool:
        """In flight -> READY and the version recorded, atomically, unless the user is being erased."""
        version_item = _to_item(
            {"PK": user_pk(version.user_id), "SK": model_sk(version.version), "type": "model"}
            | version.model_dump(mode="json")
        )
        try:
            self._transact(
                [
                    {
                        "Update": {"TableName": self._table}
                        | self._finish_job_update(job, ModelState.READY, now, artifact_key=version.artifact_key)
                    },
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": version_item,
                            "ConditionExpression": "attribute_not_exists(PK)",
                        }
                    },
                    {
                        "ConditionCheck": {
                            "TableName": self._table,
                            "Key": _to_item({"PK": user_pk(job.user_id), "SK": PROFILE}),
                            "ConditionExpression": "attribute_exists(PK) AND attribute_not_exists(erasing_since)",
                        }
                    },
                ]
            )
        except JobConflict:
            return False
        return True

    def finish_failed(self, job: TrainingJob, reason: str, *, now: datetime) -> bool:
        """In flight -> FAILED with the reason."""
        update = self._finish_job_update(job, ModelState.FAILED, now, failure_reason=reason)
        try:
            self._call("update_item", **update)
        except ClientError:
            return False
        return True

    def settle_profile(self, job: TrainingJob, *, now: datetime) -> bool:
        """The profile follows its active job's outcome; a READY version becomes current only if it is newer."""
        profile_key = {"PK": user_pk(job.user_id), "SK": PROFILE}
        common = {"one": 1, "now": now.isoformat(), "job": job.job_id, "q": "QUEUED", "t": "TRAINING"}
        if job.state is ModelState.FAILED:
            self._update(
                profile_key,
                "SET #state = :failed, revision = revision + :one, updated_at = :now",
                "active_job_id = :job AND #state IN (:q, :t)",
                failed=ModelState.FAILED.value,
                **common,
            )
            return False
        newer = "(attribute_not_exists(current_version) OR current_version < :v)"
        if self._update(
            profile_key,
            "SET #state = :ready, current_version = :v, revision = revision + :one, updated_at = :now",
            f"active_job_id = :job AND #state IN (:q, :t) AND {newer}",
            ready=ModelState.READY.value,
            v=job.version,
            **common,
        ):
            return True
        # Not the active job any more (or already settled): only ever move the pointer forward.
        moved = self._update(
            profile_key,
            "SET current_version = :v, revision = revision + :one, updated_at = :now",
            f"attribute_exists(PK) AND attribute_not_exists(erasing_since) AND {newer}",
            v=job.version,
            one=1,
            now=now.isoformat(),
        )
        profile = self.get_profile(job.user_id)
        return moved or (profile is not None and profile.current_version == job.version)

    def mark_announced(self, job: TrainingJob) -> None:
        """Note that the outcome event was published (a repeated notification then publishes nothing)."""
        self._update(self._job_key(job), "SET announced = :yes", "attribute_exists(PK)", yes=True)

    def overdue_jobs(self, now: datetime) -> list[TrainingJob]:
        """In-flight jobs whose deadline passed (the sparse GSI1 holds only in-flight jobs)."""
        found: list[TrainingJob] = []
        start: dict[str, Any] | None = None
        while True:
            page = self._call(
                "query",
                IndexName=IN_FLIGHT_INDEX,
                KeyConditionExpression="GSI1PK = :pk AND GSI1SK < :now",
                ExpressionAttributeValues=_to_item({":pk": IN_FLIGHT_PK, ":now": _sortable(now)}),
                **({"ExclusiveStartKey": start} if start else {}),
            )
            found.extend(job for job in map(_job_from, page["Items"]) if job.state in IN_FLIGHT)
            start = page.get("LastEvaluatedKey")
            if not start:
                return found

    # --- Erasure -------------------------------------------------------------------------------------------

    def mark_erasing(self, user_id: str, now: datetime) -> None:
        """Stop routing and starting anything for the user: the profile says erasing (created if missing)."""
        self.ensure_user(user_id, now)
        self._call(
            "update_item",
            Key=_to_item({"PK": user_pk(user_id), "SK": PROFILE}),
            UpdateExpression="SET erasing_since = if_not_exists(erasing_since, :now), updated_at = :now",
            ExpressionAttributeValues=_to_item({":now": now.isoformat()}),
        )

    def user_jobs(self, user_id: str) -> list[TrainingJob]:
        """Every job of the user."""
        return [_job_from(item) for item in self._partition(user_id, "JOB#")]

    def _partition(self, user_id: str, prefix: str = "") -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        start: dict[str, Any] | None = None
        while True:
            condition = "PK = :pk AND begins_with(SK, :prefix)" if prefix else "PK = :pk"
            values = {":pk": user_pk(user_id)} | ({":prefix": prefix} if prefix else {})
            page = self._call(
                "query",
                KeyConditionExpression=condition,
                ExpressionAttributeValues=_to_item(values),
                ConsistentRead=True,
                **({"ExclusiveStartKey": start} if start else {}),
            )
            items.extend(page["Items"])
            start = page.get("LastEvaluatedKey")
            if not start:
                return items

    def delete_user_records(self, user_id: str) -> int:
        """Delete every item of the user except the profile (deleted last, by `forget_user`)."""
        doomed = [item for item in self._partition(user_id) if item["SK"]["S"] != PROFILE]
        for start in range(0, len(doomed), 25):
            batch = [{"DeleteRequest": {"Key": {"PK": i["PK"], "SK": i["SK"]}}} for i in doomed[start : start + 25]]
            pending: Any = {self._table: batch}
            while pending:
                try:
                    pending = self._client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or None
                except ClientError as exc:
                    raise StoreUnavailable(
                        f"DynamoDB batch_write_item failed: {exc.response['Error']['Code']}"
                    ) from exc
        return len(doomed)

    def forget_user(self, user_id: str) -> None:
        """Delete the erasing profile, the last record of the user."""
        with contextlib.suppress(ClientError):  # gone already
            self._call(
                "delete_item",
                Key=_to_item({"PK": user_pk(user_id), "SK": PROFILE}),
                ConditionExpression="attribute_exists(erasing_since)",
            )

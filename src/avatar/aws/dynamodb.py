"""The single DynamoDB table: a user's profile, photos, jobs and model versions share one partition.

Items (PK = USER#<user id>):
  SK = PROFILE            the model state machine (state, revision, current_version, active_job_id)
  SK = PHOTO#<photo id>   a photo and its verdict
  SK = JOB#<job id>       a training job (GSI1 indexes in-flight jobs by state and start time)
  SK = MODEL#<version>    an immutable model version (zero-padded so versions sort)
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from avatar.avatars import CurrentModel
from avatar.intake import PhotoNotFound, StoreUnavailable
from avatar.model import ModelState, ModelVersion, Photo, UserProfile, states_leading_to

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

PROFILE = "PROFILE"
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
        photos: list[Photo] = []
        start: dict[str, Any] | None = None
        while True:
            page = self._call(
                "query",
                KeyConditionExpression="PK = :pk AND begins_with(SK, :photo)",
                ExpressionAttributeValues=_to_item({":pk": user_pk(user_id), ":photo": "PHOTO#"}),
                ConsistentRead=True,
                **({"ExclusiveStartKey": start} if start else {}),
            )
            photos.extend(_photo_from(item) for item in page["Items"])
            start = page.get("LastEvaluatedKey")
            if not start:
                return photos

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
        if profile is None:
            return None
        version = (
            self.get_model_version(user_id, profile.current_version) if profile.current_version is not None else None
        )
        return CurrentModel(state=profile.state, artifact_key=version.artifact_key if version else None)

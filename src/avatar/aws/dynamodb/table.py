"""The one DynamoDB table, and the helper every feature's adapter stands on.

A user's profile, photos, jobs and model versions share one partition (PK = USER#<user id>), so a user's photo list
is one query, erasure is one partition, and a job and the profile move in one transaction:

  SK = PROFILE            the user's model (state, revision, current_version, active_job_id, erasing_since)
  SK = PHOTO#<photo id>   a photo and its verdict
  SK = JOB#<job id>       a training job (while in flight, GSI1 indexes it by deadline for the sweeper)
  SK = MODEL#<version>    an immutable model version (zero-padded so versions sort)
  SK = IDEMPOTENCY#<key>  a training request's Idempotency-Key -> its job (expires after a day)
  SK = AVATAR#<time>#...  a generated image in the user's history (expires with the image)

State changes are conditional writes: `state_condition` turns a transition of `avatar.states` into `state IN
(sources)`, and `changes_between` writes only what differs between a record before and after.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel

from avatar.errors import ConcurrentUpdate, StorageUnavailable
from avatar.records import Photo, UserProfile
from avatar.states import Transition, move

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

PROFILE = "PROFILE"
IN_FLIGHT_INDEX = "GSI1"
IN_FLIGHT_PK = "INFLIGHT"
_CONDITION_FAILED = {"ConditionalCheckFailedException", "TransactionCanceledException"}
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def user_pk(user_id: str) -> str:
    """The partition key of everything a user owns."""
    return f"USER#{user_id}"


def photo_sk(photo_id: str) -> str:
    """The sort key of a photo."""
    return f"PHOTO#{photo_id}"


def job_sk(job_id: str) -> str:
    """The sort key of a training job."""
    return f"JOB#{job_id}"


def model_sk(version: int) -> str:
    """The sort key of a model version (zero-padded so versions sort)."""
    return f"MODEL#{version:010d}"


def idempotency_sk(key: str) -> str:
    """The sort key of an Idempotency-Key record."""
    return f"IDEMPOTENCY#{key}"


def sortable(moment: datetime) -> str:
    """A fixed-width UTC timestamp, so string order is time order."""
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%S")


def _numbers(value: Any) -> Any:
    """Floats as Decimals (boto3's serializer refuses floats, to make the caller choose the precision: their repr)."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {name: _numbers(item) for name, item in value.items()}
    if isinstance(value, list | tuple):
        return [_numbers(item) for item in value]
    return value


def to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    """Plain values as DynamoDB attribute values (None is left out)."""
    return {name: _serializer.serialize(_numbers(value)) for name, value in values.items() if value is not None}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {name: _plain(item) for name, item in value.items()}
    if isinstance(value, list | set):
        return [_plain(item) for item in value]
    return value


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """DynamoDB attribute values as plain values (numbers as int where integral)."""
    return {name: _plain(_deserializer.deserialize(value)) for name, value in item.items()}


def record_values(record: BaseModel, **exclude: bool) -> dict[str, Any]:
    """A record's fields as JSON-ready values (what the table stores)."""
    return record.model_dump(mode="json", exclude={name for name, excluded in exclude.items() if excluded})


def changes_between(before: BaseModel, after: BaseModel) -> dict[str, Any]:
    """The fields whose JSON value differs between two versions of a record (None: the attribute goes)."""
    old, new = record_values(before), record_values(after)
    return {name: value for name, value in new.items() if old.get(name) != value}


def state_condition(transition: Transition) -> tuple[str, dict[str, Any]]:
    """`#state IN (...)`: the stored state may leave by `transition` (the state machine as a condition)."""
    sources = sorted(move(transition).sources)
    names = [f":from{index}" for index in range(len(sources))]
    return f"#state IN ({', '.join(names)})", {name: state.value for name, state in zip(names, sources, strict=True)}


class Update:
    """An UpdateExpression built from named changes: SET for values, REMOVE for None."""

    def __init__(self) -> None:
        self.sets: list[str] = []
        self.removes: list[str] = []
        self.names: dict[str, str] = {"#state": "state"}
        self.values: dict[str, Any] = {}

    def set(self, changes: Mapping[str, Any]) -> Update:
        """Set each attribute to its value (remove it where the value is None)."""
        for index, (name, value) in enumerate(changes.items(), start=len(self.names)):
            self.names[f"#a{index}"] = name
            if value is None:
                self.removes.append(f"#a{index}")
            else:
                self.values[f":a{index}"] = value
                self.sets.append(f"#a{index} = :a{index}")
        return self

    def remove(self, *attributes: str) -> Update:
        """Remove attributes (absent ones are fine)."""
        self.removes.extend(attributes)
        return self

    def expression(self) -> str:
        """The UpdateExpression."""
        parts = []
        if self.sets:
            parts.append("SET " + ", ".join(self.sets))
        if self.removes:
            parts.append("REMOVE " + ", ".join(dict.fromkeys(self.removes)))
        return " ".join(parts)


class Table:
    """The table with its client: reads, conditional writes and transactions, errors as `avatar.errors`."""

    def __init__(self, client: DynamoDBClient, name: str) -> None:
        self.client = client
        self.name = name

    def call(self, operation: str, **kwargs: Any) -> Any:
        """One client call on this table; a failed condition raises ConcurrentUpdate, anything else after the
        client's retries StorageUnavailable."""
        try:
            return getattr(self.client, operation)(**kwargs)
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            if code in _CONDITION_FAILED:
                raise ConcurrentUpdate(f"DynamoDB {operation}: a condition failed") from exc
            raise StorageUnavailable(f"DynamoDB {operation} failed: {code}") from exc
        except BotoCoreError as exc:
            raise StorageUnavailable(f"DynamoDB {operation} failed: {exc}") from exc

    def get(self, key: Mapping[str, Any]) -> dict[str, Any] | None:
        """One item by key (strongly consistent), as plain values; None when absent."""
        item = self.call("get_item", TableName=self.name, Key=to_item(key), ConsistentRead=True).get("Item")
        return from_item(item) if item else None

    def put(self, item: Mapping[str, Any], condition: str | None = None, **values: Any) -> bool:
        """Write an item; False when its condition fails."""
        return self._conditional("put_item", {"Item": to_item(item)}, condition, values)

    def delete(self, key: Mapping[str, Any], condition: str | None = None, **values: Any) -> bool:
        """Delete an item; False when its condition fails."""
        return self._conditional("delete_item", {"Key": to_item(key)}, condition, values)

    def _conditional(
        self, operation: str, request: dict[str, Any], condition: str | None, values: Mapping[str, Any]
    ) -> bool:
        request = {"TableName": self.name, **request}
        if condition:
            request["ConditionExpression"] = condition
        if values:
            request["ExpressionAttributeValues"] = to_item(values)
        try:
            self.call(operation, **request)
        except ConcurrentUpdate:
            return False
        return True

    def update_request(self, key: Mapping[str, Any], update: Update, condition: str) -> dict[str, Any]:
        """The arguments of an UpdateItem (also a transaction's Update)."""
        names = {name: attribute for name, attribute in update.names.items() if name in update.expression() + condition}
        request: dict[str, Any] = {
            "TableName": self.name,
            "Key": to_item(key),
            "UpdateExpression": update.expression(),
            "ConditionExpression": condition,
        }
        if names:
            request["ExpressionAttributeNames"] = names
        if update.values:
            request["ExpressionAttributeValues"] = to_item(update.values)
        return request

    def update(self, key: Mapping[str, Any], update: Update, condition: str) -> bool:
        """A conditional UpdateItem; False when the condition fails."""
        return self.apply_update(self.update_request(key, update, condition))

    def apply_update(self, request: dict[str, Any]) -> bool:
        """An UpdateItem made by `update_request`; False when its condition fails."""
        try:
            self.call("update_item", **request)
        except ConcurrentUpdate:
            return False
        return True

    def transact(self, items: list[dict[str, Any]]) -> bool:
        """All the writes or none; False when a condition fails."""
        try:
            self.call("transact_write_items", TransactItems=items)
        except ConcurrentUpdate:
            return False
        return True

    def query(self, **kwargs: Any) -> list[dict[str, Any]]:
        """Every page of a query, as plain values."""
        items: list[dict[str, Any]] = []
        start: dict[str, Any] | None = None
        while True:
            page = self.call("query", TableName=self.name, **kwargs, **({"ExclusiveStartKey": start} if start else {}))
            items.extend(from_item(item) for item in page["Items"])
            start = page.get("LastEvaluatedKey")
            if not start:
                return items

    def partition(self, user_id: str, prefix: str = "") -> list[dict[str, Any]]:
        """The user's items whose sort key starts with `prefix` (all of them without)."""
        values = {":pk": user_pk(user_id)} | ({":prefix": prefix} if prefix else {})
        return self.query(
            KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)" if prefix else "PK = :pk",
            ExpressionAttributeValues=to_item(values),
            ConsistentRead=True,
        )


class UserPartition:
    """What every feature's adapter reads: the user's profile and photos."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self.table = Table(client, table_name)

    def profile_key(self, user_id: str) -> dict[str, str]:
        """The key of the user's profile."""
        return {"PK": user_pk(user_id), "SK": PROFILE}

    def get_profile(self, user_id: str) -> UserProfile | None:
        """The user's profile, or None."""
        item = self.table.get(self.profile_key(user_id))
        return UserProfile.model_validate(item) if item else None

    def ensure_user(self, user_id: str, now: datetime) -> None:
        """Create the user's profile in COLLECTING unless it exists."""
        profile = UserProfile(user_id=user_id, created_at=now, updated_at=now)
        item = self.profile_key(user_id) | {"type": "user"} | record_values(profile)
        self.table.put(item, "attribute_not_exists(PK)")  # False: it exists already

    def list_photos(self, user_id: str) -> list[Photo]:
        """All photos of the user (one partition query)."""
        return [Photo.model_validate(item) for item in self.table.partition(user_id, "PHOTO#")]

"""The user's generated avatars as items of their partition (the generation's AvatarHistory):

  SK = AVATAR#<created, sortable to the microsecond>#<request id>#<index>

so a query of the partition backwards is the history newest first, erasure removes it with the rest of the
partition, and DynamoDB's TTL removes an item when the bucket's lifecycle rule removes its image."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, timedelta

from avatar.aws.dynamodb.table import UserPartition, from_item, record_values, to_item, user_pk
from avatar.errors import InvalidRequest
from avatar.records import GeneratedAvatar

AVATAR = "AVATAR#"
# As long as the bucket keeps generated images (the `outputs/` lifecycle rule in template.yaml).
RETENTION_DAYS = 30
_SORT_KEY = re.compile(r"^AVATAR#\d{8}T\d{6}\.\d{6}#[^#]{1,128}#\d{1,2}$")


def avatar_sk(avatar: GeneratedAvatar) -> str:
    """The sort key of a generated avatar (time order, then request, then index)."""
    created = avatar.created_at.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%f")
    return f"{AVATAR}{created}#{avatar.request_id}#{avatar.index}"


def _cursor(sort_key: str) -> str:
    return base64.urlsafe_b64encode(sort_key.encode()).decode().rstrip("=")


def _sort_key(cursor: str) -> str:
    try:
        decoded = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidRequest("the cursor is not one this API gave") from exc
    if not _SORT_KEY.fullmatch(decoded):
        raise InvalidRequest("the cursor is not one this API gave")
    return decoded


class AvatarHistoryTable(UserPartition):
    """Generated avatars, newest first."""

    def add(self, avatars: list[GeneratedAvatar]) -> None:
        """Record each avatar once (a replayed request keeps the first record)."""
        for avatar in avatars:
            expires_at = int((avatar.created_at + timedelta(days=RETENTION_DAYS)).timestamp())
            item = {"PK": user_pk(avatar.user_id), "SK": avatar_sk(avatar), "type": "avatar"}
            self.table.put(item | record_values(avatar) | {"expires_at": expires_at}, "attribute_not_exists(SK)")

    def page(self, user_id: str, *, limit: int, cursor: str | None) -> tuple[list[GeneratedAvatar], str | None]:
        """Up to `limit` avatars after `cursor`, newest first, and the cursor of the next page (None on the last)."""
        start = {"ExclusiveStartKey": to_item({"PK": user_pk(user_id), "SK": _sort_key(cursor)})} if cursor else {}
        answer = self.table.call(
            "query",
            TableName=self.table.name,
            KeyConditionExpression="PK = :pk AND begins_with(SK, :avatar)",
            ExpressionAttributeValues=to_item({":pk": user_pk(user_id), ":avatar": AVATAR}),
            ScanIndexForward=False,
            Limit=limit + 1,  # one more than shown: whether a next page exists, without an empty last page
            **start,
        )
        items = [from_item(item) for item in answer["Items"]]
        shown = items[:limit]
        following = _cursor(shown[-1]["SK"]) if len(items) > limit else None
        return [GeneratedAvatar.model_validate(item) for item in shown], following

"""Erasure's view of the table: the erasing mark, every record of the user, and the profile last."""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

from avatar.aws.dynamodb.jobs import job_from
from avatar.aws.dynamodb.table import PROFILE, Update, UserPartition, to_item
from avatar.errors import ConcurrentUpdate
from avatar.records import TrainingJob

_BATCH = 25  # BatchWriteItem's limit


class UserTable(UserPartition):
    """A user's records as erasure removes them (the erasure's UserRecords)."""

    def mark_erasing(self, user_id: str, now: datetime) -> None:
        """Stop routing and starting anything for the user: the profile says erasing (created if missing)."""
        self.ensure_user(user_id, now)
        update = Update().set({"updated_at": now.isoformat()})
        update.sets.append("erasing_since = if_not_exists(erasing_since, :since)")
        update.values[":since"] = now.isoformat()
        self.table.update(self.profile_key(user_id), update, "attribute_exists(PK)")

    def user_jobs(self, user_id: str) -> list[TrainingJob]:
        """Every job of the user."""
        return [job_from(item) for item in self.table.partition(user_id, "JOB#")]

    def delete_user_records(self, user_id: str) -> int:
        """Delete every item of the user except the profile (deleted last, by `forget_user`)."""
        doomed = [
            {"PK": item["PK"], "SK": item["SK"]} for item in self.table.partition(user_id) if item["SK"] != PROFILE
        ]
        for start in range(0, len(doomed), _BATCH):
            batch = [{"DeleteRequest": {"Key": to_item(key)}} for key in doomed[start : start + _BATCH]]
            pending: Any = {self.table.name: batch}
            while pending:
                pending = self.table.call("batch_write_item", RequestItems=pending).get("UnprocessedItems") or None
        return len(doomed)

    def forget_user(self, user_id: str) -> None:
        """Delete the erasing profile, the last record of the user (gone already: nothing to do)."""
        with contextlib.suppress(ConcurrentUpdate):
            self.table.call(
                "delete_item",
                TableName=self.table.name,
                Key=to_item(self.profile_key(user_id)),
                ConditionExpression="attribute_exists(erasing_since)",
            )

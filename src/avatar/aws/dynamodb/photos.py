"""The intake's records: pending photos, verdicts (one per upload, never an older one over a newer), deletion."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from avatar.aws.dynamodb.table import UserPartition, photo_sk, to_item, user_pk
from avatar.errors import PhotoNotFound
from avatar.records import Photo, UserProfile

PENDING_SLOT_TTL_SECONDS = 86_400  # a slot never uploaded to is deleted by DynamoDB's TTL a day after its window


def photo_item(photo: Photo) -> dict[str, Any]:
    """A photo as its item."""
    values = photo.model_dump(mode="json", exclude_none=True)
    return {"PK": user_pk(photo.user_id), "SK": photo_sk(photo.photo_id), "type": "photo", **values}


class PhotoTable(UserPartition):
    """Photos and their verdicts (the intake's PhotoRecords)."""

    def add_pending_photos(self, photos: list[Photo], upload_expires_at: datetime, *, seen: UserProfile) -> None:
        """Record new pending photos and move the profile's photo revision on from `seen`'s, in one transaction,
        unless the user is being erased; raises ConcurrentUpdate."""
        expires_at = int(upload_expires_at.timestamp()) + PENDING_SLOT_TTL_SECONDS
        unchanged = "photo_revision = :seen"
        if not seen.photo_revision:  # a profile written before the attribute existed
            unchanged += " OR attribute_not_exists(photo_revision)"
        condition = f"attribute_exists(PK) AND attribute_not_exists(erasing_since) AND ({unchanged})"
        reserve = {
            "Update": {
                "TableName": self.table.name,
                "Key": to_item(self.profile_key(seen.user_id)),
                "UpdateExpression": "SET photo_revision = :next",
                "ConditionExpression": condition,
                "ExpressionAttributeValues": to_item({":seen": seen.photo_revision, ":next": seen.photo_revision + 1}),
            }
        }
        slots = [
            {
                "Put": {
                    "TableName": self.table.name,
                    "Item": to_item(photo_item(photo) | {"expires_at": expires_at}),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            }
            for photo in photos
        ]
        self.table.call("transact_write_items", TransactItems=[reserve, *slots])

    def get_photo(self, user_id: str, photo_id: str) -> Photo | None:
        """One photo of the user, or None."""
        item = self.table.get({"PK": user_pk(user_id), "SK": photo_sk(photo_id)})
        return Photo.model_validate(item) if item else None

    def record_verdict(self, photo: Photo) -> bool:
        """Write the verdict only if the photo still exists and no same-or-newer upload was recorded."""
        return self.table.put(
            photo_item(photo),
            "attribute_exists(PK) AND (attribute_not_exists(sequencer) OR sequencer < :seq)",
            **{":seq": photo.sequencer},
        )

    def replace_verdict(self, photo: Photo, *, expected: Photo) -> bool:
        """Overwrite a recorded verdict only while the item holds the same upload, still accepted (an accepted photo
        is the one with a normalized copy) or still not, as `expected` was."""
        accepted = (
            "attribute_exists(normalized_key)" if expected.normalized_key else "attribute_not_exists(normalized_key)"
        )
        return self.table.put(
            photo_item(photo),
            f"attribute_exists(PK) AND sequencer = :seq AND {accepted}",
            **{":seq": expected.sequencer},
        )

    def delete_photo(self, user_id: str, photo_id: str) -> None:
        """Delete the photo item; raises PhotoNotFound if it is not there."""
        deleted = self.table.call(
            "delete_item",
            TableName=self.table.name,
            Key=to_item({"PK": user_pk(user_id), "SK": photo_sk(photo_id)}),
            ReturnValues="ALL_OLD",
        )
        if not deleted.get("Attributes"):
            raise PhotoNotFound(f"no photo {photo_id}")

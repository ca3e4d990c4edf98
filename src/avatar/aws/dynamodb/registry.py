"""The generate API's view of the table: a user's model and its recorded versions."""

from __future__ import annotations

from avatar.aws.dynamodb.table import UserPartition, model_sk, user_pk
from avatar.records import ModelVersion


class ModelRegistryTable(UserPartition):
    """Users' models and versions (the generation's ModelRegistry)."""

    def get_model_version(self, user_id: str, version: int) -> ModelVersion | None:
        """One recorded version of the user's model, or None."""
        item = self.table.get({"PK": user_pk(user_id), "SK": model_sk(version)})
        return ModelVersion.model_validate(item) if item else None

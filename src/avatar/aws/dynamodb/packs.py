"""Starter packs as items of the user's partition (the generation's StarterPacks):

  SK = PACK#<model version, zero-padded>

Every write is conditional on the revision the writer read, so two deliveries of one AvatarModelReady never make two
packs; erasure removes the item with the rest of the partition."""

from __future__ import annotations

from avatar.aws.dynamodb.table import UserPartition, record_values, user_pk
from avatar.records import StarterPack

PACK = "PACK#"


def pack_sk(model_version: int) -> str:
    """The sort key of a model version's starter pack."""
    return f"{PACK}{model_version:010d}"


class StarterPackTable(UserPartition):
    """Starter packs, one per model version."""

    def get(self, user_id: str, model_version: int) -> StarterPack | None:
        """The pack of a model version (strongly consistent), or None."""
        item = self.table.get({"PK": user_pk(user_id), "SK": pack_sk(model_version)})
        return StarterPack.model_validate(item) if item else None

    def save(self, pack: StarterPack, *, seen: StarterPack | None) -> StarterPack | None:
        """Write the pack if the stored one is still `seen` (None: if there is none); the pack as written (its
        revision one past `seen`'s), or None when another writer moved it first."""
        saved = pack.model_copy(update={"revision": seen.revision + 1 if seen else 1})
        item = {"PK": user_pk(pack.user_id), "SK": pack_sk(pack.model_version), "type": "starter_pack"}
        item |= record_values(saved)
        if seen is None:
            written = self.table.put(item, "attribute_not_exists(SK)")
        else:
            written = self.table.put(item, "revision = :seen", **{":seen": seen.revision})
        return saved if written else None

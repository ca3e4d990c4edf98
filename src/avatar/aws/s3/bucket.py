"""The versioned bucket, and the helper every feature's S3 adapter stands on: reads that say "missing" with None,
writes (conditional where a version must never be replaced), every-version deletion, and errors as
`avatar.errors.StorageUnavailable` after the client's own retries."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from avatar.errors import StorageUnavailable
from avatar.object_keys import s3_uri, split_s3_uri

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

_MISSING = {"NoSuchKey", "NoSuchVersion", "404", "NotFound", "InvalidArgument"}
_EXISTS = {"PreconditionFailed", "412", "ConditionalRequestConflict"}
_DELETE_BATCH = 1000  # DeleteObjects' limit


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class Bucket:
    """One bucket with its client."""

    def __init__(self, client: S3Client, name: str) -> None:
        self.client = client
        self.name = name

    def uri(self, key: str) -> str:
        """`s3://<bucket>/<key>`."""
        return s3_uri(self.name, key)

    def key_of(self, uri: str) -> str | None:
        """The key an s3:// URI names in this bucket; None for another bucket (not ours to touch)."""
        bucket, key = split_s3_uri(uri)
        return key if bucket == self.name else None

    def get(self, key: str, version_id: str | None = None) -> bytes | None:
        """An object's (or one version's) bytes; None when it is missing."""
        arguments: dict[str, Any] = {"Bucket": self.name, "Key": key}
        if version_id:
            arguments["VersionId"] = version_id
        try:
            return bytes(self.client.get_object(**arguments)["Body"].read())
        except ClientError as exc:
            if _code(exc) in _MISSING:
                return None
            raise StorageUnavailable(f"S3 get_object {key}: {_code(exc)}") from exc
        except BotoCoreError as exc:
            raise StorageUnavailable(f"S3 get_object {key}: {exc}") from exc

    def put(
        self,
        key: str,
        data: bytes,
        content_type: str,
        *,
        only_new: bool = False,
        metadata: dict[str, str] | None = None,
    ) -> bool:
        """Store an object (with user `metadata`); with `only_new`, only if the key is absent (S3's If-None-Match: *),
        else False."""
        arguments: dict[str, Any] = {"Bucket": self.name, "Key": key, "Body": data, "ContentType": content_type}
        if metadata:
            arguments["Metadata"] = metadata
        if only_new:
            arguments["IfNoneMatch"] = "*"
        try:
            self.client.put_object(**arguments)
        except ClientError as exc:
            if only_new and _code(exc) in _EXISTS:
                return False
            raise StorageUnavailable(f"S3 put_object {key}: {_code(exc)}") from exc
        except BotoCoreError as exc:
            raise StorageUnavailable(f"S3 put_object {key}: {exc}") from exc
        return True

    def exists(self, key: str) -> bool:
        """Whether an object exists."""
        try:
            self.client.head_object(Bucket=self.name, Key=key)
        except ClientError as exc:
            if _code(exc) in _MISSING:
                return False
            raise StorageUnavailable(f"S3 head_object {key}: {_code(exc)}") from exc
        except BotoCoreError as exc:
            raise StorageUnavailable(f"S3 head_object {key}: {exc}") from exc
        return True

    def delete_versions(self, prefix: str, *, exact: bool = False) -> int:
        """Delete every version and delete marker under `prefix` (of exactly that key with `exact`), so nothing of
        it is left in the versioned bucket; returns how many."""
        removed = 0
        try:
            for page in self.client.get_paginator("list_object_versions").paginate(Bucket=self.name, Prefix=prefix):
                doomed: list[Any] = [
                    {"Key": entry["Key"], "VersionId": entry["VersionId"]}
                    for entry in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
                    if not exact or entry["Key"] == prefix
                ]
                for start in range(0, len(doomed), _DELETE_BATCH):
                    self.client.delete_objects(
                        Bucket=self.name, Delete={"Objects": doomed[start : start + _DELETE_BATCH], "Quiet": True}
                    )
                removed += len(doomed)
        except ClientError as exc:
            raise StorageUnavailable(f"S3 delete under {prefix}: {_code(exc)}") from exc
        except BotoCoreError as exc:
            raise StorageUnavailable(f"S3 delete under {prefix}: {exc}") from exc
        return removed

"""S3 adapters: photo files (presigned uploads, versioned reads, deletion), generated images, orchestration files."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from avatar.intake import ObjectGone, PresignedUpload, StoreUnavailable
from avatar.keys import s3_uri, split_s3_uri
from avatar.training_jobs import RetryLater

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

_MISSING = {"NoSuchKey", "NoSuchVersion", "404", "InvalidArgument"}


class PhotoBucket:
    """The photo bucket (versioned)."""

    def __init__(self, client: S3Client, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def presign_upload(self, key: str, *, max_bytes: int, expires_in: int) -> PresignedUpload:
        """A presigned POST for exactly `key`, with an image/* Content-Type and a size cap enforced by S3."""
        post = self._client.generate_presigned_post(
            Bucket=self._bucket,
            Key=key,
            Conditions=[["content-length-range", 1, max_bytes], ["starts-with", "$Content-Type", "image/"]],
            ExpiresIn=expires_in,
        )
        return PresignedUpload(url=post["url"], fields=dict(post["fields"]))

    def read(self, key: str, version_id: str | None) -> bytes:
        """The bytes of one object version."""
        try:
            if version_id:
                response = self._client.get_object(Bucket=self._bucket, Key=key, VersionId=version_id)
            else:
                response = self._client.get_object(Bucket=self._bucket, Key=key)
            return response["Body"].read()
        except ClientError as exc:
            if exc.response["Error"]["Code"] in _MISSING:
                raise ObjectGone(f"{key} version {version_id} is gone") from exc
            raise StoreUnavailable(f"S3 get_object failed: {exc.response['Error']['Code']}") from exc

    def write(self, key: str, data: bytes, content_type: str) -> None:
        """Store an object."""
        try:
            self._client.put_object(Bucket=self._bucket, Key=key, Body=data, ContentType=content_type)
        except ClientError as exc:
            raise StoreUnavailable(f"S3 put_object failed: {exc.response['Error']['Code']}") from exc

    def delete_all_versions(self, key: str) -> None:
        """Delete every version and delete marker of exactly `key`, so nothing of it is left."""
        try:
            paginator = self._client.get_paginator("list_object_versions")
            for page in paginator.paginate(Bucket=self._bucket, Prefix=key):
                doomed: list[Any] = [
                    {"Key": entry["Key"], "VersionId": entry["VersionId"]}
                    for entry in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
                    if entry["Key"] == key
                ]
                if doomed:
                    self._client.delete_objects(Bucket=self._bucket, Delete={"Objects": doomed, "Quiet": True})
        except ClientError as exc:
            raise StoreUnavailable(f"S3 delete failed: {exc.response['Error']['Code']}") from exc


class OutputBucket:
    """Generated avatars: written once, shared by short-lived presigned GET URLs."""

    def __init__(self, client: S3Client, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def put_png(self, key: str, png: bytes) -> None:
        """Store one PNG."""
        from avatar.avatars import StorageUnavailable

        try:
            self._client.put_object(Bucket=self._bucket, Key=key, Body=png, ContentType="image/png")
        except ClientError as exc:
            raise StorageUnavailable(f"S3 put_object failed: {exc.response['Error']['Code']}") from exc

    def share(self, key: str, *, expires_in: int) -> str:
        """A presigned GET URL valid for `expires_in` seconds."""
        return str(
            self._client.generate_presigned_url(
                "get_object", Params={"Bucket": self._bucket, "Key": key}, ExpiresIn=expires_in
            )
        )


class OrchestrationBucket:
    """The bucket as the orchestration sees it: manifests, asynchronous results, progress, and whole-prefix deletion.

    Every S3 failure becomes RetryLater, so the message that led here comes back after its visibility timeout.
    """

    def __init__(self, client: S3Client, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def write_manifest(self, key: str, body: bytes) -> str:
        """Store a manifest; returns its s3:// URI."""
        try:
            self._client.put_object(Bucket=self._bucket, Key=key, Body=body, ContentType="application/json")
        except ClientError as exc:
            raise RetryLater(f"S3 put_object {key}: {exc.response['Error']['Code']}") from exc
        return s3_uri(self._bucket, key)

    def _get(self, key: str) -> bytes | None:
        try:
            return self._client.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response["Error"]["Code"] in _MISSING:
                return None
            raise RetryLater(f"S3 get_object {key}: {exc.response['Error']['Code']}") from exc

    def read_result(self, uri: str) -> bytes | None:
        """An asynchronous output or failure object of this bucket; None when missing or elsewhere."""
        bucket, key = split_s3_uri(uri)
        return self._get(key) if bucket == self._bucket else None

    def exists(self, key: str) -> bool:
        """Whether an object exists."""
        try:
            self._client.head_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in {*_MISSING, "NotFound"}:
                return False
            raise RetryLater(f"S3 head_object {key}: {exc.response['Error']['Code']}") from exc
        return True

    def read_progress(self, key: str) -> dict[str, Any] | None:
        """The progress the trainer published, or None (a damaged file reads as none)."""
        body = self._get(key)
        try:
            progress = json.loads(body) if body else None
        except json.JSONDecodeError:
            return None
        return progress if isinstance(progress, dict) else None

    def delete_everything_under(self, prefix: str, *, exact: bool = False) -> int:
        """Delete every version and delete marker under `prefix` (of exactly that key with `exact`)."""
        removed = 0
        try:
            for page in self._client.get_paginator("list_object_versions").paginate(Bucket=self._bucket, Prefix=prefix):
                doomed: list[Any] = [
                    {"Key": entry["Key"], "VersionId": entry["VersionId"]}
                    for entry in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
                    if not exact or entry["Key"] == prefix
                ]
                for start in range(0, len(doomed), 1000):
                    self._client.delete_objects(
                        Bucket=self._bucket, Delete={"Objects": doomed[start : start + 1000], "Quiet": True}
                    )
                removed += len(doomed)
        except ClientError as exc:
            raise RetryLater(f"S3 delete under {prefix}: {exc.response['Error']['Code']}") from exc
        return removed

    def delete_uri(self, uri: str) -> None:
        """Delete every version of one object named by URI (objects of other buckets are not ours to delete)."""
        bucket, key = split_s3_uri(uri)
        if bucket == self._bucket:
            self.delete_everything_under(key, exact=True)

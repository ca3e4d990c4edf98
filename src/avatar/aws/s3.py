"""S3 adapter for photo files: presigned uploads, versioned reads, writes and complete deletion."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from avatar.intake import ObjectGone, PresignedUpload, StoreUnavailable

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

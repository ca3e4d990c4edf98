"""The intake's files: presigned uploads of originals, versioned reads, normalized copies, deletion of every version."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from avatar.aws.s3.bucket import Bucket
from avatar.errors import StorageUnavailable
from avatar.intake.ports import PresignedUpload


class PhotoBucket(Bucket):
    """Photo files (the intake's PhotoFiles)."""

    def presign_upload(self, key: str, *, max_bytes: int, expires_in: int) -> PresignedUpload:
        """A presigned POST for exactly `key`, with an image/* Content-Type and a size cap enforced by S3."""
        try:
            post = self.client.generate_presigned_post(
                Bucket=self.name,
                Key=key,
                Conditions=[["content-length-range", 1, max_bytes], ["starts-with", "$Content-Type", "image/"]],
                ExpiresIn=expires_in,
            )
        except (ClientError, BotoCoreError) as exc:
            raise StorageUnavailable(f"S3 presigned POST for {key}: {exc}") from exc
        return PresignedUpload(url=post["url"], fields=dict(post["fields"]))

    def read(self, key: str, version_id: str | None) -> bytes | None:
        """The bytes of one object version; None when it is gone."""
        return self.get(key, version_id)

    def write(self, key: str, data: bytes, content_type: str) -> None:
        """Store an object."""
        self.put(key, data, content_type)

    def delete_all_versions(self, key: str) -> None:
        """Delete every version and delete marker of exactly `key`."""
        self.delete_versions(key, exact=True)

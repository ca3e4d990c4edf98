"""S3 adapter for the training job: photos in, progress and the model archive out, cached class images."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from avatar.training.class_images import INDEX_NAME, class_image_names
from avatar.training.job import StorageError
from avatar.training.progress import TrainingProgress

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

logger = logging.getLogger(__name__)

_MISSING = {"NoSuchKey", "404", "NotFound"}
_EXISTS = {"PreconditionFailed", "412", "ConditionalRequestConflict"}


class TrainingBucket:
    """The bucket as the training job sees it (the client's retry mode handles throttling and 5xx)."""

    def __init__(self, client: S3Client, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def read(self, key: str) -> bytes:
        """An object's bytes; KeyError when missing."""
        try:
            return self._client.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response["Error"]["Code"] in _MISSING:
                raise KeyError(key) from exc
            raise StorageError(f"S3 get_object {key}: {exc.response['Error']['Code']}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"S3 get_object {key}: {exc}") from exc

    def write_new(self, key: str, data: bytes, content_type: str) -> None:
        """Create `key` only if absent (S3 conditional write, If-None-Match: *)."""
        try:
            self._client.put_object(Bucket=self._bucket, Key=key, Body=data, ContentType=content_type, IfNoneMatch="*")
        except ClientError as exc:
            if exc.response["Error"]["Code"] in _EXISTS:
                raise FileExistsError(key) from exc
            raise StorageError(f"S3 put_object {key}: {exc.response['Error']['Code']}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"S3 put_object {key}: {exc}") from exc

    def write(self, key: str, data: bytes, content_type: str) -> None:
        """Create or replace `key`."""
        try:
            self._client.put_object(Bucket=self._bucket, Key=key, Body=data, ContentType=content_type)
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"S3 put_object {key}: {exc}") from exc


class S3ProgressPublisher:
    """Writes a job's latest progress as JSON (wrap in `Throttled`); a failed write is logged, never fatal."""

    def __init__(self, bucket: TrainingBucket, key: str, *, job: dict[str, str]) -> None:
        self._bucket = bucket
        self._key = key
        self._job = job

    def __call__(self, progress: TrainingProgress) -> None:
        """Publish `progress`."""
        body = json.dumps(self._job | progress.as_dict()).encode()
        try:
            self._bucket.write(self._key, body, "application/json")
        except StorageError:
            logger.warning("could not publish progress to %s", self._key, exc_info=True)


class S3ClassImageStore:
    """Cached class images under `s3://bucket/<prefix>/<key>/`, shared by every job on every instance."""

    def __init__(self, client: S3Client, bucket: str, prefix: str) -> None:
        self._bucket = TrainingBucket(client, bucket)
        self._prefix = prefix.strip("/")

    def load(self, key: str) -> list[bytes] | None:
        """The PNGs of a complete set, or None."""
        try:
            index = json.loads(self._bucket.read(f"{self._prefix}/{key}/{INDEX_NAME}"))
        except KeyError:
            return None
        return [self._bucket.read(f"{self._prefix}/{key}/{name}") for name in index["files"]]

    def save(self, key: str, pngs: Sequence[bytes], index: dict[str, Any]) -> None:
        """Upload the PNGs, then the index that marks the set complete."""
        names = class_image_names(len(pngs))
        for name, png in zip(names, pngs, strict=True):
            self._bucket.write(f"{self._prefix}/{key}/{name}", png, "image/png")
        body = json.dumps(index | {"files": names}).encode()
        self._bucket.write(f"{self._prefix}/{key}/{INDEX_NAME}", body, "application/json")

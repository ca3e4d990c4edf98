"""The bucket as the GPU training job sees it: photos in, progress and the model archive out, cached class images.

Its client retries throttling and 5xx itself (botocore's standard mode); what still fails is StorageUnavailable.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from avatar.aws.s3.bucket import Bucket
from avatar.contracts.training import TrainingProgress
from avatar.errors import StorageUnavailable
from avatar.fine_tuning.class_images import INDEX_NAME, class_image_names

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

logger = logging.getLogger(__name__)


class TrainingBucket(Bucket):
    """Photos in, the model archive and progress out (the fine-tuning job's TrainingStorage)."""

    def read(self, key: str) -> bytes | None:
        """An object's bytes; None when it is missing."""
        return self.get(key)

    def write_new(self, key: str, data: bytes, content_type: str) -> bool:
        """Create `key` only if absent (a model version is never replaced); False when it exists."""
        return self.put(key, data, content_type, only_new=True)

    def write(self, key: str, data: bytes, content_type: str) -> None:
        """Create or replace `key`."""
        self.put(key, data, content_type)


class S3ProgressPublisher:
    """Writes a job's latest progress as JSON, naming the job (wrap it in `Throttled`); a failed write is logged,
    never fatal."""

    def __init__(self, bucket: TrainingBucket, key: str, *, user_id: str, job_id: str) -> None:
        self._bucket = bucket
        self._key = key
        self._job = {"user_id": user_id, "job_id": job_id}

    def __call__(self, progress: TrainingProgress) -> None:
        """Publish `progress`."""
        body = progress.model_copy(update=self._job).model_dump_json().encode()
        try:
            self._bucket.write(self._key, body, "application/json")
        except StorageUnavailable:
            logger.warning("could not publish progress to %s", self._key, exc_info=True)


class S3ClassImageStore:
    """Cached class images under `s3://bucket/<prefix>/<key>/`, shared by every job on every instance."""

    def __init__(self, client: S3Client, bucket: str, prefix: str) -> None:
        self._bucket = TrainingBucket(client, bucket)
        self._prefix = prefix.strip("/")

    def load(self, key: str) -> list[bytes] | None:
        """The PNGs of a complete set, or None."""
        index = self._bucket.read(f"{self._prefix}/{key}/{INDEX_NAME}")
        if index is None:
            return None
        pngs = [self._bucket.read(f"{self._prefix}/{key}/{name}") for name in json.loads(index)["files"]]
        return None if any(png is None for png in pngs) else [png for png in pngs if png is not None]

    def save(self, key: str, pngs: Sequence[bytes], index: dict[str, Any]) -> None:
        """Upload the PNGs, then the index that marks the set complete."""
        names = class_image_names(len(pngs))
        for name, png in zip(names, pngs, strict=True):
            self._bucket.write(f"{self._prefix}/{key}/{name}", png, "image/png")
        body = json.dumps(index | {"files": names}).encode()
        self._bucket.write(f"{self._prefix}/{key}/{INDEX_NAME}", body, "application/json")

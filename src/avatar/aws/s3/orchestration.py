"""The bucket as the orchestration and erasure see it: manifests, asynchronous results, progress, and deletion."""

from __future__ import annotations

from pydantic import ValidationError

from avatar.aws.s3.bucket import Bucket
from avatar.contracts.training import TrainingProgress


class OrchestrationBucket(Bucket):
    """Manifests, results and users' objects (the training jobs' TrainingFiles, the erasure's UserFiles)."""

    def write_manifest(self, key: str, body: bytes) -> str:
        """Store a manifest; returns its s3:// URI."""
        self.put(key, body, "application/json")
        return self.uri(key)

    def read_result(self, uri: str) -> bytes | None:
        """An asynchronous output or failure object of this bucket; None when missing or elsewhere."""
        key = self.key_of(uri)
        return self.get(key) if key is not None else None

    def read_progress(self, key: str) -> TrainingProgress | None:
        """The progress the training job published, or None (a damaged file reads as none)."""
        body = self.get(key)
        try:
            return TrainingProgress.model_validate_json(body) if body else None
        except ValidationError:
            return None

    def delete_everything_under(self, prefix: str) -> int:
        """Delete every version and delete marker under `prefix`."""
        return self.delete_versions(prefix)

    def delete_object(self, key: str) -> None:
        """Delete every version of exactly `key`."""
        self.delete_versions(key, exact=True)

    def delete_uri(self, uri: str) -> None:
        """Delete every version of one object named by URI (objects of other buckets are not ours to delete)."""
        key = self.key_of(uri)
        if key is not None:
            self.delete_versions(key, exact=True)

"""What generating avatars needs from the outside: the user's model records, the multi-model endpoint, and where
images are kept."""

from __future__ import annotations

from typing import Protocol

from avatar.contracts.generation import GeneratedImage, GenerationRequest
from avatar.records import ModelVersion, UserProfile


class ModelRegistry(Protocol):
    """Where users' models and their versions are recorded."""

    def get_profile(self, user_id: str) -> UserProfile | None:
        """The user's profile, or None for an unknown user."""
        ...

    def get_model_version(self, user_id: str, version: int) -> ModelVersion | None:
        """One recorded version of the user's model, or None."""
        ...


class AvatarEndpoint(Protocol):
    """The multi-model endpoint, addressed by the artifact key of a user's model."""

    def generate(self, artifact_key: str, request: GenerationRequest) -> list[GeneratedImage]:
        """Images for the request; raises ServingBusy (retry) or GenerationRejected (do not)."""
        ...


class ImageStore(Protocol):
    """Where generated images are kept and shared."""

    def put_png(self, key: str, png: bytes) -> None:
        """Store one PNG."""

    def share(self, key: str, *, expires_in: int) -> str:
        """A short-lived URL to read the object."""
        ...

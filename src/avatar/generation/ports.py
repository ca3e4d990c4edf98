"""What generating avatars needs from the outside: the user's model records, the multi-model endpoint, and where
images are kept."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from avatar.contracts.generation import GeneratedImage, GenerationRequest
from avatar.records import GeneratedAvatar, ModelVersion, StarterPack, UserProfile


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

    def generate(
        self, artifact_key: str, request: GenerationRequest, *, deadline: float | None = None
    ) -> list[GeneratedImage]:
        """Images for the request, not started after `deadline` (a Unix time: the caller has given up by then);
        raises ServingBusy (retry) or GenerationRejected (do not)."""
        ...


class RequestsInFlight(Protocol):
    """Each user's generate requests in progress, across every function instance."""

    def begin(self, user_id: str, request_id: str, *, until: datetime, limit: int, now: datetime) -> bool:
        """Count the request in until it ends or `until`; False when the user has `limit` in flight already."""
        ...

    def end(self, user_id: str, request_id: str, *, now: datetime) -> None:
        """The request is over."""


class ImageStore(Protocol):
    """Where generated images are kept and shared."""

    def put_png(self, key: str, png: bytes, *, likeness: float | None, face_found: bool | None) -> None:
        """Store one PNG with its likeness to the user (None: not scored)."""

    def share(self, key: str, *, expires_in: int) -> str:
        """A short-lived URL to read the object."""
        ...


class ImageSigner(Protocol):
    """Content credentials: signs each PNG before it is stored (avatar.provenance.content_credentials)."""

    def sign_png(self, png: bytes, *, title: str = "avatar.png") -> bytes:
        """The PNG with its signed C2PA manifest."""
        ...


class AvatarHistory(Protocol):
    """The record of every avatar a user generated (erased with the user, expiring with the images)."""

    def add(self, avatars: list[GeneratedAvatar]) -> None:
        """Record generated avatars (recording the same one twice keeps the first)."""

    def page(self, user_id: str, *, limit: int, cursor: str | None) -> tuple[list[GeneratedAvatar], str | None]:
        """Up to `limit` of the user's avatars, newest first, after `cursor`; and the next page's cursor, None on the
        last. Raises InvalidRequest for a cursor this history did not give to this user."""
        ...


class StarterPacks(Protocol):
    """Each model version's starter pack, written conditionally so one event makes one pack."""

    def get(self, user_id: str, model_version: int) -> StarterPack | None:
        """The pack of a model version (strongly consistent), or None."""
        ...

    def save(self, pack: StarterPack, *, seen: StarterPack | None) -> StarterPack | None:
        """Write the pack if nobody moved it since `seen` (None: only if there is none); the pack as written (the
        next revision), or None when another writer moved it first."""
        ...

"""Generating avatars for a signed-in user: find their current model, call the multi-model endpoint, keep the images.

Plain domain code: the model registry, the endpoint and the image store are ports; the generate Lambda wires AWS in.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from avatar.keys import generated_image_key
from avatar.model import ModelState
from avatar.serving.generation import GeneratedImage, GenerationRequest, first_seed

logger = logging.getLogger(__name__)


class GenerateError(Exception):
    """Base of the generate service's errors; `code` is stable for clients."""

    code = "generate_error"


class NoReadyModel(GenerateError):
    """The user has no trained model to generate with."""

    code = "no_ready_model"

    def __init__(self, state: ModelState | None) -> None:
        super().__init__(f"no ready model: the model is {state.value if state else 'not started'}")
        self.state = state


class ServingUnavailable(GenerateError):
    """The endpoint stayed busy, loading or down for the whole time budget."""

    code = "serving_unavailable"

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class GenerationRejected(GenerateError):
    """The model refused or failed this request (not worth retrying)."""

    code = "generation_failed"


class StorageUnavailable(GenerateError):
    """Generated images could not be stored."""

    code = "storage_unavailable"


class EndpointBusy(Exception):
    """A retryable endpoint answer: model loading, throttled, out of memory (507) or unreachable."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class CurrentModel:
    """The model version a user's requests are routed to."""

    state: ModelState
    artifact_key: str | None


class ModelRegistry(Protocol):
    """Where users' model state and versions are recorded."""

    def current_model(self, user_id: str) -> CurrentModel | None:
        """The user's model pointer, or None for an unknown user."""


class AvatarEndpoint(Protocol):
    """The multi-model endpoint, addressed by the artifact key of a user's model."""

    def generate(self, artifact_key: str, request: GenerationRequest) -> list[GeneratedImage]:
        """Images for the request; raises EndpointBusy (retry) or GenerationRejected (do not)."""


class ImageStore(Protocol):
    """Where generated images are kept and shared."""

    def put_png(self, key: str, png: bytes) -> None:
        """Store one PNG."""

    def share(self, key: str, *, expires_in: int) -> str:
        """A short-lived URL to read the object."""


@dataclass(frozen=True)
class Avatar:
    """One generated image as the client sees it."""

    url: str
    seed: int


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff inside the API's time budget (API Gateway answers within ~30 s)."""

    budget_seconds: float = 24.0
    first_delay_seconds: float = 0.5
    max_delay_seconds: float = 4.0
    retry_after_seconds: int = 10


def routed_model(user_id: str, registry: ModelRegistry) -> str:
    """The artifact key of the user's current model; raises NoReadyModel (with the state) when there is none.

    A user retraining (QUEUED, TRAINING) or whose retraining failed keeps generating with the current version.
    """
    current = registry.current_model(user_id)
    if current is None or current.artifact_key is None:
        raise NoReadyModel(current.state if current else None)
    return current.artifact_key


def create_avatars(
    user_id: str,
    request: GenerationRequest,
    *,
    request_id: str,
    registry: ModelRegistry,
    endpoint: AvatarEndpoint,
    images: ImageStore,
    url_ttl_seconds: int,
    policy: RetryPolicy = RetryPolicy(),
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Avatar]:
    """Generate with the user's model (retrying busy answers inside the budget), store the PNGs, share them."""
    artifact_key = routed_model(user_id, registry)
    # A fixed seed before the first attempt: a retried request makes the same images.
    request = request.model_copy(update={"seed": first_seed(request)})
    deadline = clock() + policy.budget_seconds
    delay = policy.first_delay_seconds
    attempt = 0
    while True:
        attempt += 1
        try:
            generated = endpoint.generate(artifact_key, request)  # each attempt is bounded by the client's read timeout
            break
        except EndpointBusy as busy:
            pause = random.uniform(delay / 2, delay)  # noqa: S311 (jitter, not security)
            if clock() + pause >= deadline:
                logger.warning("endpoint busy after %d attempt(s): %s", attempt, busy.reason)
                raise ServingUnavailable(
                    f"the avatar service is busy ({busy.reason}); try again shortly", policy.retry_after_seconds
                ) from busy
            logger.info("endpoint busy (%s), retrying in %.1f s", busy.reason, pause)
            sleep(pause)
            delay = min(delay * 2, policy.max_delay_seconds)
    avatars = []
    for index, image in enumerate(generated):
        key = generated_image_key(user_id, request_id, index, image.seed)
        images.put_png(key, image.png)
        avatars.append(Avatar(url=images.share(key, expires_in=url_ttl_seconds), seed=image.seed))
    return avatars

"""Generating avatars for a signed-in user: find their current model, call the multi-model endpoint (retrying busy
answers within the API's time budget), keep the images and share them."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from avatar.contracts.generation import GenerationRequest
from avatar.errors import NoReadyModel, ServingBusy, ServingUnavailable
from avatar.generation.ports import AvatarEndpoint, ImageStore, ModelRegistry
from avatar.object_keys import generated_image_key
from avatar.states import ModelState

logger = logging.getLogger(__name__)


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


def _no_ready_model(state: ModelState | None) -> NoReadyModel:
    shown = state.value if state else None
    return NoReadyModel(f"no ready model: the model is {shown or 'not started'}", model_state=shown)


def routed_model(user_id: str, registry: ModelRegistry) -> str:
    """The artifact key of the user's current model; raises NoReadyModel (with the state) when there is none.

    A user retraining (QUEUED, TRAINING) or whose retraining failed keeps generating with the current version; a user
    being erased gets nothing, from the moment they asked.
    """
    profile = registry.get_profile(user_id)
    if profile is None or profile.erasing:
        raise _no_ready_model(None)
    version = None
    if profile.current_version is not None:
        version = registry.get_model_version(user_id, profile.current_version)
    if version is None:
        raise _no_ready_model(profile.state)
    return version.artifact_key


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
    request = request.with_fixed_seed()  # a retried request makes the same images
    deadline = clock() + policy.budget_seconds
    delay = policy.first_delay_seconds
    attempt = 0
    while True:
        attempt += 1
        try:
            generated = endpoint.generate(artifact_key, request)  # each attempt is bounded by the client's read timeout
            break
        except ServingBusy as busy:
            pause = random.uniform(delay / 2, delay)  # noqa: S311 (jitter, not security)
            if clock() + pause >= deadline:
                logger.warning("endpoint busy after %d attempt(s): %s", attempt, busy)
                raise ServingUnavailable(
                    f"the avatar service is busy ({busy}); try again shortly",
                    retry_after_seconds=policy.retry_after_seconds,
                ) from busy
            logger.info("endpoint busy (%s), retrying in %.1f s", busy, pause)
            sleep(pause)
            delay = min(delay * 2, policy.max_delay_seconds)
    avatars = []
    for index, image in enumerate(generated):
        key = generated_image_key(user_id, request_id, index, image.seed)
        images.put_png(key, image.png)
        avatars.append(Avatar(url=images.share(key, expires_in=url_ttl_seconds), seed=image.seed))
    return avatars

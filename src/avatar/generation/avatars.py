"""Generating avatars for a signed-in user: find their current model, call the multi-model endpoint (retrying busy
answers within the API's time budget), keep the images and share them."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from avatar.contracts.generation import MAX_STEP_MEGAPIXELS, NATIVE_SIDE, GeneratedImage, GenerationRequest
from avatar.errors import InvalidRequest, NoReadyModel, ServingBusy, ServingUnavailable, TooManyRequests
from avatar.generation.ports import (
    AvatarEndpoint,
    AvatarHistory,
    ImageSigner,
    ImageStore,
    ModelRegistry,
    RequestsInFlight,
)
from avatar.generation.prompt_policy import screen_prompt
from avatar.object_keys import generated_image_key
from avatar.records import GeneratedAvatar
from avatar.states import ModelState

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Avatar:
    """One generated image as the client sees it, with its likeness to the user where it was scored."""

    url: str
    seed: int
    likeness: float | None = None
    face_found: bool | None = None


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff inside the API's time budget (API Gateway answers within ~30 s)."""

    budget_seconds: float = 24.0
    first_delay_seconds: float = 0.5
    max_delay_seconds: float = 4.0
    retry_after_seconds: int = 10


@dataclass(frozen=True)
class FairShare:
    """What one user may take of the endpoint: requests in flight at once, and what one request may cost (steps x
    megapixels x images, sized so the heaviest fits well inside the API's budget on the deployment's hardware)."""

    in_flight: RequestsInFlight
    max_in_flight: int = 2
    max_step_megapixels: float = MAX_STEP_MEGAPIXELS
    native_side: int = NATIVE_SIDE  # the base's native size, for requests that leave the size out
    # A lease outlives the call by this much at most: a function that died gives its place back by then.
    lease_margin_seconds: float = 30.0


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
    wall_clock: Callable[[], float] = time.time,
    fair_share: FairShare | None = None,
    history: AvatarHistory | None = None,
    style: str | None = None,
    signer: Callable[[], ImageSigner] | None = None,
) -> list[Avatar]:
    """Generate with the user's model (retrying busy answers inside the budget), store the PNGs, share them. The
    endpoint is told when this call stops waiting, so work still queued then is not done for nobody. With
    `fair_share`, a user with as many requests in flight as allowed gets TooManyRequests (429) instead. With
    `history`, every image is recorded there (prompt, style, seed, likeness) for the user's gallery. With `signer`
    (called once the request is known to be valid, before any GPU time), every image carries its signed C2PA manifest
    before it is stored."""
    screen_prompt(request.prompt)  # before any GPU time, and before the model is looked up
    artifact_key = routed_model(user_id, registry)
    image_signer = signer() if signer is not None else None  # no image is made that could not be signed
    with _counted_in(fair_share, request, user_id, request_id, policy, wall_clock):
        request = request.with_fixed_seed()  # a retried request makes the same images
        generated = generate_with_retries(
            endpoint, artifact_key, request, policy=policy, clock=clock, sleep=sleep, wall_clock=wall_clock
        )
        return store_avatars(
            user_id,
            request,
            generated,
            request_id=request_id,
            images=images,
            url_ttl_seconds=url_ttl_seconds,
            created_at=datetime.fromtimestamp(wall_clock(), UTC),
            history=history,
            style=style,
            signer=image_signer,
        )


def generate_with_retries(
    endpoint: AvatarEndpoint,
    artifact_key: str,
    request: GenerationRequest,
    *,
    policy: RetryPolicy,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    wall_clock: Callable[[], float] = time.time,
) -> list[GeneratedImage]:
    """The endpoint's images for the request, retrying busy answers (a model still loading, throttling) with jittered
    backoff inside the policy's budget; raises ServingUnavailable when it stays busy, GenerationRejected when the model
    refuses. The endpoint is told when the caller stops waiting, so work still queued then is not done for nobody."""
    deadline = clock() + policy.budget_seconds
    gives_up_at = wall_clock() + policy.budget_seconds
    delay = policy.first_delay_seconds
    attempt = 0
    while True:
        attempt += 1
        try:
            # Each attempt is bounded by the client's read timeout.
            return endpoint.generate(artifact_key, request, deadline=gives_up_at)
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


def store_avatars(
    user_id: str,
    request: GenerationRequest,
    generated: list[GeneratedImage],
    *,
    request_id: str,
    images: ImageStore,
    url_ttl_seconds: int,
    created_at: datetime,
    history: AvatarHistory | None = None,
    style: str | None = None,
    starter_pack: bool = False,
    signer: ImageSigner | None = None,
) -> list[Avatar]:
    """Sign each image's content credentials (with `signer`), keep it (`outputs/<user>/<request id>/...`), share it,
    and record it in the user's history."""
    avatars, records = [], []
    for index, image in enumerate(generated):
        key = generated_image_key(user_id, request_id, index, image.seed)
        png = signer.sign_png(image.png, title=key.rsplit("/", 1)[-1]) if signer is not None else image.png
        images.put_png(key, png, likeness=image.likeness, face_found=image.face_found)
        url = images.share(key, expires_in=url_ttl_seconds)
        avatars.append(Avatar(url=url, seed=image.seed, likeness=image.likeness, face_found=image.face_found))
        records.append(
            GeneratedAvatar(
                user_id=user_id,
                request_id=request_id,
                index=index,
                image_key=key,
                seed=image.seed,
                prompt=request.prompt,
                negative_prompt=request.negative_prompt,
                width=request.width,
                height=request.height,
                likeness=image.likeness,
                face_found=image.face_found,
                created_at=created_at,
                style=style,
                starter_pack=starter_pack,
            )
        )
    if history is not None:
        history.add(records)
    return avatars


@contextmanager
def _counted_in(
    fair_share: FairShare | None,
    request: GenerationRequest,
    user_id: str,
    request_id: str,
    policy: RetryPolicy,
    wall_clock: Callable[[], float],
) -> Iterator[None]:
    """Check the request's cost and hold one of the user's places in flight for the call (nothing without
    `fair_share`); raises InvalidRequest or TooManyRequests."""
    if fair_share is None:
        yield
        return
    cost = request.step_megapixels(fair_share.native_side)
    if cost > fair_share.max_step_megapixels:
        raise InvalidRequest(
            f"steps x megapixels x images is {cost:.2f}, over this deployment's {fair_share.max_step_megapixels:g}: "
            "use fewer steps, a smaller size or fewer images"
        )
    now = datetime.fromtimestamp(wall_clock(), UTC)
    until = now + timedelta(seconds=policy.budget_seconds + fair_share.lease_margin_seconds)
    if not fair_share.in_flight.begin(user_id, request_id, until=until, limit=fair_share.max_in_flight, now=now):
        raise TooManyRequests(
            f"you have {fair_share.max_in_flight} avatar requests in progress; send the next when one is done",
            retry_after_seconds=policy.retry_after_seconds,
        )
    try:
        yield
    finally:
        fair_share.in_flight.end(user_id, request_id, now=datetime.fromtimestamp(wall_clock(), UTC))

"""The starter pack: when a person's model becomes ready, a few images in each of the catalog's pack styles are made
without their asking, and announced with AvatarPackReady.

It is a subscriber like any other system's: it learns of the model from AvatarModelReady (EventBridge rule -> SQS ->
the starter-pack function). Delivery is at least once, so the pack is recorded per model version (`StarterPacks`):
a style already made is never made again, a second delivery while the first is being made waits (a lease), and a
pack already announced is announced again with the same `event_id` and nothing else. A model still loading is
retried within the time budget; what is left then is retried by the queue (and lands in its dead-letter queue after
its last delivery), keeping every style already made.

Requests go to the multi-model endpoint like anyone's: the per-user model forwards one request at a time to the
shared base, so a pack takes one place in each batch it joins and the base batches it with other people's requests
instead of the pack taking the endpoint for itself. Two are in flight, so the next style is queued when one ends.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from avatar.contracts.events import AvatarModelReady, AvatarPackReady
from avatar.contracts.generation import AvatarRequest, GeneratedImage, GenerationRequest
from avatar.errors import ConcurrentUpdate, GenerationRejected
from avatar.generation.avatars import RetryPolicy, generate_with_retries, store_avatars
from avatar.generation.ports import (
    AvatarEndpoint,
    AvatarHistory,
    ImageSigner,
    ImageStore,
    ModelRegistry,
    StarterPacks,
)
from avatar.generation.styles import StarterPackPlan, StyleCatalog, generation_request, style_catalog
from avatar.messaging import EventPublisher
from avatar.records import StarterPack

logger = logging.getLogger(__name__)

Outcome = Literal["made", "announced_again", "superseded", "user_gone", "model_gone", "disabled"]


@dataclass(frozen=True)
class PackSettings:
    """How a pack is made: requests in flight at once, the retry budget of each, and how long one invocation may
    hold the pack (the function's timeout: after it, a redelivered event takes over)."""

    concurrency: int = 2
    policy: RetryPolicy = field(default_factory=lambda: RetryPolicy(budget_seconds=120.0))
    lease_seconds: float = 900.0


@dataclass(frozen=True)
class PackResult:
    """What one delivery of AvatarModelReady did."""

    outcome: Outcome
    pack: StarterPack | None = None


def pack_request_id(model_version: int, style_id: str) -> str:
    """The request id of one style of a pack (its images' key prefix): the same on every delivery."""
    return f"pack-{model_version}-{style_id}"


def pack_seed(user_id: str, model_version: int, style_id: str) -> int:
    """A seed per user, version and style, so a style made again after a failure makes the same images."""
    return zlib.crc32(f"{user_id}:{model_version}:{style_id}".encode()) & 0x7FFFFFFF


def pack_requests(
    event: AvatarModelReady, plan: StarterPackPlan, catalog: StyleCatalog
) -> dict[str, GenerationRequest]:
    """Each style's generation request, in the pack's order."""
    return {
        style: generation_request(
            AvatarRequest(
                style=style,
                num_images=plan.images_per_style,
                seed=pack_seed(event.user_id, event.model_version, style),
            ),
            catalog,
        )
        for style in plan.styles
    }


def make_starter_pack(
    event: AvatarModelReady,
    *,
    holder: str,
    registry: ModelRegistry,
    endpoint: AvatarEndpoint,
    images: ImageStore,
    history: AvatarHistory,
    packs: StarterPacks,
    events: EventPublisher,
    plan: StarterPackPlan | None = None,
    catalog: StyleCatalog | None = None,
    settings: PackSettings = PackSettings(),
    signer: Callable[[], ImageSigner] | None = None,
    url_ttl_seconds: int = 900,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    wall_clock: Callable[[], float] = time.time,
) -> PackResult:
    """Make (or finish) the pack of the event's model version and announce AvatarPackReady.

    `signer` gives the image signer, asked for only when styles are left to make.
    Raises ConcurrentUpdate while another delivery holds the pack, ServingUnavailable when the endpoint stayed busy
    for a style's whole budget (the styles made so far are kept), and the adapters' ServiceUnavailable errors: each
    means "deliver the event again later"."""
    catalog = catalog or style_catalog()
    plan = plan or catalog.starter_pack
    user_id, version = event.user_id, event.model_version
    if plan.images == 0:
        return PackResult("disabled")
    if not event.is_current:
        return PackResult("superseded")  # a late result: the person's current model is newer
    profile = registry.get_profile(user_id)
    if profile is None or profile.erasing:
        return PackResult("user_gone")
    model = registry.get_model_version(user_id, version)
    if model is None:
        return PackResult("model_gone")

    now = datetime.fromtimestamp(wall_clock(), UTC)
    pack = _claim(packs, event, holder, now, settings.lease_seconds)
    requests = pack_requests(event, plan, catalog)
    left = [style for style in plan.styles if style not in pack.styles_done + pack.styles_failed]
    if left:
        pack = _make_styles(
            pack,
            left,
            requests,
            holder=holder,
            artifact_key=model.artifact_key,
            registry=registry,
            endpoint=endpoint,
            images=images,
            history=history,
            packs=packs,
            settings=settings,
            signer=signer() if signer is not None else None,  # read only when there is something to sign
            url_ttl_seconds=url_ttl_seconds,
            clock=clock,
            sleep=sleep,
            wall_clock=wall_clock,
        )
    already = pack.announced_at is not None
    finished = pack.announced_at or datetime.fromtimestamp(wall_clock(), UTC)
    events.publish(
        AvatarPackReady(
            event_id=f"{user_id}:pack:{version}",
            user_id=user_id,
            occurred_at=finished,
            job_id=event.job_id,
            model_version=version,
            styles=list(pack.styles_done),
            images=pack.images,
            withheld=pack.withheld,
            catalog_version=catalog.version,
            seconds=round((finished - pack.started_at).total_seconds(), 2),
        )
    )
    if already:
        return PackResult("announced_again", pack)
    announced = pack.model_copy(update={"announced_at": finished, "holder": None, "lease_until": None})
    saved = packs.save(announced, seen=pack)
    logger.info(
        "starter pack made",
        extra={"user_id": user_id, "model_version": version, "images": pack.images, "withheld": pack.withheld},
    )
    return PackResult("made", saved or announced)


def _claim(packs: StarterPacks, event: AvatarModelReady, holder: str, now: datetime, lease: float) -> StarterPack:
    """The pack, held by `holder` until the lease ends; raises ConcurrentUpdate while another delivery holds it."""
    seen = packs.get(event.user_id, event.model_version)
    if seen is not None and seen.announced_at is not None:
        return seen
    if seen is not None and seen.held_by_another(holder, now):
        raise ConcurrentUpdate(f"the starter pack of version {event.model_version} is being made by {seen.holder}")
    base = seen or StarterPack(user_id=event.user_id, model_version=event.model_version, started_at=now)
    claimed = packs.save(
        base.model_copy(update={"holder": holder, "lease_until": now + timedelta(seconds=lease)}), seen=seen
    )
    if claimed is None:
        raise ConcurrentUpdate(f"the starter pack of version {event.model_version} moved while being claimed")
    return claimed


def _make_styles(
    pack: StarterPack,
    styles: list[str],
    requests: dict[str, GenerationRequest],
    *,
    holder: str,
    artifact_key: str,
    registry: ModelRegistry,
    endpoint: AvatarEndpoint,
    images: ImageStore,
    history: AvatarHistory,
    packs: StarterPacks,
    settings: PackSettings,
    signer: ImageSigner | None,
    url_ttl_seconds: int,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    wall_clock: Callable[[], float],
) -> StarterPack:
    """Generate the styles a few at a time; store and record each as it arrives. Re-raises the first retryable
    failure once the styles in flight have been kept."""

    def generate(style: str) -> list[GeneratedImage]:
        request = requests[style]
        return generate_with_retries(
            endpoint, artifact_key, request, policy=settings.policy, clock=clock, sleep=sleep, wall_clock=wall_clock
        )

    failure: Exception | None = None
    with ThreadPoolExecutor(max_workers=settings.concurrency, thread_name_prefix="pack") as pool:
        futures: dict[Future[list[GeneratedImage]], str] = {pool.submit(generate, style): style for style in styles}
        for future in as_completed(futures):
            style = futures[future]
            try:
                generated = future.result()
            except GenerationRejected as refused:
                logger.warning("starter pack style refused: %s", refused, extra={"user_id": pack.user_id})
                pack = _save(packs, pack, {"styles_failed": (*pack.styles_failed, style)})
                continue
            except Exception as error:  # busy for the whole budget, or a store down: re-raised once the rest is kept
                failure = failure or error
                continue
            profile = registry.get_profile(pack.user_id)
            if profile is None or profile.erasing:
                failure = failure or ConcurrentUpdate("the user is being erased: the pack stops")
                continue
            request = requests[style]
            now = datetime.fromtimestamp(wall_clock(), UTC)
            store_avatars(
                pack.user_id,
                request,
                generated,
                request_id=pack_request_id(pack.model_version, style),
                images=images,
                url_ttl_seconds=url_ttl_seconds,
                created_at=now,
                history=history,
                style=style,
                starter_pack=True,
                signer=signer,
            )
            pack = _save(
                packs,
                pack,
                {
                    "styles_done": (*pack.styles_done, style),
                    "images": pack.images + len(generated),
                    "withheld": pack.withheld + max(0, request.num_images - len(generated)),
                },
            )
    if failure is not None:
        raise failure
    return pack


def _save(packs: StarterPacks, pack: StarterPack, changes: dict[str, object]) -> StarterPack:
    saved = packs.save(pack.model_copy(update=changes), seen=pack)
    if saved is None:
        raise ConcurrentUpdate("the starter pack moved: another delivery took it over, or the user was erased")
    return saved

"""Generating avatars on the fakes: routing by user, retries of busy answers within the time budget, storing and
sharing the images."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from avatar.contracts.generation import MAX_STEP_MEGAPIXELS, GeneratedImage, GenerationRequest
from avatar.errors import (
    GenerationRejected,
    InvalidRequest,
    NoReadyModel,
    ServingBusy,
    ServingUnavailable,
    TooManyRequests,
)
from avatar.generation.avatars import Avatar, FairShare, RetryPolicy, create_avatars
from avatar.records import ModelVersion
from avatar.states import ModelState
from tests.fakes import FakeAvatarEndpoint, FakeBucket, FakeRequestsInFlight, FakeTable, images_for

NOW = datetime(2026, 12, 1, tzinfo=UTC)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _user(table: FakeTable, state: ModelState, current_version: int | None = None) -> None:
    table.ensure_user("u1", NOW)
    table.profiles["u1"] = table.profiles["u1"].model_copy(update={"state": state, "current_version": current_version})
    for version in range(1, (current_version or 0) + 1):
        key = f"models/u1/{version:06d}.tar.gz"
        table.versions[("u1", version)] = ModelVersion(
            user_id="u1", version=version, job_id=f"j{version}", artifact_key=key, created_at=NOW
        )


def _create(table: FakeTable, endpoint: FakeAvatarEndpoint, images: FakeBucket, clock: FakeClock, **request: object):
    return create_avatars(
        "u1",
        GenerationRequest(prompt="x", **request),  # type: ignore[arg-type]
        request_id="r1",
        registry=table,
        endpoint=endpoint,
        images=images,
        url_ttl_seconds=600,
        policy=RetryPolicy(budget_seconds=10, first_delay_seconds=1, max_delay_seconds=2, retry_after_seconds=7),
        clock=clock,
        sleep=clock.sleep,
    )


@pytest.fixture
def ready() -> FakeTable:
    table = FakeTable()
    _user(table, ModelState.READY, current_version=2)
    return table


def test_busy_answers_are_retried_with_the_same_seed_then_stored_and_shared(ready: FakeTable) -> None:
    endpoint = FakeAvatarEndpoint(
        [ServingBusy("ModelNotReadyException"), ServingBusy("507"), lambda r: [GeneratedImage(b"png", 5)]]
    )
    images, clock = FakeBucket(), FakeClock()

    avatars = _create(ready, endpoint, images, clock)

    assert avatars == [Avatar(url="https://fake-bucket.s3.local/outputs/u1/r1/0-5.png?expires=600", seed=5)]
    assert images.versions == {"outputs/u1/r1/0-5.png": [b"png"]}
    assert {call[0] for call in endpoint.calls} == {"models/u1/000002.tar.gz"}
    seeds = {call[1].seed for call in endpoint.calls}
    assert len(seeds) == 1 and None not in seeds  # a retry makes the same images
    assert 0 < clock.now < 10


def test_an_endpoint_busy_for_the_whole_budget_is_unavailable_with_retry_after(ready: FakeTable) -> None:
    endpoint = FakeAvatarEndpoint([ServingBusy("ThrottlingException") for _ in range(50)])
    clock = FakeClock()

    with pytest.raises(ServingUnavailable) as raised:
        _create(ready, endpoint, FakeBucket(), clock)

    assert raised.value.retry_after_seconds == 7 and raised.value.retryable
    assert clock.now <= 10 and len(endpoint.calls) >= 3


def test_a_rejected_request_is_not_retried(ready: FakeTable) -> None:
    endpoint = FakeAvatarEndpoint([GenerationRejected("LoRA refused")])

    with pytest.raises(GenerationRejected):
        _create(ready, endpoint, FakeBucket(), FakeClock())
    assert len(endpoint.calls) == 1


@pytest.mark.parametrize("state", [None, ModelState.COLLECTING, ModelState.TRAINING])
def test_no_current_model_is_no_ready_model_with_the_state(state: ModelState | None) -> None:
    table = FakeTable()
    if state is not None:
        _user(table, state)

    with pytest.raises(NoReadyModel) as raised:
        _create(table, FakeAvatarEndpoint(), FakeBucket(), FakeClock())
    assert raised.value.details["model_state"] == (state.value if state else None)


def test_a_user_retraining_keeps_generating_with_the_current_version() -> None:
    table = FakeTable()
    _user(table, ModelState.TRAINING, current_version=1)
    endpoint = FakeAvatarEndpoint([images_for])

    _create(table, endpoint, FakeBucket(), FakeClock(), seed=1)

    assert endpoint.calls[0][0] == "models/u1/000001.tar.gz"


def test_a_user_being_erased_gets_nothing_from_the_moment_they_asked(ready: FakeTable) -> None:
    ready.mark_erasing("u1", NOW)

    with pytest.raises(NoReadyModel) as raised:
        _create(ready, FakeAvatarEndpoint([images_for]), FakeBucket(), FakeClock())
    assert raised.value.details["model_state"] is None


def test_images_are_stored_under_the_users_prefix_with_their_seeds(ready: FakeTable) -> None:
    images = FakeBucket()

    avatars = _create(ready, FakeAvatarEndpoint([images_for]), images, FakeClock(), seed=41, num_images=2)

    assert [a.seed for a in avatars] == [41, 42]
    assert images.stored_keys() == ["outputs/u1/r1/0-41.png", "outputs/u1/r1/1-42.png"]


def test_every_image_is_recorded_in_the_history_with_what_made_it(ready: FakeTable) -> None:
    from avatar.generation.history import avatar_history
    from avatar.records import GeneratedAvatar

    class History:
        def __init__(self) -> None:
            self.added: list[GeneratedAvatar] = []

        def add(self, avatars: list[GeneratedAvatar]) -> None:
            self.added += avatars

        def page(self, user_id: str, *, limit: int, cursor: str | None) -> tuple[list[GeneratedAvatar], str | None]:
            mine = [a for a in reversed(self.added) if a.user_id == user_id]
            return mine[:limit], "next" if len(mine) > limit else None

    history, images = History(), FakeBucket()
    create_avatars(
        "u1",
        GenerationRequest(prompt="<<TOK>> on a horse", negative_prompt="blurry", num_images=2, seed=5, width=64),
        request_id="r9",
        registry=ready,
        endpoint=FakeAvatarEndpoint([images_for]),
        images=images,
        url_ttl_seconds=600,
        history=history,
        wall_clock=lambda: 1_800_000_000.0,
    )

    assert [(a.index, a.seed, a.image_key) for a in history.added] == [
        (0, 5, "outputs/u1/r9/0-5.png"),
        (1, 6, "outputs/u1/r9/1-6.png"),
    ]
    first = history.added[0]
    assert (first.prompt, first.negative_prompt, first.width, first.request_id) == (
        "<<TOK>> on a horse",
        "blurry",
        64,
        "r9",
    )
    assert first.created_at == datetime.fromtimestamp(1_800_000_000, UTC)
    page = avatar_history("u1", history=history, images=images, url_ttl_seconds=300, limit=1)
    assert page.next == "next" and page.avatars[0].avatar.seed == 6
    assert page.avatars[0].url.endswith("outputs/u1/r9/1-6.png?expires=300")


def test_a_user_with_as_many_requests_in_flight_as_allowed_gets_429_and_others_do_not(ready: FakeTable) -> None:
    _user(ready, ModelState.READY, current_version=2)
    in_flight = FakeRequestsInFlight()
    share = FairShare(in_flight, max_in_flight=2)
    now = NOW.timestamp()
    in_flight.begin("u1", "other-1", until=NOW + timedelta(seconds=60), limit=2, now=NOW)
    in_flight.begin("u1", "other-2", until=NOW + timedelta(seconds=60), limit=2, now=NOW)

    def create(request_id: str) -> list[Avatar]:
        return create_avatars(
            "u1",
            GenerationRequest(prompt="x", seed=1),
            request_id=request_id,
            registry=ready,
            endpoint=FakeAvatarEndpoint([images_for]),
            images=FakeBucket(),
            url_ttl_seconds=600,
            wall_clock=lambda: now,
            fair_share=share,
        )

    with pytest.raises(TooManyRequests) as refused:
        create("r3")
    assert (refused.value.status, refused.value.retryable) == (429, True)
    in_flight.end("u1", "other-1", now=NOW)
    assert len(create("r4")) == 1  # a place came free
    assert set(in_flight.leases["u1"]) == {"other-2"}  # and r4 gave its place back when done
    now += 120  # a lease whose function died expires by itself
    assert len(create("r5")) == 1


def test_the_endpoint_is_told_when_the_caller_stops_waiting(ready: FakeTable) -> None:
    endpoint = FakeAvatarEndpoint([images_for])
    create_avatars(
        "u1",
        GenerationRequest(prompt="x", seed=1),
        request_id="r1",
        registry=ready,
        endpoint=endpoint,
        images=FakeBucket(),
        url_ttl_seconds=600,
        policy=RetryPolicy(budget_seconds=10),
        wall_clock=lambda: 1000.0,
    )
    assert endpoint.deadlines == [1010.0]


def test_what_one_request_may_cost_is_bounded() -> None:
    assert GenerationRequest(prompt="x", steps=40, num_images=4).step_megapixels() <= MAX_STEP_MEGAPIXELS
    assert GenerationRequest(prompt="x", steps=40, width=1024, height=1024).step_megapixels() <= MAX_STEP_MEGAPIXELS
    for heavy in ({"steps": 41, "num_images": 4}, {"steps": 100, "width": 1024, "height": 1024, "num_images": 4}):
        with pytest.raises(ValidationError, match="steps x megapixels x images"):
            GenerationRequest(prompt="x", **heavy)  # type: ignore[arg-type]


def test_a_request_over_the_deployments_cost_bound_is_refused_before_the_endpoint(ready: FakeTable) -> None:
    endpoint = FakeAvatarEndpoint([images_for])
    share = FairShare(FakeRequestsInFlight(), max_step_megapixels=1.0, native_side=64)

    def create(**request: object) -> list[Avatar]:
        return create_avatars(
            "u1",
            GenerationRequest(prompt="x", seed=1, **request),  # type: ignore[arg-type]
            request_id="r1",
            registry=ready,
            endpoint=endpoint,
            images=FakeBucket(),
            url_ttl_seconds=600,
            fair_share=share,
        )

    with pytest.raises(InvalidRequest, match="over this deployment's 1"):
        create(steps=16, width=256, height=256)  # 1.05 step-megapixels
    assert endpoint.calls == []
    assert len(create(steps=30, num_images=4)) == 4  # the native 64 px: 0.49 step-megapixels


def test_the_signer_is_asked_for_only_for_a_valid_request_and_before_any_gpu_time(ready: FakeTable) -> None:
    from avatar.errors import ContentCredentialsUnavailable, PromptRefused

    asked: list[str] = []

    def unconfigured() -> object:
        asked.append("signer")
        raise ContentCredentialsUnavailable("the C2PA signing identity is not configured")

    endpoint, images = FakeAvatarEndpoint([images_for]), FakeBucket()

    def create(prompt: str) -> object:
        return create_avatars(
            "u1",
            GenerationRequest(prompt=prompt, seed=1),
            request_id="r1",
            registry=ready,
            endpoint=endpoint,
            images=images,
            url_ttl_seconds=60,
            signer=unconfigured,  # type: ignore[arg-type]
        )

    with pytest.raises(PromptRefused):
        create("<<TOK>> naked on a beach")
    assert asked == []
    with pytest.raises(ContentCredentialsUnavailable):
        create("<<TOK>> as an astronaut")
    assert asked == ["signer"] and endpoint.calls == [] and images.stored_keys() == []

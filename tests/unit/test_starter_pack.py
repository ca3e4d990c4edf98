"""The starter pack on the fakes: one pack per model version however often AvatarModelReady arrives, a model still
loading retried, what was made kept across deliveries, and nothing made for a user who is gone."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from avatar.contracts.events import AvatarModelReady, AvatarPackReady
from avatar.contracts.generation import GeneratedImage, GenerationRequest
from avatar.errors import ConcurrentUpdate, GenerationRejected, ServingBusy, ServingUnavailable
from avatar.generation.avatars import RetryPolicy
from avatar.generation.starter_pack import PackSettings, make_starter_pack, pack_requests
from avatar.generation.styles import StarterPackPlan, style_catalog
from avatar.records import ModelVersion
from avatar.states import ModelState
from tests.fakes import FakeAvatarHistory, FakeBucket, FakeEventBus, FakeStarterPacks, FakeTable

NOW = datetime(2026, 12, 2, 12, tzinfo=UTC)
ARTIFACT = "models/u1/j1.tar.gz"


class StyleEndpoint:
    """The multi-model endpoint, answering by style: `busy` answers first, `refused` styles refused, `short` styles
    one image fewer (as when the safety check withholds one)."""

    def __init__(
        self, *, busy: dict[str, int] | None = None, refused: set[str] = frozenset(), short: set[str] = frozenset()
    ) -> None:  # type: ignore[assignment]
        self.busy = dict(busy or {})
        self.refused, self.short = refused, short
        self.calls: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        prompts = {request.prompt: style for style, request in _requests().items()}
        self._style_of = prompts.__getitem__

    def generate(
        self, artifact_key: str, request: GenerationRequest, *, deadline: float | None = None
    ) -> list[GeneratedImage]:
        style = self._style_of(request.prompt)
        with self._lock:
            self.calls.append((artifact_key, style))
            if self.busy.get(style, 0) > 0:
                self.busy[style] -= 1
                raise ServingBusy("ModelNotReadyException: still loading (fake)")
        if style in self.refused:
            raise GenerationRejected("the model refused the request (fake)")
        assert request.seed is not None
        count = request.num_images - (1 if style in self.short else 0)
        return [GeneratedImage(png=b"\x89PNG " + style.encode(), seed=request.seed + i) for i in range(count)]


def _event(version: int = 1, *, is_current: bool = True) -> AvatarModelReady:
    return AvatarModelReady(
        event_id=f"j{version}:ready",
        user_id="u1",
        occurred_at=NOW,
        job_id=f"j{version}",
        model_version=version,
        artifact_key=ARTIFACT,
        is_current=is_current,
    )


def _requests() -> dict[str, GenerationRequest]:
    catalog = style_catalog()
    return pack_requests(_event(), catalog.starter_pack, catalog)


@pytest.fixture
def registry() -> FakeTable:
    table = FakeTable()
    table.ensure_user("u1", NOW)
    table.profiles["u1"] = table.profiles["u1"].model_copy(update={"state": ModelState.READY, "current_version": 1})
    table.versions[("u1", 1)] = ModelVersion(
        user_id="u1", version=1, job_id="j1", artifact_key=ARTIFACT, created_at=NOW
    )
    return table


class Deliveries:
    """The stores one pack is made into, and one delivery of the event at a time."""

    def __init__(self, registry: FakeTable, endpoint: StyleEndpoint) -> None:
        self.registry, self.endpoint = registry, endpoint
        self.images, self.history = FakeBucket(), FakeAvatarHistory()
        self.packs, self.events = FakeStarterPacks(), FakeEventBus()
        self.now = NOW.timestamp()
        self.slept = 0.0

    def deliver(
        self, event: AvatarModelReady | None = None, *, holder: str = "m1", plan: StarterPackPlan | None = None
    ):  # type: ignore[no-untyped-def]
        def sleep(seconds: float) -> None:
            self.slept += seconds
            self.now += seconds

        return make_starter_pack(
            event or _event(),
            holder=holder,
            registry=self.registry,
            endpoint=self.endpoint,
            images=self.images,
            history=self.history,
            packs=self.packs,
            events=self.events,
            plan=plan,
            settings=PackSettings(concurrency=3, policy=RetryPolicy(budget_seconds=20, first_delay_seconds=1)),
            clock=lambda: self.now,
            sleep=sleep,
            wall_clock=lambda: self.now,
        )


def test_a_ready_model_gets_two_images_in_each_pack_style_recorded_and_announced_once(registry: FakeTable) -> None:
    run = Deliveries(registry, StyleEndpoint())
    plan = style_catalog().starter_pack

    result = run.deliver()

    assert result.outcome == "made" and len(plan.styles) == 8 and plan.images_per_style == 2
    assert result.pack is not None and result.pack.images == 16 and result.pack.announced_at is not None
    assert sorted(style for _, style in run.endpoint.calls) == sorted(plan.styles)
    assert {key for key, _ in run.endpoint.calls} == {ARTIFACT}  # the event's model, through the endpoint
    assert len(run.images.stored_keys()) == 16
    assert all(key.startswith("outputs/u1/pack-1-") for key in run.images.stored_keys())
    assert {a.style for a in run.history.added} == set(plan.styles)
    assert all(a.starter_pack and "<<TOK>>" in a.prompt for a in run.history.added)
    [announced] = run.events.published
    assert isinstance(announced, AvatarPackReady)
    assert announced.event_id == "u1:pack:1" and announced.images == 16 and announced.withheld == 0
    assert sorted(announced.styles) == sorted(plan.styles) and announced.catalog_version == style_catalog().version


def test_a_second_delivery_makes_nothing_and_announces_the_same_fact_again(registry: FakeTable) -> None:
    run = Deliveries(registry, StyleEndpoint())
    first = run.deliver()
    run.now += 30

    again = run.deliver(holder="m2")

    assert again.outcome == "announced_again"
    assert len(run.endpoint.calls) == 8 and len(run.history.added) == 16  # nothing generated twice
    assert [e.event_id for e in run.events.published] == ["u1:pack:1", "u1:pack:1"]
    assert run.events.published[0] == run.events.published[1]  # the same fact, the same event
    assert again.pack == first.pack


def test_a_model_still_loading_is_retried_within_the_budget(registry: FakeTable) -> None:
    run = Deliveries(registry, StyleEndpoint(busy={"astronaut": 3, "anime": 2}))

    result = run.deliver()

    assert result.outcome == "made" and result.pack is not None and result.pack.images == 16
    assert run.slept > 0
    assert sum(1 for _, style in run.endpoint.calls if style == "astronaut") == 4


def test_a_model_loading_past_the_budget_fails_the_delivery_and_the_next_one_makes_only_what_is_missing(
    registry: FakeTable,
) -> None:
    run = Deliveries(registry, StyleEndpoint(busy={"watercolor": 100}))

    with pytest.raises(ServingUnavailable):
        run.deliver()

    pack = run.packs.get("u1", 1)
    assert pack is not None and pack.announced_at is None
    assert sorted(pack.styles_done) == sorted(set(style_catalog().starter_pack.styles) - {"watercolor"})
    assert run.events.published == []
    run.endpoint.busy.clear()
    before = len(run.endpoint.calls)

    result = run.deliver()  # the queue delivers the same message again (same holder)

    assert result.outcome == "made" and result.pack is not None and result.pack.images == 16
    assert [style for _, style in run.endpoint.calls[before:]] == ["watercolor"]
    assert len(run.history.added) == 16 and run.events.kinds() == ["AvatarPackReady"]


def test_another_delivery_waits_while_the_pack_is_held_then_takes_over_when_the_lease_ends(registry: FakeTable) -> None:
    run = Deliveries(registry, StyleEndpoint(busy={"anime": 100}))
    with pytest.raises(ServingUnavailable):
        run.deliver(holder="m1")  # died, as far as anyone knows: its lease stays

    with pytest.raises(ConcurrentUpdate):
        run.deliver(holder="m2")  # a duplicate event, while m1's lease lasts

    run.endpoint.busy.clear()
    run.now += PackSettings().lease_seconds + 1
    result = run.deliver(holder="m2")
    assert result.outcome == "made" and result.pack is not None and result.pack.images == 16


def test_withheld_images_and_refused_styles_are_counted_and_the_pack_still_ends(registry: FakeTable) -> None:
    run = Deliveries(registry, StyleEndpoint(short={"anime"}, refused={"cyberpunk"}))

    result = run.deliver()

    assert result.outcome == "made" and result.pack is not None
    assert result.pack.styles_failed == ("cyberpunk",)
    assert (result.pack.images, result.pack.withheld) == (13, 1)  # 7 styles, one image of one withheld
    [announced] = run.events.published
    assert isinstance(announced, AvatarPackReady) and "cyberpunk" not in announced.styles
    assert (announced.images, announced.withheld) == (13, 1)


@pytest.mark.parametrize(
    ("change", "outcome"),
    [
        ("erasing", "user_gone"),
        ("unknown", "user_gone"),
        ("no version", "model_gone"),
        ("late", "superseded"),
        ("disabled", "disabled"),
    ],
)
def test_nothing_is_made_for_a_user_or_model_that_is_gone_a_late_version_or_no_pack(
    registry: FakeTable, change: str, outcome: str
) -> None:
    event, plan = _event(), None
    if change == "erasing":
        registry.mark_erasing("u1", NOW)
    elif change == "unknown":
        registry.profiles.clear()
    elif change == "no version":
        registry.versions.clear()
    elif change == "late":
        event = _event(is_current=False)
    else:
        plan = style_catalog().starter_pack.model_copy(update={"images_per_style": 0})
    run = Deliveries(registry, StyleEndpoint())

    result = run.deliver(event, plan=plan)

    assert result.outcome == outcome
    assert run.endpoint.calls == [] and run.events.published == [] and run.packs.packs == {}


def test_a_user_erased_while_the_pack_is_made_gets_nothing_more_stored(registry: FakeTable) -> None:
    endpoint = StyleEndpoint()
    run = Deliveries(registry, endpoint)
    plan = StarterPackPlan(styles=("astronaut", "anime"), images_per_style=1)
    original = endpoint.generate

    def erase_during(
        artifact_key: str, request: GenerationRequest, *, deadline: float | None = None
    ) -> list[GeneratedImage]:
        registry.mark_erasing("u1", NOW)
        return original(artifact_key, request, deadline=deadline)

    endpoint.generate = erase_during  # type: ignore[method-assign]
    with pytest.raises(ConcurrentUpdate):
        run.deliver(plan=plan)
    assert run.images.stored_keys() == [] and run.events.published == []
    assert run.deliver(plan=plan).outcome == "user_gone"  # the redelivery then ends it


def test_every_pack_request_is_a_catalog_style_with_its_own_stable_seed() -> None:
    requests = _requests()
    again = _requests()
    assert requests == again  # the same event makes the same requests: a style made again makes the same images
    assert len({r.seed for r in requests.values()}) == len(requests)
    catalog = style_catalog()
    for style, request in requests.items():
        assert request.prompt == catalog.get(style).prompt and request.num_images == 2


def test_the_deployment_may_change_the_pack_but_only_to_catalog_styles(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from services.starter_pack.settings import StarterPackSettings

    for name, value in {"TABLE_NAME": "t", "BUCKET_NAME": "b", "ENDPOINT_NAME": "e"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CONTENT_CREDENTIALS_SECRET_ID", "s")
    assert StarterPackSettings().plan == style_catalog().starter_pack  # the catalog's, by default
    monkeypatch.setenv("STARTER_PACK_STYLES", "astronaut, anime")
    monkeypatch.setenv("STARTER_PACK_IMAGES_PER_STYLE", "0")
    changed = StarterPackSettings().plan
    assert (changed.styles, changed.images) == (("astronaut", "anime"), 0)  # 0: no packs
    monkeypatch.setenv("STARTER_PACK_STYLES", "astronaut,no-such-style")
    with pytest.raises(ValidationError, match="no-such-style"):
        StarterPackSettings()

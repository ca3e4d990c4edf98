"""Serving against a real Triton server with the tiny base: generate handler -> sagemaker-runtime -> local
multi-model endpoint -> Triton (shared base + per-user models over BLS) -> images in S3 (moto) -> presigned URLs."""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from PIL import Image

from avatar.aws.dynamodb.jobs import JobTable
from avatar.contracts.generation import GenerationRequest
from avatar.object_keys import model_artifact_key
from avatar.provenance.content_credentials import read_credentials
from avatar.provenance.xmp import DIGITAL_SOURCE_TYPE, read_xmp
from avatar_dev.local.content_credentials import development_identity
from avatar_dev.local.event_sources import LambdaContextStub
from avatar_dev.local.multi_model_endpoint import MultiModelRouter, local_multi_model_endpoint
from avatar_dev.local.serving import LocalServing, local_serving
from avatar_dev.local.stack import IntakeStack, http_api_event
from services.generate import dependencies
from tests.helpers import assert_same_image, pixels, record_ready_model

pytestmark = pytest.mark.slow

USERS = 10


@pytest.fixture(scope="module")
def serving(cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServing]:
    """A real Triton server with the shared base loaded, as the endpoint's container starts."""
    import tritonclient.http as httpclient

    with local_serving(tmp_path_factory.mktemp("triton"), cache_dir=cache_dir) as running:
        client = httpclient.InferenceServerClient(running.server.http_url, network_timeout=300)
        client.load_model("avatar_base")
        client.close()
        yield running


@dataclass
class GenerateStack:
    """The intake resources, the users' models in S3 and the generate function wired to the local endpoint."""

    intake: IntakeStack
    router: MultiModelRouter
    table: JobTable

    def ready_user(self, user: str, archive: Path, version: int = 1) -> str:
        """Upload `archive` as the user's model version and point the user at it, as the notifier will."""
        key = model_artifact_key(user, f"{version:06d}")
        self.intake.s3.put_object(Bucket=self.intake.bucket, Key=key, Body=archive.read_bytes())
        record_ready_model(self.table, user, version=version, artifact_key=key, now=datetime.now(UTC))
        return key

    def generate(self, user: str | None, body: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        """POST /v1/avatars through the generate Lambda handler."""
        from services.generate import api

        response = api.handler(
            http_api_event("POST", "/v1/avatars", user=user, body=body), LambdaContextStub("GenerateApiFunction")
        )
        return int(response["statusCode"]), json.loads(response["body"]), response.get("headers") or {}


@pytest.fixture
def stack(intake_stack: IntakeStack, serving: LocalServing) -> Iterator[GenerateStack]:
    os.environ.update(intake_stack.stack.function_environment("GenerateApiFunction"))
    os.environ["RETRY_BUDGET_SECONDS"] = "3"
    router = MultiModelRouter(
        triton_url=serving.server.http_url,
        repository=serving.server.repository,
        s3=intake_stack.s3,
        bucket=intake_stack.bucket,
        prefix="models/",
        max_models=USERS + 2,
    )
    with local_multi_model_endpoint(router) as endpoint:
        os.environ["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] = endpoint
        dependencies.reset()
        table = JobTable(intake_stack.dynamodb, os.environ["TABLE_NAME"])
        yield GenerateStack(intake=intake_stack, router=router, table=table)
    router.close()
    os.environ.pop("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", None)
    dependencies.reset()


def _pixels(url: str) -> np.ndarray:
    response = requests.get(url, timeout=30)
    assert response.status_code == 200
    return np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB"), dtype=np.int16)


SMALL = {"steps": 3, "width": 64, "height": 64}


def test_a_ready_user_gets_avatars_as_presigned_urls(stack: GenerateStack, user_models: list[Path]):
    stack.ready_user("alice", user_models[0])

    status, body, _ = stack.generate(
        "alice", {"prompt": "<<TOK>> as an astronaut", "seed": 42, "num_images": 2, **SMALL}
    )

    assert status == 200, body
    assert [image["seed"] for image in body["images"]] == [42, 43]
    for image in body["images"]:
        assert _pixels(image["url"]).shape == (64, 64, 3)
        # Marked as AI-made where it was encoded (the serving side), and still so as the client gets it; signed
        # with the deployment's C2PA identity where it was stored, as the C2PA library's own reader validates it
        png = requests.get(image["url"], timeout=30).content
        assert read_xmp(png).digital_source_type == DIGITAL_SOURCE_TYPE
        credentials = read_credentials(png, trust_anchors=development_identity()[1])
        assert credentials.state == "Trusted" and credentials.ai_generated, credentials
    stored = stack.intake.s3.list_objects_v2(Bucket=stack.intake.bucket, Prefix="outputs/alice/")
    assert stored["KeyCount"] == 2


def test_every_avatar_has_its_likeness_and_best_of_returns_the_images_asked_for(
    stack: GenerateStack, user_models: list[Path]
):
    stack.ready_user("carol", user_models[2])

    status, body, _ = stack.generate(
        "carol", {"prompt": "<<TOK>> portrait", "seed": 7, "num_images": 2, "best_of": 3, **SMALL}
    )

    assert status == 200, body
    # The tiny base draws no faces: every candidate is scored "no face", so the first two keep their seed order.
    assert [(i["seed"], i["face_found"], i["likeness"]) for i in body["images"]] == [(7, False, None), (8, False, None)]
    stored = stack.intake.s3.list_objects_v2(Bucket=stack.intake.bucket, Prefix="outputs/carol/")["Contents"]
    assert len(stored) == 2
    for entry in stored:
        head = stack.intake.s3.head_object(Bucket=stack.intake.bucket, Key=entry["Key"])
        assert head["Metadata"] == {"face-found": "false"}


def test_loras_switch_per_user_on_the_one_base(stack: GenerateStack, user_models: list[Path]):
    stack.ready_user("alice", user_models[0])
    stack.ready_user("bob", user_models[1])
    request = {"prompt": "a portrait", "seed": 7, **SMALL}

    alice = _pixels(stack.generate("alice", request)[1]["images"][0]["url"])
    bob = _pixels(stack.generate("bob", request)[1]["images"][0]["url"])
    alice_again = _pixels(stack.generate("alice", request)[1]["images"][0]["url"])

    assert np.abs(alice - bob).mean() > 0  # same seed and prompt, another user's adapter: another image
    assert np.array_equal(alice, alice_again)  # the same user's adapter is back after bob's
    assert sorted(stack.router.loaded) == sorted(["alice/000001.tar.gz", "bob/000001.tar.gz"])


def test_unknown_user_or_no_model_is_a_conflict_with_the_state(stack: GenerateStack):
    stack.table.ensure_user("carol", datetime.now(UTC))

    unknown = stack.generate("nobody", {"prompt": "x"})
    collecting = stack.generate("carol", {"prompt": "x"})

    assert unknown[0] == 409 and unknown[1]["error"]["model_state"] is None
    assert collecting[0] == 409 and collecting[1]["error"]["model_state"] == "COLLECTING"
    assert stack.generate(None, {"prompt": "x"})[0] == 401


@pytest.mark.parametrize(
    "body",
    [
        {"prompt": ""},
        {"prompt": "x" * 501},
        {"prompt": "x", "steps": 0},
        {"prompt": "x", "steps": 101},
        {"prompt": "x", "guidance_scale": 21},
        {"prompt": "x", "num_images": 5},
        {"prompt": "x", "width": 100},
        {"prompt": "x", "height": 2048},
        {"prompt": "x", "unexpected": 1},
    ],
)
def test_invalid_arguments_are_refused_with_422(stack: GenerateStack, body: dict[str, Any]):
    status, answer, _ = stack.generate("alice", body)

    assert status == 422
    assert answer["error"]["code"] == "invalid_request" and answer["error"]["details"]


def _tampered(archive: Path, how: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(archive) as source, tarfile.open(fileobj=buffer, mode="w:gz") as out:
        for member in source.getmembers():
            data = source.extractfile(member).read() if member.isfile() else b""
            name = member.name
            if how == "traversal" and name.endswith("model.py"):
                member = tarfile.TarInfo(name.split("/")[0] + "/../../escaped.py")
            if how == "missing" and name.endswith(".safetensors"):
                continue
            if how == "wrong-base" and name.endswith("metadata.json"):
                data = json.dumps(json.loads(data) | {"base_model_sha256": "0" * 64}).encode()
            if how == "corrupt" and name.endswith(".safetensors"):
                data = data[: len(data) // 2]
            member.size = len(data)
            out.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("traversal", "refusing archive member"),
        ("missing", "has no pytorch_lora_weights.safetensors"),
        ("wrong-base", "was trained on base 000000000000"),
        ("corrupt", "truncated"),
    ],
)
def test_a_tampered_artifact_is_refused_at_load_with_the_reason(
    stack: GenerateStack, user_models: list[Path], tmp_path: Path, how: str, reason: str
):
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(_tampered(user_models[2], how))
    stack.ready_user("mallory", bad)

    status, body, _ = stack.generate("mallory", {"prompt": "x", **SMALL})

    assert status == 502
    assert reason in body["error"]["message"]
    assert not (stack.intake.s3.list_objects_v2(Bucket=stack.intake.bucket, Prefix="outputs/").get("KeyCount"))
    assert "mallory/000001.tar.gz" not in stack.router.loaded


@pytest.mark.parametrize("down", ["endpoint", "triton"])
def test_serving_down_is_503_with_retry_after(stack: GenerateStack, user_models: list[Path], down: str):
    stack.ready_user("alice", user_models[0])
    if down == "endpoint":  # sagemaker-runtime unreachable
        os.environ["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] = "http://127.0.0.1:9"
        dependencies.reset()
    else:  # the endpoint answers, the model server behind it does not
        stack.router._triton = "http://127.0.0.1:9"

    status, body, headers = stack.generate("alice", {"prompt": "x", **SMALL})

    assert status == 503
    assert body["error"]["code"] == "serving_unavailable"
    assert int(headers["Retry-After"]) > 0
    assert not stack.intake.s3.list_objects_v2(Bucket=stack.intake.bucket, Prefix="outputs/").get("KeyCount")


def test_a_model_still_loading_is_retried_until_it_answers(
    stack: GenerateStack, user_models: list[Path], monkeypatch: pytest.MonkeyPatch
):
    stack.ready_user("dora", user_models[4])
    stack.router._load_wait = 0.0  # a second caller is told ModelNotReadyException at once, as SageMaker does
    monkeypatch.setenv("MAX_REQUESTS_IN_FLIGHT", "3")  # three at once, all hers
    dependencies.reset()

    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda seed: stack.generate("dora", {"prompt": "x", "seed": seed, **SMALL}), [1, 2, 3]))

    assert [status for status, _, _ in answers] == [200, 200, 200]
    assert stack.router.not_ready_answers >= 1


def test_the_endpoint_unloads_the_least_recently_used_models(stack: GenerateStack, user_models: list[Path]):
    stack.router._max_models = 2
    for index, user in enumerate(["ann", "ben", "cid"]):
        stack.ready_user(user, user_models[5 + index])
        assert stack.generate(user, {"prompt": "x", **SMALL})[0] == 200

    assert stack.router.loaded == ["ben/000001.tar.gz", "cid/000001.tar.gz"]
    assert stack.generate("ann", {"prompt": "x", **SMALL})[0] == 200  # loaded again on demand
    assert stack.router.loaded == ["cid/000001.tar.gz", "ann/000001.tar.gz"]


def test_fifty_concurrent_requests_across_ten_users_all_complete(stack: GenerateStack, user_models: list[Path]):
    """The generate use case with the handler's own adapters, from 16 threads at once. (The Lambda handler itself is
    driven one event at a time, as one Lambda execution environment runs it: Powertools' resolver keeps the current
    event in module state.)"""
    from avatar.generation.avatars import RetryPolicy, create_avatars

    users = [f"user{i}" for i in range(USERS)]
    for user, archive in zip(users, user_models, strict=True):
        stack.ready_user(user, archive)

    def generate(i: int) -> list[int]:
        made = create_avatars(
            users[i % USERS],
            GenerationRequest(prompt=f"portrait {i}", seed=i, steps=2, width=64, height=64),
            request_id=f"r{i}",
            registry=dependencies.model_registry(),
            endpoint=dependencies.avatar_endpoint(),
            images=dependencies.avatar_images(),
            url_ttl_seconds=300,
            policy=RetryPolicy(budget_seconds=60),
        )
        return [avatar.seed for avatar in made]

    with ThreadPoolExecutor(16) as pool:
        seeds = list(pool.map(generate, range(50)))

    assert seeds == [[i] for i in range(50)]  # every request answered, each with its own images
    stored = stack.intake.s3.list_objects_v2(Bucket=stack.intake.bucket, Prefix="outputs/", MaxKeys=1000)
    assert sorted(entry["Key"] for entry in stored["Contents"]) == sorted(
        f"outputs/{users[i % USERS]}/r{i}/0-{i}.png" for i in range(50)
    )


def test_the_shared_base_definition_in_the_package_matches_its_config_pbtxt(serving: LocalServing):
    import json

    import tritonclient.http as httpclient

    from avatar.serving.base_definition import shared_base_definition

    client = httpclient.InferenceServerClient(serving.server.http_url)
    loaded = client.get_model_config("avatar_base")  # what Triton made of gpu/triton/avatar_base/config.pbtxt
    client.close()
    defined = json.loads(shared_base_definition("avatar_base")[0])

    def tensors(config: dict[str, Any], kind: str) -> list[tuple[Any, ...]]:
        return [(t["name"], t["data_type"], list(t["dims"]), bool(t.get("optional"))) for t in config[kind]]

    assert tensors(loaded, "input") == tensors(defined, "input")
    assert tensors(loaded, "output") == tensors(defined, "output")
    assert loaded["max_batch_size"] == defined["max_batch_size"]
    assert loaded["backend"] == defined["backend"]
    delay = loaded["dynamic_batching"]["max_queue_delay_microseconds"]
    assert int(delay) == defined["dynamic_batching"]["max_queue_delay_microseconds"]
    assert [g["kind"] for g in loaded["instance_group"]] == [g["kind"] for g in defined["instance_group"]]


def test_a_bad_request_fails_alone_not_its_batch(serving: LocalServing, user_models: list[Path]):
    from tritonclient.utils import InferenceServerException

    name = serving.add_model(user_models[3])
    good = GenerationRequest(prompt="x", seed=1, steps=2, width=64, height=64)
    bad = good.model_copy(update={"steps": 0})  # skips the API's validation: the model must refuse it itself

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(serving.generate, name, request) for request in (good, bad, good, good)]
    with pytest.raises(InferenceServerException, match="invalid request"):
        futures[1].result()
    assert [len(futures[i].result()) for i in (0, 2, 3)] == [1, 1, 1]


def _lora_dirs(user_models: list[Path], tmp_path: Path, count: int) -> list[Path]:
    from avatar.fine_tuning.model_archive import extract_user_model

    return [extract_user_model(archive, tmp_path) / "1" / "lora" for archive in user_models[:count]]


def test_mixed_batches_and_reused_slots_make_the_same_images_as_one_user_at_a_time(
    cache_dir: Path, user_models: list[Path], tmp_path: Path
):
    from avatar.serving.shared_base import LoraRequest, SharedBase

    folders = _lora_dirs(user_models, tmp_path, 3)
    request = GenerationRequest(prompt="a portrait", seed=5, steps=2, width=64, height=64)
    roomy = SharedBase.load("tiny", cache_dir=cache_dir, strategy="mixed")
    tight = SharedBase.load("tiny", cache_dir=cache_dir, strategy="grouped", max_loras=1)

    mixed = roomy.generate_batch([LoraRequest(roomy.open_lora(folder), request) for folder in folders])
    alone = [tight.generate_batch([LoraRequest(tight.open_lora(folder), request)])[0] for folder in folders]
    again = tight.generate_batch([LoraRequest(tight.open_lora(folders[0]), request)])[0]

    for got, want in zip(mixed, alone, strict=True):
        assert_same_image(got[0].png, want[0].png)  # batched float math may differ by a rounding step
    assert np.abs(pixels(mixed[0][0].png) - pixels(mixed[1][0].png)).mean() > 0
    assert again[0].png == alone[0][0].png  # the slot was reused for user 2 and 3, then user 1 came back intact
    assert (tight.loras.loads, tight.loras.evictions) == (4, 3)
    assert tight.slot(tight.loras.resident[0]) == "slot1"  # one set of LoRA layers, weights swapped in place


def test_erasure_unloads_the_users_model_and_removes_its_files_from_the_serving_side(
    stack: GenerateStack, serving: LocalServing, user_models: list[Path], cache_dir: Path
):
    import tritonclient.http as httpclient

    from avatar.erasure.erasure import erase_user
    from services.orchestrator import dependencies as orchestrator

    stack.ready_user("zed-erased", user_models[2])
    stack.ready_user("yan-stays", user_models[3])
    for user in ("zed-erased", "yan-stays"):
        assert stack.generate(user, {"prompt": "x", **SMALL})[0] == 200
    repository = serving.server.repository
    with tarfile.open(user_models[2]) as archive:
        name = archive.getnames()[0].split("/")[0]  # the Triton model the archive holds
    assert (repository / name / "1" / "lora").is_dir()  # its folder, LoRA and metadata

    os.environ.update(stack.intake.stack.function_environment("OrchestratorFunction"))
    orchestrator.reset()
    try:
        orchestrator.user_table().mark_erasing("zed-erased", datetime.now(UTC))
        report = erase_user(
            "zed-erased",
            users=orchestrator.user_table(),
            files=orchestrator.files(),
            events=orchestrator.events(),
            now=datetime.now(UTC),
            serving=orchestrator.avatar_endpoint(),
        )
    finally:
        orchestrator.reset()
    assert report.models_forgotten == 1

    # Nothing of the model is left on the serving side: no folder, LoRA or metadata in the repository or the cache.
    leftovers = [p for folder in (repository, cache_dir) for p in folder.rglob("*") if name in str(p)]
    assert leftovers == []
    client = httpclient.InferenceServerClient(serving.server.http_url)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and client.is_model_ready(name):
            time.sleep(0.2)  # it unloads itself once its answer is sent
        assert not client.is_model_ready(name)
        assert client.is_model_ready("avatar_base")
    finally:
        client.close()
    assert stack.generate("yan-stays", {"prompt": "x", **SMALL})[0] == 200  # the others are served as before


def test_work_whose_caller_has_given_up_is_not_done(serving: LocalServing, user_models: list[Path]):
    import tritonclient.http as httpclient
    from tritonclient.utils import InferenceServerException

    from avatar.aws.multi_model_endpoint import request_tensors

    name = serving.add_model(user_models[4])
    request = GenerationRequest(prompt="x", seed=1, steps=2, width=64, height=64)
    client = httpclient.InferenceServerClient(serving.server.http_url, network_timeout=300)
    try:
        with pytest.raises(InferenceServerException, match="stopped waiting"):
            client.infer(name, request_tensors(request, deadline=time.time() - 1))
        answer = client.infer(name, request_tensors(request, deadline=time.time() + 120))
        assert len(answer.as_numpy("images")) == 1  # a caller still waiting is served
    finally:
        client.close()


def test_styles_are_listed_and_generate_and_refused_prompts_never_reach_the_endpoint(
    stack: GenerateStack, user_models: list[Path]
):
    from services.generate import api

    os.environ["NATIVE_SIDE"] = "64"  # the tiny base's size, as the local stack sets it
    os.environ["RETRY_BUDGET_SECONDS"] = "20"  # a style's 30 steps take longer than this fixture's 3 s
    dependencies.reset()
    stack.ready_user("stella", user_models[0])
    listed = api.handler(http_api_event("GET", "/v1/styles", user="stella"), LambdaContextStub("GenerateApiFunction"))
    styles = json.loads(listed["body"])
    assert listed["statusCode"] == 200 and len(styles["styles"]) >= 12 and styles["version"]
    assert {"id", "name", "description", "preview", "prompt"} <= set(styles["styles"][0])

    status, body, _ = stack.generate("stella", {"style": "watercolor", "num_images": 2, "seed": 3})
    assert status == 200, body
    assert [image["seed"] for image in body["images"]] == [3, 4] and body["withheld"] == 0
    assert body["withheld_reason"] is None
    history = api.handler(http_api_event("GET", "/v1/avatars", user="stella"), LambdaContextStub("GenerateApiFunction"))
    watercolor = next(style for style in styles["styles"] if style["id"] == "watercolor")
    assert {a["prompt"] for a in json.loads(history["body"])["avatars"]} == {watercolor["prompt"]}

    status, body, _ = stack.generate("stella", {"prompt": "<<TOK>> naked on a beach", **SMALL})
    assert (status, body["error"]["code"], body["error"]["categories"]) == (422, "prompt_refused", ["sexual"])
    status, body, _ = stack.generate("stella", {"style": "watercolor", "steps": 5})
    assert status == 422 and body["error"]["code"] == "invalid_request"
    status, body, _ = stack.generate("stella", {"style": "no-such-style"})
    assert status == 422 and "GET /v1/styles" in body["error"]["message"]
    stored = stack.intake.s3.list_objects_v2(Bucket=stack.intake.bucket, Prefix="outputs/stella/")
    assert stored["KeyCount"] == 2  # only the style's two images: the refused requests never reached the endpoint
    os.environ.pop("NATIVE_SIDE")
    os.environ["RETRY_BUDGET_SECONDS"] = "3"


def test_unsafe_images_are_withheld_where_they_are_made_and_never_leave(
    cache_dir: Path, user_models: list[Path], tmp_path: Path, selfies: list[Path]
):
    from avatar.safety.open_nsfw import OpenNsfw
    from avatar.safety.screening import SafetyPolicy
    from avatar.serving.shared_base import LoraRequest, SharedBase

    folder = _lora_dirs(user_models, tmp_path, 1)[0]
    request = GenerationRequest(prompt="a portrait", seed=5, steps=2, width=64, height=64, num_images=2)
    everything_withheld = SharedBase.load("tiny", cache_dir=cache_dir, safety=SafetyPolicy(threshold=0.0))
    nothing_withheld = SharedBase.load("tiny", cache_dir=cache_dir)  # the default policy

    withheld = everything_withheld.generate_batch([LoraRequest(everything_withheld.open_lora(folder), request)])[0]
    kept = nothing_withheld.generate_batch([LoraRequest(nothing_withheld.open_lora(folder), request)])[0]

    assert withheld == [] and not isinstance(kept, Exception) and len(kept) == 2
    # The real classifier: the shared selfies are safe by a wide margin under the default threshold.
    scores = OpenNsfw().unsafe_scores([p.read_bytes() for p in selfies])
    assert len(scores) == 11 and max(scores) < 0.2 < SafetyPolicy().threshold


def test_a_ready_model_gets_its_starter_pack_through_the_rule_once_and_announced(
    stack: GenerateStack, user_models: list[Path]
):
    """AvatarModelReady on the bus -> the template's rule -> the starter-pack queue -> its Lambda -> Triton -> the
    history; the same event again makes nothing new; a late version's event never reaches the queue."""
    from avatar.aws.eventbridge import EventBus
    from avatar.contracts.events import EVENT_SOURCE, AvatarModelReady
    from services.generate import api
    from services.starter_pack import dependencies as pack_dependencies
    from services.starter_pack import handler as starter_pack

    intake = stack.intake
    os.environ.update(intake.stack.function_environment("StarterPackFunction"))
    os.environ.update({"STARTER_PACK_STYLES": "astronaut,anime", "STARTER_PACK_IMAGES_PER_STYLE": "1"})
    os.environ.update({"NATIVE_SIDE": "64", "STARTER_PACK_RETRY_BUDGET_SECONDS": "60"})
    pack_dependencies.reset()
    dependencies.reset()
    key = stack.ready_user("petra", user_models[1])
    bus_name = intake.stack.physical["AvatarEventBus"]
    captured = intake.sqs.create_queue(QueueName=f"packs-{os.urandom(4).hex()}")["QueueUrl"]
    arn = intake.sqs.get_queue_attributes(QueueUrl=captured, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = {"source": [EVENT_SOURCE], "detail-type": ["AvatarPackReady"]}
    intake.events.put_rule(Name="packs", EventBusName=bus_name, EventPattern=json.dumps(pattern))
    intake.events.put_targets(Rule="packs", EventBusName=bus_name, Targets=[{"Id": "q", "Arn": arn}])
    bus = EventBus(intake.events, bus_name)
    ready = AvatarModelReady(
        event_id="j1:ready",
        user_id="petra",
        occurred_at=datetime.now(UTC),
        job_id="j1",
        model_version=1,
        artifact_key=key,
        is_current=True,
    )
    source = intake.event_source("StarterPackFunction", starter_pack.handler)

    bus.publish(ready)
    bus.publish(ready.model_copy(update={"event_id": "j0:ready", "model_version": 0, "is_current": False}))
    assert source.drain() == 1  # the late version's event is filtered out by the rule

    listed = api.handler(http_api_event("GET", "/v1/avatars", user="petra"), LambdaContextStub("GenerateApiFunction"))
    avatars = json.loads(listed["body"])["avatars"]
    assert sorted(a["style"] for a in avatars) == ["anime", "astronaut"]
    assert all(a["starter_pack"] and "<<TOK>>" in a["prompt"] for a in avatars)
    for avatar in avatars:
        assert _pixels(avatar["url"]).shape == (64, 64, 3)
        png = requests.get(avatar["url"], timeout=30).content
        assert read_credentials(png, trust_anchors=development_identity()[1]).ai_generated
    messages = intake.sqs.receive_message(QueueUrl=captured, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    [announced] = [json.loads(m["Body"]) for m in messages]
    assert announced["detail-type"] == "AvatarPackReady"
    assert announced["detail"]["event_id"] == "petra:pack:1" and announced["detail"]["images"] == 2

    bus.publish(ready)  # at least once: the same fact again
    assert source.drain() == 1
    listed = api.handler(http_api_event("GET", "/v1/avatars", user="petra"), LambdaContextStub("GenerateApiFunction"))
    assert len(json.loads(listed["body"])["avatars"]) == 2  # nothing made twice
    again = intake.sqs.receive_message(QueueUrl=captured, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    assert [json.loads(m["Body"])["detail"]["event_id"] for m in again] == ["petra:pack:1"]

    # A message that is not our event fails alone and ends in the dead-letter queue after its deliveries.
    queue = intake.stack.physical["StarterPackQueue"]
    intake.sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"detail-type": "AvatarModelReady"}))
    source.drain(visibility_timeout=0)
    dead = intake.sqs.receive_message(QueueUrl=intake.stack.physical["StarterPackDeadLetterQueue"], WaitTimeSeconds=1)
    assert len(dead.get("Messages", [])) == 1
    for name in ("STARTER_PACK_STYLES", "STARTER_PACK_IMAGES_PER_STYLE", "NATIVE_SIDE"):
        os.environ.pop(name)


def test_without_a_signing_identity_nothing_is_generated_or_stored(stack: GenerateStack, user_models: list[Path]):
    """The template's placeholder secret (a deployment that skipped the step in docs/deploy.md): 503, and no
    unsigned image is stored or returned."""
    stack.ready_user("una", user_models[0])
    secret = stack.intake.stack.physical["ContentCredentialsSecret"]
    placeholder = stack.intake.stack.template["Resources"]["ContentCredentialsSecret"]["Properties"]["SecretString"]
    stack.intake.secretsmanager.put_secret_value(SecretId=secret, SecretString=placeholder)
    dependencies.reset()

    status, body, _ = stack.generate("una", {"prompt": "<<TOK>> as an astronaut", **SMALL})

    assert status == 503 and "signing identity is not configured" in body["error"]["message"], body
    assert not stack.intake.s3.list_objects_v2(Bucket=stack.intake.bucket, Prefix="outputs/una/").get("KeyCount")
    # What is wrong with the request itself is still said first: a refused prompt is 422, no model 409
    status, body, _ = stack.generate("una", {"prompt": "<<TOK>> naked on a beach", **SMALL})
    assert (status, body["error"]["code"]) == (422, "prompt_refused"), body
    status, body, _ = stack.generate("nobody", {"prompt": "<<TOK>> as an astronaut", **SMALL})
    assert status == 409, body
    assert stack.router.loaded == []  # no GPU time was spent on images that could not have been signed


def test_a_threshold_that_withholds_everything_answers_zero_images_through_triton_and_the_api(
    intake_stack: IntakeStack, cache_dir: Path, user_models: list[Path], tmp_path: Path
):
    """The withholding path end to end: the endpoint's container set to withhold everything (AVATAR_NSFW_THRESHOLD=0)
    -> Triton drops every image where it is made -> the generate API answers 200 with none, says how many were
    withheld and why, and stores nothing."""
    os.environ.update(intake_stack.stack.function_environment("GenerateApiFunction"))
    os.environ["RETRY_BUDGET_SECONDS"] = "20"
    with local_serving(tmp_path / "triton", cache_dir=cache_dir, env={"AVATAR_NSFW_THRESHOLD": "0"}) as serving:
        router = MultiModelRouter(
            triton_url=serving.server.http_url,
            repository=serving.server.repository,
            s3=intake_stack.s3,
            bucket=intake_stack.bucket,
            prefix="models/",
        )
        with local_multi_model_endpoint(router) as endpoint:
            os.environ["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] = endpoint
            dependencies.reset()
            table = JobTable(intake_stack.dynamodb, os.environ["TABLE_NAME"])
            stack = GenerateStack(intake=intake_stack, router=router, table=table)
            stack.ready_user("wendy", user_models[2])

            status, body, _ = stack.generate("wendy", {"prompt": "<<TOK>> as an astronaut", "num_images": 2, **SMALL})

        router.close()
    os.environ.pop("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", None)
    dependencies.reset()
    assert status == 200, body
    assert (body["images"], body["withheld"], body["withheld_reason"]) == ([], 2, "unsafe_content")
    assert not intake_stack.s3.list_objects_v2(Bucket=intake_stack.bucket, Prefix="outputs/wendy/").get("KeyCount")

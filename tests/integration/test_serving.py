"""Serving against a real Triton server with the tiny base: generate handler -> sagemaker-runtime -> local
multi-model endpoint -> Triton (shared base + per-user models over BLS) -> images in S3 (moto) -> presigned URLs."""

from __future__ import annotations

import io
import json
import os
import tarfile
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
from avatar_dev.bench.serving import train_user_models
from avatar_dev.local.event_sources import LambdaContextStub
from avatar_dev.local.multi_model_endpoint import MultiModelRouter, local_multi_model_endpoint
from avatar_dev.local.serving import LocalServing, local_serving
from avatar_dev.local.stack import IntakeStack, http_api_event
from services.generate import dependencies
from tests.helpers import assert_same_image, pixels, record_ready_model

pytestmark = pytest.mark.slow

USERS = 10


@pytest.fixture(scope="module")
def user_models(cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Ten users' per-user model archives, each from its own (short) training run."""
    return train_user_models(USERS, base_model="tiny", cache_dir=cache_dir, out=tmp_path_factory.mktemp("users"))


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
    stored = stack.intake.s3.list_objects_v2(Bucket=stack.intake.bucket, Prefix="outputs/alice/")
    assert stored["KeyCount"] == 2


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


def test_a_model_still_loading_is_retried_until_it_answers(stack: GenerateStack, user_models: list[Path]):
    stack.ready_user("dora", user_models[4])
    stack.router._load_wait = 0.0  # a second caller is told ModelNotReadyException at once, as SageMaker does

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


def test_a_user_model_with_the_shared_base_turned_off_falls_back_to_its_own_pipeline(
    cache_dir: Path, user_models: list[Path], tmp_path: Path
):
    with local_serving(tmp_path, cache_dir=cache_dir, env={"AVATAR_BASE_MODEL_NAME": ""}) as alone:
        name = alone.add_model(user_models[0])
        images = alone.generate(name, GenerationRequest(prompt="x", seed=1, steps=2, width=64, height=64))

        assert len(images) == 1 and Image.open(io.BytesIO(images[0].png)).size == (64, 64)
        assert "SHARED BASE '' UNAVAILABLE" in alone.server.log.read_text()


def test_a_user_model_loads_the_shared_base_from_the_package_where_the_repository_lacks_it(
    cache_dir: Path, user_models: list[Path], tmp_path: Path
):
    """As on a SageMaker multi-model endpoint: each model comes from its own TargetModel folder."""
    import tritonclient.http as httpclient

    with local_serving(tmp_path, cache_dir=cache_dir, shared_models=False) as bare:
        assert not (bare.server.repository / "avatar_base").exists()

        name = bare.add_model(user_models[0])
        images = bare.generate(name, GenerationRequest(prompt="x", seed=1, steps=2, width=64, height=64))

        client = httpclient.InferenceServerClient(bare.server.http_url)
        assert client.is_model_ready("avatar_base")
        client.close()
        assert len(images) == 1
        assert "UNAVAILABLE" not in bare.server.log.read_text()


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


def test_avatar_generate_writes_pngs_from_a_trained_model(cache_dir: Path, user_models: list[Path], tmp_path: Path):
    from avatar_dev.cli import main

    os.environ["AVATAR_CACHE_DIR"] = str(cache_dir)
    try:
        code = main(
            [
                "generate",
                "--model",
                str(user_models[0]),
                "--prompt",
                "<<TOK>> on the moon",
                "--out",
                str(tmp_path),
                "--seed",
                "3",
                "--steps",
                "2",
                "--num-images",
                "2",
                "--width",
                "64",
                "--height",
                "64",
            ]
        )
    finally:
        os.environ.pop("AVATAR_CACHE_DIR")

    assert code == 0
    written = sorted(path.name for path in tmp_path.glob("*.png"))
    assert written == ["0-3.png", "1-4.png"]
    assert Image.open(tmp_path / "0-3.png").size == (64, 64)


def test_a_user_model_gets_the_shared_base_loaded_and_the_setup_model_is_idempotent(
    cache_dir: Path, user_models: list[Path], tmp_path: Path
):
    import tritonclient.http as httpclient

    with local_serving(tmp_path, cache_dir=cache_dir) as fresh:
        client = httpclient.InferenceServerClient(fresh.server.http_url, network_timeout=300)
        assert not client.is_model_ready("avatar_base")

        name = fresh.add_model(user_models[0])  # as SageMaker loads a TargetModel on a container without the base

        assert client.is_model_ready("avatar_base")
        assert len(fresh.generate(name, GenerationRequest(prompt="x", seed=1, steps=2, width=64, height=64))) == 1
        client.load_model("avatar_setup")
        first, second = (client.infer("avatar_setup", []) for _ in range(2))
        assert first.as_numpy("base_model_sha256")[0] == second.as_numpy("base_model_sha256")[0]
        assert Path(first.as_numpy("base_model_path")[0].decode(), "model_index.json").is_file()
        client.close()


def _packed_environment(folder: Path, token: str, cache_dir: Path) -> Path:
    """A Python environment packed as conda-pack packs one, for this machine's Triton: `bin/activate` puts the
    environment's `bin/python3` first on PATH, so the stub's Python takes its prefix and site-packages from there;
    those hold the avatar package as the deploy build ships it, before this machine's packages. (The real one,
    built by gpu/env/build-env.sh inside the Triton image, is a whole conda interpreter with CUDA torch; Triton
    unpacks and activates both alike.)"""
    import shutil
    import sys
    import venv

    from avatar_dev.deploy.artifacts import package_sources
    from avatar_dev.local.triton import stub_environment

    root = folder / "env"
    venv.EnvBuilder(with_pip=False, symlinks=True).create(root)
    relative_site = Path("lib") / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    site = root / relative_site
    for arcname, source in package_sources():
        (site / arcname).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, site / arcname)
    # The ML stack is this machine's (NumPy 1 for the stub, then the project's packages), after the packed avatar.
    for pth in (stub_environment(cache_dir) / relative_site).glob("*.pth"):
        shutil.copyfile(pth, site / pth.name)
    # The packed copies of the modules the Triton models import say where they were imported from.
    for module in ("container_setup", "triton_shared_base", "base_definition"):
        with (site / "avatar" / "serving" / f"{module}.py").open("a") as copy:
            copy.write(
                "\nimport os as _os\n"
                "with open(_os.environ['AVATAR_TEST_IMPORTS'], 'a') as _log:\n"
                "    _log.write(__file__ + '\\n')\n"
            )
    (root / "bin" / "activate").write_text(
        f'# {token}\nhere="$(cd "$(dirname "${{BASH_SOURCE[0]}}")/.." && pwd)"\nexport PATH="$here/bin:$PATH"\n'
    )
    archive = folder / "avatar_env.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname=".")
    return archive


def test_on_a_sagemaker_layout_the_setup_model_installs_the_environment_every_model_then_runs_in(
    cache_dir: Path, user_models: list[Path], tmp_path: Path
):
    """As on SageMaker: an empty repository, the setup model loaded first from its archive (the environment inside),
    then a user's model packaged with the environment's path; each Python model runs in the packed environment."""
    import uuid

    import tritonclient.http as httpclient

    from avatar.fine_tuning.model_archive import extract_user_model, package_user_model
    from avatar_dev.deploy.artifacts import write_setup_model
    from avatar_dev.local.triton import triton_server

    token = f"avatar-test-env-{uuid.uuid4().hex}"
    environment = _packed_environment(tmp_path, token, cache_dir)
    installed = tmp_path / "opt" / "avatar" / "avatar_env.tar.gz"  # AVATAR_TRITON_EXECUTION_ENV
    setup = write_setup_model(tmp_path / "avatar_setup.tar.gz", environment)
    adapter = extract_user_model(user_models[0], tmp_path / "user") / "1" / "lora"
    user_archive = package_user_model(adapter, name="avatar-u1-j1", execution_env=str(installed))

    repository = tmp_path / "repository"
    repository.mkdir()
    settings = {
        "AVATAR_TRITON_EXECUTION_ENV": str(installed),
        "AVATAR_CACHE_DIR": str(cache_dir),
        "AVATAR_TEST_IMPORTS": str(tmp_path / "imports.log"),
    }
    with triton_server(repository, cache_dir=cache_dir, env=settings) as server:
        client = httpclient.InferenceServerClient(server.http_url, network_timeout=300)
        extract_user_model(setup.read_bytes(), repository)
        client.load_model("avatar_setup")

        assert installed.read_bytes() == environment.read_bytes()  # copied where every model's config names it
        assert client.is_model_ready("avatar_base")  # preloaded from its definition, in the environment too

        extract_user_model(user_archive, repository)
        client.load_model("avatar-u1-j1")
        answer = client.infer("avatar-u1-j1", _request_inputs(GenerationRequest(prompt="x", seed=3, steps=2)))
        assert Image.open(io.BytesIO(bytes(answer.as_numpy("images")[0]))).size == (64, 64)
        client.close()

    # Each model imported the avatar package from an environment Triton unpacked (under /tmp/python_env_*), not from
    # this checkout: the setup model from its own archive, the base and the user's model from the installed copy.
    imported = (tmp_path / "imports.log").read_text().splitlines()
    assert {Path(path).stem for path in imported} >= {"container_setup", "triton_shared_base", "base_definition"}
    assert all(path.startswith("/tmp/python_env_") for path in imported), imported


def _request_inputs(request: GenerationRequest) -> list[Any]:
    from avatar.aws.multi_model_endpoint import request_tensors

    return request_tensors(request)


def test_avatar_serve_starts_triton_with_the_shared_base_and_stops_on_ctrl_c(cache_dir: Path, user_models: list[Path]):
    import signal
    import subprocess
    import sys

    import tritonclient.http as httpclient

    server = subprocess.Popen(
        [sys.executable, "-m", "avatar_dev.cli", "serve", "--model", str(user_models[0])],
        env=os.environ | {"AVATAR_CACHE_DIR": str(cache_dir)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        banner = server.stdout.readline()
        url = banner.split("http://")[1].split(";")[0]
        client = httpclient.InferenceServerClient(url)

        assert client.is_model_ready("avatar_base")
        assert client.is_model_ready("avatar-user0-v1")
        client.close()
    finally:
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=60) == 0


def test_the_serving_benchmark_runs_both_designs_and_prints_the_figures(
    cache_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    from avatar_dev.bench import serving as benchmark

    monkeypatch.setenv("AVATAR_CACHE_DIR", str(cache_dir))

    assert benchmark.run(size="tiny", users=2, as_json=True) == 0

    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in (
        "cold_start_overhead_s",
        "reference_cold_start_overhead_s",
        "memory_per_resident_user_mb",
        "reference_memory_per_resident_user_mb",
        "lora_file_mb",
        "mixed_users_throughput_ratio",
    ):
        assert isinstance(figures[key], float), key
    assert figures["machine"] and len(figures["ours"]["cold_start_s"]) == len(figures["reference"]["cold_start_s"]) == 2

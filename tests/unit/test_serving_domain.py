"""The serving domain without Triton or AWS: the adapter cache, adapter checks, routing and retries of the generate
service, the wire format."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import pytest

from avatar.adapter_format import ADAPTER_WEIGHTS, METADATA_NAME
from avatar.avatars import (
    CurrentModel,
    EndpointBusy,
    GenerationRejected,
    NoReadyModel,
    RetryPolicy,
    ServingUnavailable,
    create_avatars,
)
from avatar.keys import InvalidKey, generated_image_key, target_model
from avatar.model import ModelState
from avatar.serving.adapters import Adapter, AdapterCache, AdapterRefused, open_adapter, publish_base, published_base
from avatar.serving.generation import GeneratedImage, GenerationRequest, personalize

BASE = "b" * 64


def _safetensors(payload: bytes = b"\0" * 16) -> bytes:
    header = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, len(payload)]}}).encode()
    return struct.pack("<Q", len(header)) + header + payload


def _adapter_folder(tmp_path: Path, *, base: str = BASE, weights: bytes | None = None, name: str = "a") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / ADAPTER_WEIGHTS).write_bytes(weights if weights is not None else _safetensors())
    (folder / METADATA_NAME).write_text(json.dumps({"token": "ohwx", "base_model_sha256": base}))
    return folder


def _adapter(adapter_id: str, size: int = 10) -> Adapter:
    return Adapter(adapter_id=adapter_id, directory=Path(adapter_id), token="ohwx", size_bytes=size)


class RecordingHost:
    def __init__(self) -> None:
        self.loaded: list[str] = []
        self.events: list[str] = []

    def load_adapter(self, adapter: Adapter) -> None:
        self.loaded.append(adapter.adapter_id)
        self.events.append(f"load {adapter.adapter_id}")

    def unload_adapter(self, adapter_id: str) -> None:
        self.loaded.remove(adapter_id)
        self.events.append(f"unload {adapter_id}")


def test_the_cache_evicts_the_least_recently_used_beyond_its_count():
    host = RecordingHost()
    cache = AdapterCache(host, max_adapters=2, max_bytes=1000)

    cache.ensure(_adapter("a"))
    cache.ensure(_adapter("b"))
    cache.ensure(_adapter("a"))  # a is now the most recently used
    cache.ensure(_adapter("c"))

    assert host.loaded == ["a", "c"]
    assert cache.resident == ["a", "c"]
    assert (cache.loads, cache.evictions) == (3, 1)


def test_the_cache_keeps_within_its_memory_budget_and_never_evicts_what_a_batch_needs():
    host = RecordingHost()
    cache = AdapterCache(host, max_adapters=10, max_bytes=25)
    cache.ensure(_adapter("a"))
    cache.ensure(_adapter("b"))

    cache.ensure(_adapter("c"), keep=frozenset({"a"}))

    assert host.loaded == ["a", "c"]
    assert cache.resident_bytes == 20
    with pytest.raises(AdapterRefused, match="exceeds the cache budget"):
        cache.ensure(_adapter("huge", size=26))


def test_an_adapter_is_checked_against_the_base_it_runs_on(tmp_path: Path):
    adapter = open_adapter(_adapter_folder(tmp_path), base_sha256=BASE)

    assert adapter.token == "ohwx" and adapter.adapter_id.startswith("a")
    with pytest.raises(AdapterRefused, match="trained on base cccccccccccc"):
        open_adapter(_adapter_folder(tmp_path, base="c" * 64, name="other"), base_sha256=BASE)


@pytest.mark.parametrize(
    ("weights", "reason"),
    [
        (b"not safetensors", "not a safetensors file"),
        (_safetensors()[:-3], "truncated"),
        (_safetensors() + b"x", "truncated or padded"),
    ],
)
def test_corrupt_weights_are_refused_before_they_reach_the_pipeline(tmp_path: Path, weights: bytes, reason: str):
    with pytest.raises(AdapterRefused, match=reason):
        open_adapter(_adapter_folder(tmp_path, weights=weights), base_sha256=BASE)


def test_missing_files_or_metadata_are_refused(tmp_path: Path):
    folder = _adapter_folder(tmp_path)
    (folder / METADATA_NAME).write_text("{")
    with pytest.raises(AdapterRefused, match="unreadable"):
        open_adapter(folder, base_sha256=BASE)
    (folder / METADATA_NAME).unlink()
    with pytest.raises(AdapterRefused, match=r"has no metadata\.json"):
        open_adapter(folder, base_sha256=BASE)


def test_the_shared_base_publishes_its_hash_for_per_user_models(tmp_path: Path):
    with pytest.raises(AdapterRefused, match="no shared base"):
        published_base(tmp_path)
    publish_base(tmp_path, spec="tiny", sha256=BASE)

    assert published_base(tmp_path) == BASE


def test_the_token_goes_where_the_placeholder_is_or_in_front():
    assert personalize("<<TOK>> as an astronaut", "ohwx") == "ohwx as an astronaut"
    assert personalize("an astronaut", "ohwx") == "ohwx an astronaut"


def test_target_models_and_output_keys_follow_the_layout():
    assert target_model("models/u1/000003.tar.gz") == "u1/000003.tar.gz"
    assert generated_image_key("u1", "r1", 0, 42) == "outputs/u1/r1/0-42.png"
    with pytest.raises(InvalidKey):
        target_model("photos/u1/x.jpg")


class Registry:
    def __init__(self, current: CurrentModel | None) -> None:
        self.current = current

    def current_model(self, user_id: str) -> CurrentModel | None:
        return self.current


class Endpoint:
    def __init__(self, answers: list[Exception | list[GeneratedImage]]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, GenerationRequest]] = []

    def generate(self, artifact_key: str, request: GenerationRequest) -> list[GeneratedImage]:
        self.calls.append((artifact_key, request))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


class Images:
    def __init__(self) -> None:
        self.stored: dict[str, bytes] = {}

    def put_png(self, key: str, png: bytes) -> None:
        self.stored[key] = png

    def share(self, key: str, *, expires_in: int) -> str:
        return f"https://example.test/{key}?expires={expires_in}"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _create(registry: Registry, endpoint: Endpoint, images: Images, clock: FakeClock, **request: object):
    return create_avatars(
        "u1",
        GenerationRequest(prompt="x", **request),  # type: ignore[arg-type]
        request_id="r1",
        registry=registry,
        endpoint=endpoint,
        images=images,
        url_ttl_seconds=600,
        policy=RetryPolicy(budget_seconds=10, first_delay_seconds=1, max_delay_seconds=2, retry_after_seconds=7),
        clock=clock,
        sleep=clock.sleep,
    )


READY = CurrentModel(state=ModelState.READY, artifact_key="models/u1/000002.tar.gz")


def test_busy_answers_are_retried_with_the_same_seed_then_stored_and_shared():
    endpoint = Endpoint([EndpointBusy("ModelNotReadyException"), EndpointBusy("507"), [GeneratedImage(b"png", 5)]])
    images, clock = Images(), FakeClock()

    avatars = _create(Registry(READY), endpoint, images, clock)

    assert [a.seed for a in avatars] == [5]
    assert avatars[0].url == "https://example.test/outputs/u1/r1/0-5.png?expires=600"
    assert images.stored == {"outputs/u1/r1/0-5.png": b"png"}
    assert {call[0] for call in endpoint.calls} == {"models/u1/000002.tar.gz"}
    seeds = {call[1].seed for call in endpoint.calls}
    assert len(seeds) == 1 and None not in seeds  # a retry makes the same images
    assert 0 < clock.now < 10


def test_an_endpoint_busy_for_the_whole_budget_is_unavailable_with_retry_after():
    endpoint = Endpoint([EndpointBusy("ThrottlingException")] * 50)
    clock = FakeClock()

    with pytest.raises(ServingUnavailable) as raised:
        _create(Registry(READY), endpoint, Images(), clock)

    assert raised.value.retry_after_seconds == 7
    assert clock.now <= 10 and len(endpoint.calls) >= 3


def test_a_rejected_request_is_not_retried():
    endpoint = Endpoint([GenerationRejected("adapter refused")])

    with pytest.raises(GenerationRejected):
        _create(Registry(READY), endpoint, Images(), FakeClock())
    assert len(endpoint.calls) == 1


@pytest.mark.parametrize(
    ("current", "state"),
    [
        (None, None),
        (CurrentModel(state=ModelState.COLLECTING, artifact_key=None), ModelState.COLLECTING),
        (CurrentModel(state=ModelState.TRAINING, artifact_key=None), ModelState.TRAINING),
    ],
)
def test_no_current_model_is_no_ready_model_with_the_state(current: CurrentModel | None, state: ModelState | None):
    with pytest.raises(NoReadyModel) as raised:
        _create(Registry(current), Endpoint([]), Images(), FakeClock())
    assert raised.value.state == state


def test_a_user_retraining_keeps_generating_with_the_current_version():
    retraining = CurrentModel(state=ModelState.TRAINING, artifact_key="models/u1/000001.tar.gz")
    endpoint = Endpoint([[GeneratedImage(b"png", 1)]])

    _create(Registry(retraining), endpoint, Images(), FakeClock(), seed=1)

    assert endpoint.calls[0][0] == "models/u1/000001.tar.gz"


def test_the_request_travels_in_tritons_binary_format_and_back():
    from avatar.aws.sagemaker_runtime import decode_images, encode_request

    body, content_type = encode_request(GenerationRequest(prompt="héllo", seed=3, num_images=2, width=64))
    header = int(content_type.split("json-header-size=")[1])
    sent = json.loads(body[:header])

    assert content_type.startswith("application/vnd.sagemaker-triton.binary+json")
    assert {tensor["name"] for tensor in sent["inputs"]} >= {"prompt", "seed", "steps", "num_images", "width"}
    assert "height" not in {tensor["name"] for tensor in sent["inputs"]}

    pngs = [b"\x89PNG one", b"\x89PNG two\x00"]
    answer = {
        "model_name": "m",
        "outputs": [
            {"name": "images", "datatype": "BYTES", "shape": [2], "parameters": {"binary_data_size": 0}},
            {"name": "seeds", "datatype": "INT64", "shape": [2], "parameters": {"binary_data_size": 16}},
        ],
    }
    images_raw = b"".join(struct.pack("<I", len(p)) + p for p in pngs)
    answer["outputs"][0]["parameters"]["binary_data_size"] = len(images_raw)
    header_bytes = json.dumps(answer).encode()
    response = header_bytes + images_raw + struct.pack("<2q", 3, 4)
    decoded = decode_images(
        response, f"application/vnd.sagemaker-triton.binary+json;json-header-size={len(header_bytes)}"
    )

    assert [(image.png, image.seed) for image in decoded] == [(pngs[0], 3), (pngs[1], 4)]


def test_the_execution_environment_is_installed_once_and_atomically(tmp_path: Path):
    import os

    from avatar.serving.setup import install_execution_env

    bundled = tmp_path / "setup" / "avatar_env.tar.gz"
    bundled.parent.mkdir()
    bundled.write_bytes(b"conda-pack archive")
    target = tmp_path / "opt" / "avatar" / "avatar_env.tar.gz"

    assert install_execution_env(bundled, target) is True
    assert target.read_bytes() == b"conda-pack archive"
    os.utime(target, (1, 1))  # Triton unpacks again when the archive's mtime changes: a second call must not touch it
    assert install_execution_env(bundled, target) is False
    assert target.stat().st_mtime == 1
    assert [path.name for path in target.parent.iterdir()] == ["avatar_env.tar.gz"]  # no staging file left behind

    bundled.write_bytes(b"a newer, larger conda-pack archive")
    assert install_execution_env(bundled, target) is True
    assert target.read_bytes() == b"a newer, larger conda-pack archive"


def test_the_shared_base_runs_in_the_execution_environment_when_one_is_named():
    import json

    from avatar.serving.base_definition import shared_base_definition

    plain, _ = shared_base_definition("avatar_base")
    config, files = shared_base_definition("avatar_base", execution_env="/opt/avatar/avatar_env.tar.gz")

    assert "parameters" not in json.loads(plain)
    assert json.loads(config)["parameters"] == {"EXECUTION_ENV_PATH": {"string_value": "/opt/avatar/avatar_env.tar.gz"}}
    assert set(files) == {"file:1/model.py"}


def test_the_generate_function_imports_no_image_or_ml_library():
    """Its zip carries only `.[generate]` (tritonclient, NumPy): Pillow, OpenCV or torch would fail the import."""
    import subprocess
    import sys

    check = (
        "import sys, services.generate.api, avatar.aws.sagemaker_runtime; "
        "print(sorted(m for m in ('PIL', 'cv2', 'torch', 'diffusers', 'transformers') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True).stdout

    assert loaded.strip() == "[]"


def test_an_instance_without_the_models_environment_gets_the_setup_model_invoked_and_the_request_retried():
    import boto3
    from botocore.response import StreamingBody
    from botocore.stub import ANY, Stubber

    from avatar.aws.sagemaker_runtime import MultiModelEndpoint

    client = boto3.client(
        "sagemaker-runtime", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    endpoint = MultiModelEndpoint(client, "avatar-generate", setup_target_model="_system/avatar_setup.tar.gz")
    request = GenerationRequest(prompt="x", seed=1)
    with Stubber(client) as stubber:
        # What SageMaker relays when Triton's Python backend cannot find the model's environment.
        stubber.add_client_error(
            "invoke_endpoint",
            service_error_code="ModelError",
            service_message="failed to load 'avatar-u1-j1': Path /opt/avatar/avatar_env.tar.gz does not exist",
            http_status_code=424,
            expected_params={
                "EndpointName": "avatar-generate",
                "TargetModel": "u1/j1.tar.gz",
                "Body": ANY,
                "ContentType": ANY,
            },
        )
        stubber.add_response(
            "invoke_endpoint",
            {"Body": StreamingBody(io.BytesIO(b"{}"), 2), "ContentType": "application/json"},
            expected_params={
                "EndpointName": "avatar-generate",
                "TargetModel": "_system/avatar_setup.tar.gz",
                "Body": b'{"inputs": []}',
                "ContentType": "application/json",
            },
        )
        with pytest.raises(EndpointBusy, match="being prepared"):  # create_avatars retries it within its budget
            endpoint.generate("models/u1/j1.tar.gz", request)
        stubber.assert_no_pending_responses()

    # Without a setup model the same answer is the model's refusal, as before.
    plain = MultiModelEndpoint(client, "avatar-generate")
    with Stubber(client) as stubber:
        stubber.add_client_error(
            "invoke_endpoint", service_error_code="ModelError", service_message="bad adapter", http_status_code=424
        )
        with pytest.raises(GenerationRejected):
            plain.generate("models/u1/j1.tar.gz", request)

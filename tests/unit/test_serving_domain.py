"""The serving side without Triton or AWS: the LoRA cache and checks, the multi-model endpoint's wire format and its
setup path, the container's execution environment."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import pytest

from avatar.contracts.generation import GenerationRequest
from avatar.errors import GenerationRejected, LoraRefused, ServingBusy
from avatar.lora_format import LORA_WEIGHTS, METADATA_NAME
from avatar.prompts import personalize
from avatar.serving.loras import Lora, LoraCache, open_lora, publish_base, published_base

BASE = "b" * 64


def _safetensors(payload: bytes = b"\0" * 16) -> bytes:
    header = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, len(payload)]}}).encode()
    return struct.pack("<Q", len(header)) + header + payload


def _lora_folder(tmp_path: Path, *, base: str = BASE, weights: bytes | None = None, name: str = "a") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / LORA_WEIGHTS).write_bytes(weights if weights is not None else _safetensors())
    (folder / METADATA_NAME).write_text(json.dumps({"token": "ohwx", "base_model_sha256": base}))
    return folder


def _lora(lora_id: str, size: int = 10) -> Lora:
    return Lora(lora_id=lora_id, directory=Path(lora_id), token="ohwx", size_bytes=size)


class RecordingHost:
    def __init__(self) -> None:
        self.loaded: list[str] = []
        self.events: list[str] = []

    def load_lora(self, lora: Lora) -> None:
        self.loaded.append(lora.lora_id)
        self.events.append(f"load {lora.lora_id}")

    def unload_lora(self, lora_id: str) -> None:
        self.loaded.remove(lora_id)
        self.events.append(f"unload {lora_id}")


def test_the_cache_evicts_the_least_recently_used_beyond_its_count():
    host = RecordingHost()
    cache = LoraCache(host, max_loras=2, max_bytes=1000)

    cache.ensure(_lora("a"))
    cache.ensure(_lora("b"))
    cache.ensure(_lora("a"))  # a is now the most recently used
    cache.ensure(_lora("c"))

    assert host.loaded == ["a", "c"]
    assert cache.resident == ["a", "c"]
    assert (cache.loads, cache.evictions) == (3, 1)


def test_an_erased_users_lora_is_dropped_at_once_and_only_it():
    host = RecordingHost()
    cache = LoraCache(host, max_loras=4, max_bytes=1000)
    cache.ensure(_lora("a"))
    cache.ensure(_lora("b"))

    assert cache.drop("a") and not cache.drop("a")  # a second forget finds nothing

    assert host.loaded == ["b"] and cache.resident == ["b"]
    assert host.events[-1] == "unload a"


def test_the_cache_keeps_within_its_memory_budget_and_never_evicts_what_a_batch_needs():
    host = RecordingHost()
    cache = LoraCache(host, max_loras=10, max_bytes=25)
    cache.ensure(_lora("a"))
    cache.ensure(_lora("b"))

    cache.ensure(_lora("c"), keep=frozenset({"a"}))

    assert host.loaded == ["a", "c"]
    assert cache.resident_bytes == 20
    with pytest.raises(LoraRefused, match="exceeds the cache budget"):
        cache.ensure(_lora("huge", size=26))


def test_a_lora_is_checked_against_the_base_it_runs_on(tmp_path: Path):
    lora = open_lora(_lora_folder(tmp_path), base_sha256=BASE)

    assert lora.token == "ohwx" and lora.lora_id.startswith("a")
    with pytest.raises(LoraRefused, match="trained on base cccccccccccc"):
        open_lora(_lora_folder(tmp_path, base="c" * 64, name="other"), base_sha256=BASE)


@pytest.mark.parametrize(
    ("weights", "reason"),
    [
        (b"not safetensors", "not a safetensors file"),
        (_safetensors()[:-3], "truncated"),
        (_safetensors() + b"x", "truncated or padded"),
    ],
)
def test_corrupt_weights_are_refused_before_they_reach_the_pipeline(tmp_path: Path, weights: bytes, reason: str):
    with pytest.raises(LoraRefused, match=reason):
        open_lora(_lora_folder(tmp_path, weights=weights), base_sha256=BASE)


def test_missing_files_or_metadata_are_refused(tmp_path: Path):
    folder = _lora_folder(tmp_path)
    (folder / METADATA_NAME).write_text("{")
    with pytest.raises(LoraRefused, match="unreadable"):
        open_lora(folder, base_sha256=BASE)
    (folder / METADATA_NAME).unlink()
    with pytest.raises(LoraRefused, match=r"has no metadata\.json"):
        open_lora(folder, base_sha256=BASE)


def test_the_shared_base_publishes_its_hash_for_per_user_models(tmp_path: Path):
    with pytest.raises(LoraRefused, match="no shared base"):
        published_base(tmp_path)
    publish_base(tmp_path, spec="tiny", sha256=BASE)

    assert published_base(tmp_path) == BASE


def test_the_token_goes_where_the_placeholder_is_or_in_front():
    assert personalize("<<TOK>> as an astronaut", "ohwx") == "ohwx as an astronaut"
    assert personalize("an astronaut", "ohwx") == "ohwx an astronaut"


def test_the_request_travels_in_tritons_binary_format_and_back():
    from avatar.aws.multi_model_endpoint import decode_images, encode_request

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

    from avatar.serving.container_setup import install_execution_env

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


def test_an_instance_without_the_models_environment_gets_the_setup_model_invoked_and_the_request_retried():
    import boto3
    from botocore.response import StreamingBody
    from botocore.stub import ANY, Stubber

    from avatar.aws.multi_model_endpoint import MultiModelEndpoint

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
        with pytest.raises(ServingBusy, match="being prepared"):  # create_avatars retries it within its budget
            endpoint.generate("models/u1/j1.tar.gz", request)
        stubber.assert_no_pending_responses()
        # A second refusal of the same model after the instance was prepared is the model's own: final.
        stubber.add_client_error(
            "invoke_endpoint", service_error_code="ModelError", service_message="still refused", http_status_code=424
        )
        with pytest.raises(GenerationRejected):
            endpoint.generate("models/u1/j1.tar.gz", request)
        stubber.assert_no_pending_responses()

    # Without a setup model the same answer is the model's refusal, as before.
    plain = MultiModelEndpoint(client, "avatar-generate")
    with Stubber(client) as stubber:
        stubber.add_client_error(
            "invoke_endpoint", service_error_code="ModelError", service_message="bad LoRA", http_status_code=424
        )
        with pytest.raises(GenerationRejected):
            plain.generate("models/u1/j1.tar.gz", request)

"""The LMI handler end to end against moto S3: success, too few usable photos, corrupt or missing photos."""

from __future__ import annotations

import importlib.util
import io
import json
import sys
import types
import uuid
from pathlib import Path

import boto3
import pytest
from PIL import Image

from avatar.contracts.training import TrainingManifest
from avatar.errors import FineTuneFailed
from avatar.fine_tuning.lmi_handler import TrainingSettings, handle_training_request
from avatar.fine_tuning.model_archive import extract_user_model
from avatar.identity.likeness import Identity
from avatar.object_keys import normalized_photo_key
from avatar.photo_check.checker import check_photo

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
OPTIONS = {"steps": 4, "num_class_images": 2, "class_image_steps": 2}


@pytest.fixture(scope="module")
def normalized(selfies: list[Path]) -> list[bytes]:
    """The selfies as the photo check stores them (upright, metadata-free JPEGs)."""
    return [check_photo(path.read_bytes()).normalized_jpeg() for path in selfies[:8]]


@pytest.fixture
def bucket(moto_endpoint: str) -> str:
    name = f"training-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


@pytest.fixture
def settings(bucket: str, tmp_path: Path, cache_dir: Path) -> TrainingSettings:
    work = tmp_path / "work"
    work.mkdir()
    return TrainingSettings(bucket=bucket, cache_dir=cache_dir, work_dir=work, progress_interval_seconds=0)


def _upload(bucket: str, user: str, photos: list[bytes]) -> list[str]:
    s3 = boto3.client("s3")
    keys = []
    for data in photos:
        key = normalized_photo_key(user, uuid.uuid4().hex)
        s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType="image/jpeg")
        keys.append(key)
    return keys


def _manifest(user: str, keys: list[str], **extra) -> bytes:
    return json.dumps(
        {"user_id": user, "job_id": f"job-{uuid.uuid4().hex}", "photo_keys": keys, "options": OPTIONS} | extra
    ).encode()


def _keys(bucket: str, prefix: str) -> list[str]:
    listing = boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix)
    return [entry["Key"] for entry in listing.get("Contents", [])]


def test_a_job_trains_uploads_a_versioned_model_and_publishes_progress(settings, bucket, normalized, tmp_path):
    keys = _upload(bucket, "u1", normalized)
    body = _manifest("u1", keys)
    job_id = json.loads(body)["job_id"]

    result = handle_training_request(body, settings)

    assert result is not None
    assert result.status == "succeeded"
    assert result.model_key == f"models/u1/{job_id}.tar.gz"
    assert result.photos_used == 8 and result.metrics.steps == 4
    archive = boto3.client("s3").get_object(Bucket=bucket, Key=result.model_key)["Body"].read()
    folder = extract_user_model(archive, tmp_path / "model")
    metadata = json.loads((folder / "1" / "lora" / "metadata.json").read_text())
    assert metadata["job_id"] == job_id and metadata["user_id"] == "u1" and metadata["base_model"] == "tiny"
    identity = Identity.from_json(json.loads((folder / "1" / "lora" / "identity.json").read_text()))
    assert identity.descriptors.shape == (8, 128)  # the person, without the photos
    progress = json.loads(
        boto3.client("s3").get_object(Bucket=bucket, Key=f"jobs/u1/{job_id}/progress.json")["Body"].read()
    )
    assert progress["phase"] == "done" and progress["step"] == 4 and progress["job_id"] == job_id
    assert _keys(bucket, "class-images/"), "class images are cached in the bucket for later jobs"
    assert not any(settings.work_dir.iterdir()), "the job's work folder is removed"

    with pytest.raises(FineTuneFailed, match="never replaced"):
        handle_training_request(body, settings)  # the same job again must not overwrite its model
    assert not any(settings.work_dir.iterdir())


def test_too_few_usable_photos_fail_with_a_reason_a_user_can_act_on(settings, bucket, normalized):
    wall = io.BytesIO()
    Image.new("RGB", (800, 800), (90, 120, 150)).save(wall, format="JPEG")
    keys = _upload(bucket, "u2", [*normalized[:3], wall.getvalue(), wall.getvalue()])

    with pytest.raises(FineTuneFailed, match=r"too few usable photos: 3 of 5 .* 6 are needed"):
        handle_training_request(_manifest("u2", keys), settings)
    assert not _keys(bucket, "models/")
    assert not any(settings.work_dir.iterdir())


def test_a_corrupt_photo_fails_the_job_naming_the_photo(settings, bucket, normalized):
    keys = _upload(bucket, "u3", [*normalized[:7], b"\xff\xd8\xff\xe0 truncated"])

    with pytest.raises(FineTuneFailed, match=f"photo {keys[-1]} is unreadable"):
        handle_training_request(_manifest("u3", keys), settings)
    assert not _keys(bucket, "models/")


def test_a_missing_photo_fails_the_job(settings, bucket, normalized):
    keys = [*_upload(bucket, "u4", normalized[:6]), normalized_photo_key("u4", uuid.uuid4().hex)]

    with pytest.raises(FineTuneFailed, match="missing from the bucket"):
        handle_training_request(_manifest("u4", keys), settings)


def test_the_warm_up_call_returns_none_and_bad_manifests_are_refused(settings):
    assert handle_training_request(b"", settings) is None
    assert handle_training_request(None, settings) is None
    with pytest.raises(FineTuneFailed, match="invalid training manifest"):
        handle_training_request(b"not json", settings)
    other_users_photo = normalized_photo_key("someone-else", uuid.uuid4().hex)
    with pytest.raises(FineTuneFailed, match="not a normalized photo of user u5"):
        handle_training_request(_manifest("u5", [other_users_photo]), settings)
    with pytest.raises(FineTuneFailed, match="invalid training manifest"):
        handle_training_request(_manifest("u5", ["photos/u5/../u6/x.jpg"]), settings)


def test_manifest_keys_must_be_this_users_normalized_photos():
    good = normalized_photo_key("u1", uuid.uuid4().hex)
    assert (
        TrainingManifest(user_id="u1", job_id="job-00000001", photo_keys=[good]).model_key
        == "models/u1/job-00000001.tar.gz"
    )
    for bad in ["uploads/u1/" + uuid.uuid4().hex, "photos/u1/evil.tar", "photos/u10/" + uuid.uuid4().hex + ".jpg"]:
        with pytest.raises(ValueError, match="not a normalized photo"):
            TrainingManifest(user_id="u1", job_id="job-00000001", photo_keys=[bad])
    with pytest.raises(ValueError, match="repeat"):
        TrainingManifest(user_id="u1", job_id="job-00000001", photo_keys=[good, good])


def test_the_djl_entry_point_is_a_thin_adapter(monkeypatch, settings, bucket, normalized):
    """gpu/training/model.py under a minimal stand-in for djl_python (it exists only in the LMI container)."""

    class Input:
        def __init__(self, body: bytes) -> None:
            self._body = body

        def is_empty(self) -> bool:
            return not self._body

        def get_as_bytes(self) -> bytes:
            return self._body

    class Output:
        def add_as_json(self, value):
            self.json = value
            return self

    monkeypatch.setitem(sys.modules, "djl_python", types.SimpleNamespace(Input=Input, Output=Output))
    spec = importlib.util.spec_from_file_location("lmi_entry", REPO / "gpu" / "training" / "model.py")
    entry = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(entry)
    monkeypatch.setattr(entry, "handle_training_request", lambda body: handle_training_request(body, settings))

    assert entry.handle(Input(b"")) is None
    keys = _upload(bucket, "u6", normalized)
    output = entry.handle(Input(_manifest("u6", keys)))
    assert output.json["status"] == "succeeded"


def test_progress_is_logged_as_structured_lines(settings, bucket, normalized, caplog):
    keys = _upload(bucket, "u7", normalized)
    with caplog.at_level("INFO", logger="avatar.fine_tuning.lmi_handler"):
        handle_training_request(_manifest("u7", keys), settings)

    lines = [
        json.loads(r.getMessage().removeprefix("training progress "))
        for r in caplog.records
        if r.getMessage().startswith("training progress ")
    ]
    assert [line["phase"] for line in lines][:2] == ["preparing", "class_images"]
    training = [line for line in lines if line["phase"] == "training"]
    assert training[-1]["step"] == 4 and training[-1]["total_steps"] == 4 and "eta_seconds" in training[-1]
    assert lines[-1]["phase"] == "done"


def test_a_base_model_under_an_s3_prefix_is_mirrored_once(bucket, tmp_path: Path, cache_dir: Path):
    from avatar.diffusion.base_checkpoints import resolve_base_model
    from avatar.errors import BaseModelUnavailable

    tiny = resolve_base_model("tiny", cache_dir=cache_dir)
    s3 = boto3.client("s3")
    for path in tiny.folder.rglob("*"):
        if path.is_file():
            s3.upload_file(str(path), bucket, f"base/sd/{path.relative_to(tiny.folder).as_posix()}")

    mirrored = resolve_base_model(f"s3://{bucket}/base/sd", cache_dir=tmp_path, s3_client=s3)
    s3.delete_object(Bucket=bucket, Key="base/sd/model_index.json")
    again = resolve_base_model(f"s3://{bucket}/base/sd/", cache_dir=tmp_path, s3_client=s3)

    assert mirrored.sha256 == tiny.sha256
    assert again.folder == mirrored.folder  # served from the cache, S3 not read again
    with pytest.raises(BaseModelUnavailable, match=r"no model_index\.json"):
        resolve_base_model(f"s3://{bucket}/base/none", cache_dir=tmp_path, s3_client=s3)


def test_running_out_of_gpu_memory_fails_with_what_to_change(settings, bucket, normalized, monkeypatch):
    import torch

    import avatar.fine_tuning.fine_tune as fine_tune_module

    def out_of_memory(*_, **__):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(fine_tune_module, "train_lora", out_of_memory)  # fault injection: no GPU here to exhaust
    keys = _upload(bucket, "u8", normalized)

    with pytest.raises(FineTuneFailed, match=r"out of GPU memory at 64 px, batch 1: lower the batch size"):
        handle_training_request(_manifest("u8", keys), settings)
    assert not any(settings.work_dir.iterdir())

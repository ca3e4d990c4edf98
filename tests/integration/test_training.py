"""The trainer, the adapter format and the per-user model archive, with the embedded tiny model on CPU."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from avatar.contracts.generation import request_from_tensors
from avatar.contracts.training import TrainingFigures, TrainingOptions, TrainingProgress
from avatar.diffusion.base_checkpoints import BaseCheckpoint, pipeline_resolution, resolve_base_model
from avatar.errors import UnsafeArchive
from avatar.fine_tuning.class_images import LocalClassImageStore, ensure_class_images
from avatar.fine_tuning.model_archive import (
    extract_user_model,
    package_user_model,
    triton_model_name,
    user_model_template,
    write_metadata,
)
from avatar.fine_tuning.preparation import PrepareOptions, prepare_photos
from avatar.fine_tuning.trainer import train_lora
from avatar.lora_format import LORA_WEIGHTS
from avatar.serving.sampling import PrivatePipeline
from tests.helpers import assert_same_image

pytestmark = pytest.mark.slow

SHORT = {"steps": 25, "learning_rate": 1e-3, "num_class_images": 4, "class_image_steps": 2, "seed": 11}


@pytest.fixture(scope="session")
def prepared_selfies(selfies: list[Path]):
    return prepare_photos([(p.name, p.read_bytes()) for p in selfies[:6]], PrepareOptions(resolution=64))


@pytest.fixture(scope="session")
def instance_images(prepared_selfies) -> list[np.ndarray]:
    return [image.pixels for image in prepared_selfies.images]


@pytest.fixture(scope="session")
def trained(
    tiny: BaseCheckpoint, instance_images, cache_dir: Path, tmp_path_factory
) -> tuple[Path, TrainingFigures, list]:
    out = tmp_path_factory.mktemp("lora")
    seen: list[TrainingProgress] = []
    options = TrainingOptions(**SHORT)
    metrics = train_lora(
        tiny.load(),
        instance_images,
        options,
        out,
        base_sha256=tiny.sha256,
        class_store=LocalClassImageStore(cache_dir / "class-images"),
        device="cpu",
        progress=seen.append,
    )
    write_metadata(out, base_model="tiny", base_model_sha256=tiny.sha256, options=options, metrics=metrics, photos=6)
    return out, metrics, seen


def _image(pipeline, prompt: str = "a photo of ohwx person") -> np.ndarray:
    generator = torch.Generator().manual_seed(5)
    return pipeline(prompt, num_inference_steps=4, generator=generator, output_type="np").images[0]


def test_the_tiny_base_model_is_built_once_and_reused(tiny: BaseCheckpoint, cache_dir: Path):
    again = resolve_base_model("tiny", cache_dir=cache_dir)

    assert again.folder == tiny.folder
    assert again.sha256 == tiny.sha256
    assert (tiny.folder / "model_index.json").is_file()
    pipeline = tiny.load()
    assert tiny.native_resolution == pipeline_resolution(pipeline) == 64  # read from its configs, no weights loaded
    tokenizer = pipeline.tokenizer
    assert tokenizer.model_max_length == 77
    assert len(tokenizer("a photo of ohwx person").input_ids) == 7  # start, five words, end


def test_training_reports_progress_and_writes_a_diffusers_lora(trained):
    out, metrics, seen = trained

    steps = [p for p in seen if p.phase == "training"]
    assert [p.step for p in steps] == list(range(1, 26))
    assert all(p.loss is not None and np.isfinite(p.loss) for p in steps)
    assert steps[-1].eta_seconds == 0
    assert steps[0].images_per_second and steps[0].images_per_second > 0
    assert (out / LORA_WEIGHTS).is_file()
    assert metrics.precision == "float32" and metrics.device == "cpu"
    assert metrics.class_images == 4
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["token"] == "ohwx"
    assert metadata["instance_prompt"] == "a photo of ohwx person"
    assert metadata["base_model_sha256"] and metadata["rank"] == 16 and metadata["steps"] == 25


def test_the_lora_loads_with_load_lora_weights_and_changes_the_image(trained, tiny: BaseCheckpoint):
    out, _, _ = trained
    pipeline = tiny.load()
    before = _image(pipeline)
    assert np.array_equal(before, _image(pipeline))  # same seed, same image: a difference below is the adapter's

    pipeline.load_lora_weights(out, weight_name=LORA_WEIGHTS)
    after = _image(pipeline)

    assert np.abs(after - before).mean() > 1e-3


def test_a_generation_every_caller_gave_up_on_stops_at_the_next_step(tiny: BaseCheckpoint):
    import time

    from avatar.contracts.generation import GenerationRequest
    from avatar.serving.sampling import DeadlinePassed, generate_rows, load_for_inference

    pipeline = load_for_inference(tiny)
    steps_run = 0
    forward = pipeline.unet.forward

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal steps_run
        steps_run += 1
        return forward(*args, **kwargs)

    pipeline.unet.forward = counted
    request = GenerationRequest(prompt="x", seed=1, steps=20, width=64, height=64)
    with pytest.raises(DeadlinePassed):
        generate_rows(pipeline, [request], deadline=time.time() - 1)  # everyone gave up already
    assert steps_run == 1  # the step under way finished; none of the 19 others ran
    steps_run = 0
    assert len(generate_rows(pipeline, [request], deadline=time.time() + 600)[0]) == 1
    assert steps_run == 20


def test_class_images_are_generated_once_and_reused(tiny: BaseCheckpoint, tmp_path: Path):
    store = LocalClassImageStore(tmp_path)
    pipeline = tiny.load()
    arguments = {"base_sha256": tiny.sha256, "prompt": "a photo of person", "resolution": 64, "count": 3, "steps": 2}

    first, first_cached = ensure_class_images(pipeline, store, seed=0, **arguments)
    second, second_cached = ensure_class_images(pipeline, store, seed=0, **arguments)
    _, other_cached = ensure_class_images(pipeline, store, seed=0, **(arguments | {"prompt": "a photo of man"}))

    assert (first_cached, second_cached, other_cached) == (False, True, False)
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    assert len(list(tmp_path.iterdir())) == 2


def test_text_encoder_lora_trains_saves_and_loads(
    tiny: BaseCheckpoint, instance_images, cache_dir: Path, tmp_path: Path
):
    options = TrainingOptions(**(SHORT | {"steps": 3, "train_text_encoder": True, "text_encoder_rank": 4}))
    train_lora(
        tiny.load(),
        instance_images,
        options,
        tmp_path,
        base_sha256=tiny.sha256,
        class_store=LocalClassImageStore(cache_dir / "class-images"),
        device="cpu",
    )
    from safetensors.torch import load_file

    keys = load_file(tmp_path / LORA_WEIGHTS).keys()
    assert any(key.startswith("text_encoder.") for key in keys)
    assert any(key.startswith("unet.") for key in keys)
    pipeline = tiny.load()
    pipeline.load_lora_weights(tmp_path, weight_name=LORA_WEIGHTS)
    assert any("lora" in name for name, _ in pipeline.text_encoder.named_parameters())


def test_the_archive_holds_one_model_folder_from_the_template(trained):
    out, _, _ = trained
    name = triton_model_name("user-1", "job-0001")
    archive = package_user_model(out, name=name)

    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        names = sorted(tar.getnames())
        assert all(member.isfile() and member.mode == 0o644 for member in tar.getmembers())
    assert names == sorted(
        [
            f"{name}/config.pbtxt",
            f"{name}/1/model.py",
            f"{name}/1/lora/{LORA_WEIGHTS}",
            f"{name}/1/lora/metadata.json",
        ]
    )
    assert package_user_model(out, name=name) == archive  # same inputs, same bytes
    assert archive[4:8] == b"\0\0\0\0"  # no gzip timestamp: the same bytes in any second


def test_the_extracted_model_loads_the_lora_and_generates(trained, cache_dir: Path, tmp_path: Path):
    out, _, _ = trained
    archive = package_user_model(out, name="avatar-u1-v1")
    folder = extract_user_model(archive, tmp_path / "repository")

    assert (folder / "config.pbtxt").read_text() == (user_model_template() / "config.pbtxt").read_text()
    model = PrivatePipeline.load(folder / "1" / "lora", cache_dir=cache_dir)
    request = request_from_tensors(
        {
            "prompt": np.array([b"<<TOK>> as an astronaut"], dtype=object),
            "seed": np.array([9]),
            "steps": np.array([3]),
            "num_images": np.array([2]),
        }
    )
    images = model.generate(request)

    assert [image.seed for image in images] == [9, 10]
    for image in images:
        assert Image.open(io.BytesIO(image.png)).size == (64, 64)
    assert [image.png for image in model.generate(request)] == [image.png for image in images]  # same batch
    alone = model.generate(request.model_copy(update={"num_images": 1}))
    assert_same_image(alone[0].png, images[0].png)  # a seed makes the same image alone (up to float rounding)


def _tar(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.parametrize(
    "member",
    [
        tarfile.TarInfo("../escape/config.pbtxt"),
        tarfile.TarInfo("/abs/config.pbtxt"),
        tarfile.TarInfo("model/../../x"),
    ],
)
def test_unsafe_member_names_are_refused(member: tarfile.TarInfo, tmp_path: Path):
    with pytest.raises(UnsafeArchive):
        extract_user_model(_tar([(member, b"x")]), tmp_path)
    assert not any(tmp_path.iterdir())


def test_links_and_several_top_folders_are_refused(tmp_path: Path):
    link = tarfile.TarInfo("model/1/adapter")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc"
    with pytest.raises(UnsafeArchive):
        extract_user_model(_tar([(link, b"")]), tmp_path)
    with pytest.raises(UnsafeArchive, match="one model folder"):
        extract_user_model(_tar([(tarfile.TarInfo("a/x"), b"1"), (tarfile.TarInfo("b/y"), b"2")]), tmp_path)


def _lora_weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / LORA_WEIGHTS))


def test_the_trainer_ships_the_checkpoint_whose_validation_images_are_most_alike(
    tiny: BaseCheckpoint, instance_images, cache_dir: Path, tmp_path: Path
):
    from dataclasses import replace

    options = TrainingOptions(**SHORT | {"steps": 6, "validation_checkpoints": 3, "validation_steps": 2})
    judged: list[int] = []

    def prefers_the_first(images):  # a scorer that likes the first checkpoint's images best (the choice is the test)
        judged.append(len(images))
        likeness = 0.9 if len(judged) == 1 else 0.4
        return [replace(image, face_found=True, likeness=likeness) for image in images]

    store = LocalClassImageStore(cache_dir / "class-images")
    run = {"base_sha256": tiny.sha256, "class_store": store, "device": "cpu"}
    figures = train_lora(tiny.load(), instance_images, options, tmp_path / "best", scorer=prefers_the_first, **run)
    # The same training stopped at the first checkpoint (step 2), without judging: the weights shipped above.
    first = options.model_copy(update={"steps": 2, "validation_checkpoints": 0})
    train_lora(tiny.load(), instance_images, first, tmp_path / "first", **run)
    last = options.model_copy(update={"validation_checkpoints": 0})
    train_lora(tiny.load(), instance_images, last, tmp_path / "last", **run)

    assert judged == [2, 2, 2] and [p.step for p in figures.checkpoints] == [2, 4, 6]
    assert [p.likeness for p in figures.checkpoints] == [0.9, 0.4, 0.4]
    assert figures.chosen_step == 2 and "most alike" in (figures.chosen_because or "")
    shipped, stopped, ended = (_lora_weights(tmp_path / name) for name in ("best", "first", "last"))
    # Equal to the weights at step 2 (up to 1e-4: class images just generated or read back from the cache differ by
    # a rounding), and not the last ones (which moved 4e-3 further).
    assert all(torch.allclose(shipped[name], stopped[name], atol=1e-4) for name in shipped)
    assert any(not torch.allclose(shipped[name], ended[name], atol=1e-4) for name in shipped)
    assert figures.validation_seconds > 0


def test_without_a_face_in_any_validation_image_the_last_checkpoint_is_shipped_and_says_so(
    tiny: BaseCheckpoint, instance_images, prepared_selfies, cache_dir: Path, tmp_path: Path
):
    options = TrainingOptions(**SHORT | {"steps": 4, "validation_steps": 2})
    seen: list[TrainingProgress] = []

    figures = train_lora(
        tiny.load(),
        instance_images,
        options,
        tmp_path,
        base_sha256=tiny.sha256,
        class_store=LocalClassImageStore(cache_dir / "class-images"),
        device="cpu",
        progress=seen.append,
        identity=prepared_selfies.identity(),  # the real scorer: dlib's models against the selfies' identity
    )

    assert [(p.step, p.faces_found, p.likeness, p.images) for p in figures.checkpoints] == [
        (1, 0, None, 2), (3, 0, None, 2), (4, 0, None, 2),
    ]  # fmt: skip
    assert figures.chosen_step == 4
    assert figures.chosen_because == "no validation image had a face: the last checkpoint is shipped"
    assert len(seen[-1].checkpoints) == 3  # the curve is in the progress the API shows

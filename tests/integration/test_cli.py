"""The `avatar` command as a user runs it: check (text and JSON, exit codes) and the demo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from avatar.demo import run_demo
from avatar.photos.hard_cases import HardCase

AVATAR = [sys.executable, "-m", "avatar.cli"]


def test_check_json_gives_one_verdict_per_photo_and_exits_0(
    tmp_path: Path, selfies: list[Path], hard_cases: dict[str, HardCase]
) -> None:
    for name in ("notes.jpg", "bomb-40000x40000.png", "two-people.jpg"):
        (tmp_path / name).write_bytes(hard_cases[name].data)
    copy = tmp_path / "copy-of-first.jpg"
    copy.write_bytes(selfies[0].read_bytes())
    given = [str(selfies[0]), str(tmp_path / "notes.jpg"), str(tmp_path / "bomb-40000x40000.png"), str(copy)]
    given.append(str(tmp_path / "two-people.jpg"))
    result = subprocess.run([*AVATAR, "check", "--json", *given], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["photo"] for line in lines] == given
    assert set(lines[0]) == {"photo", "accepted", "reasons", "face"}
    assert [line["reasons"] for line in lines] == [
        [],
        ["not_an_image"],
        ["too_many_pixels"],
        ["duplicate"],
        ["multiple_faces"],
    ]
    assert lines[0]["face"]["w"] > 200 and lines[1]["face"] is None


def test_check_of_a_folder_prints_a_readable_line_per_photo(selfies: list[Path]) -> None:
    result = subprocess.run([*AVATAR, "check", str(selfies[0].parent)], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert len(result.stdout.splitlines()) == 11
    assert all(": accepted (face " in line for line in result.stdout.splitlines())


@pytest.mark.parametrize("args", [["check"], ["check", "/no/such/photo.jpg"], ["frobnicate"]])
def test_usage_errors_exit_2(args: list[str]) -> None:
    assert subprocess.run([*AVATAR, *args], capture_output=True, check=False).returncode == 2


@pytest.mark.slow
def test_demo_runs_the_whole_flow_and_writes_a_report(
    tmp_path: Path, selfies: list[Path], capsys: pytest.CaptureFixture[str], cache_dir: Path
) -> None:
    out = tmp_path / "demo"
    tiny = {"options": {"steps": 3, "num_class_images": 1, "class_image_steps": 1}, "backgrounds_per_photo": 0}
    assert run_demo(out=out, faces=selfies[0].parent, cache_dir=cache_dir, training_defaults=tiny) == 0
    printed = capsys.readouterr().out
    assert "demo-user: 11 accepted, 0 more needed to train" in printed
    assert "demo-hard-cases: 6 accepted, 4 more needed to train" in printed
    assert "AvatarModelReady (version 1)" in printed and "local stack stopped" in printed
    report = (out / "index.html").read_text()
    assert "refused too_many_pixels" in report and "refused duplicate" in report
    assert "AvatarModelReady" in report and "These images are noise" in report
    assert len(list((out / "normalized").glob("*.jpg"))) == 17
    assert len(list((out / "prepared").glob("*.png"))) == 11
    assert len(list((out / "avatars").glob("*.png"))) == 6  # three prompts, two images each


def test_prepare_writes_crops_and_a_manifest(tmp_path: Path, selfies: list[Path]) -> None:
    out = tmp_path / "prepared"
    result = subprocess.run(
        [*AVATAR, "prepare", *map(str, selfies[:3]), "--out", str(out), "--resolution", "128", "--backgrounds", "1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["images"]) == 6
    assert all((out / entry["file"]).is_file() for entry in manifest["images"])
    assert "6 training images from 3 photos" in result.stdout


@pytest.mark.slow
def test_train_writes_the_model_archive_and_the_adapter_with_a_progress_bar(
    tmp_path: Path, selfies: list[Path]
) -> None:
    out = tmp_path / "run"
    env = {**os.environ, "AVATAR_CACHE_DIR": str(tmp_path / "cache")}
    command = [*AVATAR, "train", str(selfies[0].parent), "--out", str(out), "--base-model", "tiny", "--steps", "5"]
    result = subprocess.run([*command, "--class-images", "2"], capture_output=True, text=True, check=False, env=env)

    assert result.returncode == 0, result.stderr
    assert (out / "model.tar.gz").is_file()
    assert (out / "adapter" / "pytorch_lora_weights.safetensors").is_file()
    metadata = json.loads((out / "adapter" / "metadata.json").read_text())
    assert metadata["steps"] == 5 and metadata["photos"] == 11
    assert "5/5" in result.stderr  # tqdm's bar
    assert "5 steps in" in result.stdout


def test_train_refuses_too_few_photos_with_exit_1(tmp_path: Path, selfies: list[Path]) -> None:
    env = {**os.environ, "AVATAR_CACHE_DIR": str(tmp_path / "cache")}
    command = [*AVATAR, "train", *map(str, selfies[:2]), "--out", str(tmp_path / "run"), "--steps", "1"]
    result = subprocess.run(command, capture_output=True, text=True, check=False, env=env)

    assert result.returncode == 1
    assert "too few usable photos: 2 of 2" in result.stderr

"""The `avatar` command as a user runs it: check (text and JSON, exit codes) and the demo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from avatar_dev.hard_cases import HardCase, cat_photo, other_people

AVATAR = [sys.executable, "-m", "avatar_dev.cli"]


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
    *lines, summary = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["photo"] for line in lines] == given
    assert set(lines[0]) == {"photo", "accepted", "reasons", "messages", "face", "duplicate_of", "yaw"}
    assert lines[1]["messages"] == ["The file is empty, damaged or not an image."]
    assert lines[3]["duplicate_of"] == given[0]
    coverage = summary["summary"].pop("coverage")
    assert summary == {"summary": {"checked": 5, "accepted": 1, "refused": 4, "unreadable": 0, "needed_to_train": 9}}
    assert coverage["front"] + coverage["left"] + coverage["right"] == 1 and len(coverage["advice"]) == 2
    assert [line["reasons"] for line in lines] == [
        [],
        ["not_an_image"],
        ["too_many_pixels"],
        ["duplicate"],
        ["multiple_faces"],
    ]
    assert lines[0]["face"]["w"] > 200 and lines[1]["face"] is None


def test_check_of_a_folder_prints_a_readable_line_per_photo_and_a_summary(selfies: list[Path]) -> None:
    result = subprocess.run([*AVATAR, "check", str(selfies[0].parent)], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    *lines, summary = result.stdout.splitlines()
    assert len(lines) == 11
    assert all(": accepted (face " in line for line in lines)
    assert summary.startswith("11 photos checked: 11 accepted, 0 refused. A training needs 10 accepted photos: ready.")
    assert " Facing: " in summary


def test_check_gives_every_readable_photo_its_verdict_when_other_arguments_are_missing_or_empty(
    tmp_path: Path, selfies: list[Path]
) -> None:
    (tmp_path / "empty-folder").mkdir()
    given = [str(tmp_path / "missing.jpg"), str(selfies[0]), str(tmp_path / "empty-folder"), str(selfies[1])]
    result = subprocess.run([*AVATAR, "check", *given], capture_output=True, text=True, check=False)

    assert result.returncode == 1  # documented: some argument gave no photo
    lines = result.stdout.splitlines()
    assert lines[0] == f"{given[0]}: no such file or folder"
    assert lines[1].startswith(f"{given[1]}: accepted") and lines[3].startswith(f"{given[3]}: accepted")
    assert lines[2] == f"{given[2]}: a folder with no photos in it"
    assert "2 could not be read. A training needs 10 accepted photos: 8 more." in lines[4]


def test_check_refuses_a_stranger_among_the_selfies_and_likeness_scores_people(
    tmp_path: Path, selfies: list[Path]
) -> None:
    stranger = tmp_path / "astronaut.jpg"
    stranger.write_bytes(other_people()["astronaut.jpg"])
    cat = tmp_path / "cat.jpg"
    cat.write_bytes(cat_photo())
    early = tmp_path / "astronaut-first.jpg"
    early.write_bytes(stranger.read_bytes())
    given = [str(early), *map(str, selfies[:4]), str(stranger)]

    checked = subprocess.run([*AVATAR, "check", "--json", *given], capture_output=True, text=True, check=True)
    *lines, summary = [json.loads(line) for line in checked.stdout.splitlines()]
    # In arrival order: the stranger is accepted while the set has no person, refused after all once three selfies
    # agree (a line of its own), and refused on arrival afterwards (not as a duplicate of a photo no longer accepted).
    judged = [(line["photo"], line["reasons"], line.get("revised", False)) for line in lines]
    assert judged == [
        (given[0], [], False),
        (given[1], [], False),
        (given[2], [], False),
        (given[3], [], False),
        (given[0], ["different_person"], True),
        (given[4], [], False),
        (given[5], ["different_person"], False),
    ]
    assert summary["summary"]["accepted"] == 4 and summary["summary"]["refused"] == 2

    reference = str(selfies[0].parent)
    scored = subprocess.run(
        [*AVATAR, "likeness", "--json", "--reference", reference, str(selfies[0]), str(stranger), str(cat)],
        capture_output=True,
        text=True,
        check=True,
    )
    own, other, no_face = [json.loads(line) for line in scored.stdout.splitlines()]
    assert set(own) == {"photo", "likeness", "face_found"}
    assert own["likeness"] > 0.5 > other["likeness"] and own["face_found"] and other["face_found"]
    assert no_face == {"photo": str(cat), "likeness": None, "face_found": False}


def test_a_closed_pipe_ends_a_command_quietly(selfies: list[Path]) -> None:
    check = subprocess.Popen(
        [*AVATAR, "check", *[str(p) for p in selfies] * 3], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert check.stdout is not None and check.stderr is not None
    check.stdout.readline()
    check.stdout.close()  # what `| head -1` does
    assert check.wait(timeout=120) == 1
    assert check.stderr.read() == b""  # no traceback, no "Exception ignored"


@pytest.mark.parametrize("args", [["check"], ["frobnicate"], ["train", "--steps", "3"]])
def test_usage_errors_exit_2(args: list[str]) -> None:
    assert subprocess.run([*AVATAR, *args], capture_output=True, check=False).returncode == 2


def test_every_option_of_every_command_has_help_its_default_and_an_example() -> None:
    import argparse

    from avatar_dev.cli import build_parser

    parser = build_parser()
    version = subprocess.run([*AVATAR, "--version"], capture_output=True, text=True, check=False)
    assert version.returncode == 0 and "avatar-service" in version.stdout
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, command in commands.choices.items():
        text = command.format_help()
        assert "example:\n  avatar " in text, name
        text = " ".join(text.split())  # help lines wrap anywhere
        for action in command._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"{name} {action.option_strings}"
                shown = f"(default: {action.default})" in text or action.default in (None, False, [], argparse.SUPPRESS)
                assert shown, f"{name} {action.option_strings} does not show its default"


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
def test_train_writes_the_model_archive_and_the_lora_with_a_progress_bar(
    tmp_path: Path, selfies: list[Path], cache_dir: Path
) -> None:
    out = tmp_path / "run"
    env = {**os.environ, "AVATAR_CACHE_DIR": str(cache_dir)}
    command = [*AVATAR, "train", str(selfies[0].parent), "--out", str(out), "--base-model", "tiny", "--steps", "5"]
    result = subprocess.run([*command, "--class-images", "2"], capture_output=True, text=True, check=False, env=env)

    assert result.returncode == 0, result.stderr
    assert (out / "model.tar.gz").is_file()
    assert (out / "lora" / "pytorch_lora_weights.safetensors").is_file()
    metadata = json.loads((out / "lora" / "metadata.json").read_text())
    assert metadata["steps"] == 5 and metadata["photos"] == 11
    assert "5/5" in result.stderr  # tqdm's bar
    assert "5 steps in" in result.stdout


def test_train_refuses_too_few_photos_with_exit_1(tmp_path: Path, selfies: list[Path], cache_dir: Path) -> None:
    env = {**os.environ, "AVATAR_CACHE_DIR": str(cache_dir)}
    command = [*AVATAR, "train", *map(str, selfies[:2]), "--out", str(tmp_path / "run"), "--steps", "1"]
    result = subprocess.run(command, capture_output=True, text=True, check=False, env=env)

    assert result.returncode == 1
    assert "too few usable photos: 2 of 2" in result.stderr


def test_verify_says_which_images_carry_the_ai_generated_marks(tmp_path: Path) -> None:
    from PIL import Image

    from avatar.provenance.content_credentials import ContentCredentials
    from avatar.provenance.xmp import marked_png
    from avatar_dev.local.content_credentials import IDENTITY_FILE, development_identity

    identity, trust_anchor = development_identity(tmp_path / "cache" / "content-credentials")
    assert (tmp_path / "cache" / "content-credentials" / IDENTITY_FILE).is_file()
    anchors = tmp_path / "anchors.pem"
    anchors.write_text(trust_anchor)
    signed, xmp_only, plain, junk = (tmp_path / name for name in ("avatar.png", "xmp.png", "photo.png", "notes.png"))
    xmp_only.write_bytes(marked_png(Image.new("RGB", (16, 16))))
    signed.write_bytes(ContentCredentials(identity, generator_version="1").sign_png(xmp_only.read_bytes()))
    Image.new("RGB", (16, 16)).save(plain)
    junk.write_text("not an image")
    env = os.environ | {"AVATAR_CACHE_DIR": str(tmp_path / "cache")}  # the local stack's development CA is trusted

    every = subprocess.run(
        [*AVATAR, "verify", "--json", str(signed), str(xmp_only), str(plain), str(junk)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert every.returncode == 1
    found = [json.loads(line) for line in every.stdout.splitlines()]
    assert [line.get("ai_generated") for line in found] == [True, False, False, None] and "error" in found[3]
    assert [line.get("c2pa") for line in found[:3]] == ["Trusted", None, None]
    assert found[0]["xmp_digital_source_type"].endswith("/trainedAlgorithmicMedia")
    assert found[0]["c2pa_actions"] == ["c2pa.created"] and found[0]["c2pa_generator"] == "avatar-service 1"
    alone = subprocess.run([*AVATAR, "verify", str(signed)], capture_output=True, text=True, env=env)
    assert alone.returncode == 0 and "C2PA Trusted" in alone.stdout and "XMP: AI-generated" in alone.stdout
    elsewhere = env | {"AVATAR_CACHE_DIR": str(tmp_path / "other")}  # no development CA: valid, not trusted
    untrusted = subprocess.run([*AVATAR, "verify", str(signed)], capture_output=True, text=True, env=elsewhere)
    assert untrusted.returncode == 0 and "C2PA Valid (signer not trusted here" in untrusted.stdout
    given = subprocess.run(
        [*AVATAR, "verify", "--trust-anchors", str(anchors), str(signed)], capture_output=True, text=True, env=elsewhere
    )
    assert "C2PA Trusted" in given.stdout

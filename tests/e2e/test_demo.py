"""`make demo` as a test: the whole product on the local stack, driven over HTTP, and its report."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from avatar_dev.demo.run import run_demo
from avatar_dev.hard_cases import HardCase

pytestmark = pytest.mark.slow


def test_demo_runs_the_whole_flow_and_writes_a_report(
    tmp_path: Path,
    selfies: list[Path],
    hard_cases: dict[str, HardCase],
    capsys: pytest.CaptureFixture[str],
    cache_dir: Path,
) -> None:
    out = tmp_path / "demo"
    options = {"steps": 3, "num_class_images": 1, "class_image_steps": 1, "validation_checkpoints": 1}
    tiny = {"options": options, "backgrounds_per_photo": 0}
    cases = list(hard_cases.values())  # built once for the whole test run
    demo = run_demo(out=out, faces=selfies[0].parent, cache_dir=cache_dir, training_defaults=tiny, hard_cases=cases)
    assert demo == 0
    printed = capsys.readouterr().out
    assert "demo-user: 11 accepted, 0 more needed to train" in printed
    assert "demo-hard-cases: 7 accepted, 3 more needed to train" in printed
    assert "AvatarModelReady (version 1)" in printed and "local stack stopped" in printed
    # The training followed to its end (each phase's line is tested below: a tiny job outruns the polling), and
    # every refusal in words
    assert "READY     version 1: AvatarModelReady after" in printed
    assert "not_an_image: The file is empty, damaged or not an image." in printed
    assert f"use a different one. (same as {selfies[0].name})" in printed  # the duplicate, and which photo it repeats
    assert re.findall(r"seeds (\d+), (\d+)", printed) == [("1000", "1001"), ("2000", "2001"), ("3000", "3001")]

    report = (out / "index.html").read_text()
    assert "refused too_many_pixels" in report and "refused duplicate" in report
    assert "AvatarModelReady" in report and "These images are noise" in report
    # The summary and the avatars first, then a section per user, then the training
    order = [
        report.index(part)
        for part in ("class=summary", "<h2>Avatars", "id='user-demo-user'", "id='user-demo-hard-cases'", "<h2>Training")
    ]
    assert order == sorted(order)
    assert "width=device-width" in report  # reads on a phone
    assert report.count("class=box") >= 18  # the face box on every accepted photo
    assert f"the same photo as <b>{selfies[0].name}</b>" in report
    for placeholder in ("an empty file", "not an image: nothing to show", "40000x40000 pixels", "a damaged image"):
        assert placeholder in report, placeholder
    assert "<h3>Loss</h3>" in report and report.count("class=bar") >= 4  # the timeline of the training
    assert len(list((out / "normalized").glob("*.jpg"))) == 18  # 11 selfies and 7 accepted hard cases
    assert len(list((out / "prepared").glob("*.png"))) == 11
    assert len(list((out / "avatars").glob("*.png"))) == 6  # three prompts, two images each
    # every avatar scored (the prompts' 6 and the starter pack's 16); the tiny model draws no face
    assert report.count("no face found: likeness unknown") == 6 + 16
    # The starter pack, made by its subscriber to AvatarModelReady and announced, in the report with its figures
    assert "Starter pack: AvatarPackReady" in printed and "16 images in 8 styles (0 withheld)" in printed
    assert "<h2>Starter pack</h2>" in report and "of their capacity" in report
    assert len(list((out / "pack").glob("*.png"))) == 16
    # The web app, driven in headless Chromium, with its screenshots in the report
    assert "<h2>The web app</h2>" in report
    for shot in ("sign-in-phone.png", "photos-phone.png", "generate-desktop.png"):
        assert (out / "web" / shot).stat().st_size > 10_000 and f"web/{shot}" in report, shot


@pytest.mark.parametrize(
    ("progress", "line"),
    [
        ({"phase": "preparing"}, "TRAINING  preparing"),
        (
            {"phase": "class_images", "step": 8, "total_steps": 100, "eta_seconds": 43.2},
            "TRAINING  class images 8/100, about 43 s left",
        ),
        (
            {"phase": "training", "step": 120, "total_steps": 500, "loss": 0.12345, "eta_seconds": 25},
            "TRAINING  training step 120/500, loss 0.1235, about 25 s left",
        ),
        ({"phase": "packaging", "step": 500, "total_steps": 500}, "TRAINING  packaging"),
        (None, "QUEUED"),
    ],
)
def test_the_demo_shows_every_phase_with_counts_and_time_left(progress: dict[str, object] | None, line: str) -> None:
    from avatar_dev.demo.run import describe_progress

    state = "QUEUED" if progress is None else "TRAINING"
    assert describe_progress({"state": state, "job": {"progress": progress}}) == line

"""`avatar bench`: the figures docs/figures.md quotes, measured the same way every time."""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from avatar_dev.paths import REPOSITORY

HANDLERS = ("services.upload.api", "services.upload.photo_check", "services.generate.api")
LAMBDA_ZIP_LIMIT_MB = 250


def machine() -> str:
    """What the figures were measured on."""
    return f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}, {platform.platform(terse=True)}"


def _one_core() -> None:
    import cv2

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    cv2.setNumThreads(1)


def phone_photo_check_ms(runs: int = 15) -> dict[str, Any]:
    """Median and p90 time to check one 12 MP phone JPEG on one core: decode, face detection, landmarks and the face
    descriptor included (the photo is accepted, so every step runs)."""
    from PIL import Image

    from avatar.photo_check.checker import check_photo, default_face_models
    from avatar_dev.hard_cases import phone_photo
    from avatar_dev.paths import shared_faces_dir

    faces = sorted(shared_faces_dir().glob("*.jpg"))
    data = phone_photo(Image.open(faces[0]).convert("RGB"))
    _one_core()
    default_face_models()
    from avatar.photo_check.policy import CheckPolicy

    assert check_photo(data).verdict.accepted  # warm-up: first-call imports and model loads
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        check_photo(data)
        times.append((time.perf_counter() - started) * 1000)
    return {
        "median_ms": round(statistics.median(times), 1),
        "p90_ms": round(sorted(times)[int(runs * 0.9)], 1),
        "photo": "4032x3024 JPEG, EXIF orientation 6",
        "working_side_px": CheckPolicy().working_side,
        "detect_side_px": 1024,
    }


def likeness_leave_one_out() -> dict[str, Any]:
    """Each shared selfie scored against the identity of the other ten, and other people's faces (scikit-image's
    public-domain and CC0 photos) against all eleven: the separation is the lowest same-person likeness minus the
    highest other-person one."""
    import io

    import numpy as np
    from PIL import Image

    from avatar.identity.likeness import Identity
    from avatar.identity.models import describe_largest_face
    from avatar.photo_check.checker import default_face_models
    from avatar_dev.hard_cases import other_people
    from avatar_dev.paths import shared_faces_dir

    def describe(data: bytes) -> Any:
        rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        return describe_largest_face(rgb, default_face_models())

    selfies = {p.name: describe(p.read_bytes()) for p in sorted(shared_faces_dir().glob("*.jpg"))}
    same = {
        name: Identity.of(d for other, d in selfies.items() if other != name).likeness(descriptor)
        for name, descriptor in selfies.items()
    }
    everyone = Identity.of(selfies.values())
    others = {name: everyone.likeness(describe(data)) for name, data in other_people().items()}
    return {
        "lowest_same_person": min(same.values()),
        "highest_other_person": max(others.values()),
        "separation": round(min(same.values()) - max(others.values()), 3),
        "same_person": same,
        "other_people": others,
    }


_BOMB_CHILD = """
import json, resource, sys, time
from avatar.photo_check.checker import check_photo
from avatar_dev.hard_cases import png_bomb
bomb = png_bomb()
check_photo(open(sys.argv[1], 'rb').read())  # warm-up on a normal photo: imports, cascade, Pillow plugins
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
times = []
for _ in range(20):
    started = time.perf_counter()
    verdict = check_photo(bomb).verdict
    times.append((time.perf_counter() - started) * 1000)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"reasons": [str(r) for r in verdict.reasons], "median_ms": sorted(times)[10],
                  "extra_peak_rss_mb": (after - before) / 1024, "file_kb": len(bomb) / 1024}))
"""


def bomb_refusal() -> dict[str, Any]:
    """Time and extra peak memory to refuse a 40000x40000 PNG, in a fresh process so the peak is its own."""
    from avatar_dev.paths import shared_faces_dir

    faces = sorted(shared_faces_dir().glob("*.jpg"))
    out = subprocess.run(
        [sys.executable, "-c", _BOMB_CHILD, str(faces[0])], check=True, capture_output=True, text=True
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in result.items()}


def import_times_ms() -> dict[str, float]:
    """Cumulative import time of each handler module (PYTHONPROFILEIMPORTTIME), in a fresh interpreter each."""
    times: dict[str, float] = {}
    for module in HANDLERS:
        err = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", f"import {module}"],
            check=True,
            capture_output=True,
            text=True,
            cwd=REPOSITORY,
        ).stderr
        line = next(line for line in reversed(err.splitlines()) if line.rstrip().endswith(f"| {module}"))
        times[module] = round(int(line.split("|")[1]) / 1000, 1)
    return times


def lambda_sizes_mb() -> dict[str, float]:
    """Unzipped size of each function's installed package (what Lambda counts), without boto3 (in the runtime)."""
    sizes: dict[str, float] = {}
    functions = (
        ("UploadApiFunction", "."),
        ("PhotoCheckFunction", ".[photos]"),
        ("GenerateApiFunction", ".[generate]"),
    )
    for function, spec in functions:
        target = Path(tempfile.mkdtemp(prefix="lambda-size-"))
        try:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--no-compile",
                    "--target",
                    str(target),
                    spec,
                ],
                check=True,
                cwd=REPOSITORY,
            )
            for provided in ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3"):
                for path in target.glob(f"{provided}*"):
                    shutil.rmtree(path, ignore_errors=True)
            sizes[function] = round(sum(f.stat().st_size for f in target.rglob("*") if f.is_file()) / 1e6, 1)
        finally:
            shutil.rmtree(target, ignore_errors=True)
    return sizes


def run(what: str, *, as_json: bool) -> int:
    """Run one benchmark group and print its figures (the last line is JSON with --json)."""
    if what == "intake":
        figures: dict[str, Any] = {
            "phone_photo_12mp_check_one_core": phone_photo_check_ms(),
            "likeness_leave_one_out": likeness_leave_one_out(),
            "bomb_40000x40000_png_refusal": bomb_refusal(),
            "handler_import_ms": import_times_ms(),
        }
    else:
        figures = {"lambda_unzipped_mb": lambda_sizes_mb(), "lambda_zip_limit_mb": LAMBDA_ZIP_LIMIT_MB}
    figures["machine"] = machine()
    figures["max_rss_mb_of_this_process"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    if as_json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key}: {value}")
    return 0

"""`avatar bench photo-limits`: the slowest and most memory-hungry photos within the checker's limits, each checked in
a fresh process on one core (three times: the median time, the highest peak); prints each verdict's time and peak
memory, then the slowest and the highest peak.

The cases sit at the limits the check sets (15 MB, 64 MP JPEG, 25 MP for formats decoded whole, 40 JPEG scans, 2.5 bits
a pixel for HEIC) or just past them, in every accepted format and in the shapes that cost decoders most: noise that
does not compress, progressive JPEGs with as many scans as allowed, CMYK with a colour profile, alpha, 16-bit,
palettes, lossless files of a few hundred bytes, and 15 MB of bytes that open like an image and are not one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from avatar.photo_check.decoding import MAX_HEIC_BITS_PER_PIXEL, MAX_JPEG_SCANS
from avatar.photo_check.policy import CheckPolicy
from avatar_dev.hard_cases import encode, heic, with_scans

POLICY = CheckPolicy()
GOAL_SECONDS = 2.0
GOAL_PEAK_MB = 600
REPEATS = 3


def _noise(width: int, height: int, *, cell: int, seed: int = 1) -> Image.Image:
    """Smooth blobs plus sensor noise: a photo-like picture that compresses about as badly as a real one."""
    import cv2

    rng = np.random.default_rng(seed)
    blobs = rng.integers(0, 256, (max(1, height // cell), max(1, width // cell), 3), dtype=np.uint8)
    picture = np.asarray(cv2.resize(blobs, (width, height), interpolation=cv2.INTER_CUBIC), dtype=np.int16)
    picture += rng.normal(0, 6, picture.shape).astype(np.int16)
    return Image.fromarray(picture.clip(0, 255).astype(np.uint8), mode="RGB")


def largest_jpeg(image: Image.Image, **options: Any) -> bytes:
    """The best-quality JPEG of `image` that fits the upload limit."""
    for quality in (95, 90, 85, 80, 75, 70, 60, 50, 40):
        data = encode(image, "JPEG", quality=quality, **options)
        if len(data) <= POLICY.max_bytes:
            return data
    raise ValueError("no JPEG quality fits the upload limit")


def largest_heic(image: Image.Image) -> bytes:
    """The best-quality HEIC of `image` within the bits a pixel the check decodes."""
    limit = image.width * image.height * MAX_HEIC_BITS_PER_PIXEL / 8
    for quality in (80, 70, 65, 62, 60, 58, 55, 50, 40):
        data = heic(image, quality=quality)
        if len(data) <= limit:
            return data
    raise ValueError("no HEIC quality fits the bits a pixel the check decodes")


def _flat(mode: str, side: int, fmt: str, **options: Any) -> bytes:
    color: Any = {"RGBA": (128, 128, 128, 200), "I;16": 30000, "P": 3}.get(mode, (128, 128, 128))
    image = Image.new(mode, (side, side), color)
    if mode == "P":
        options["transparency"] = 3
    return encode(image, fmt, **options)


def _mpo(first: Image.Image, second: Image.Image) -> bytes:
    return encode(first, "MPO", save_all=True, append_images=[second], quality=80)


def _looks_like(magic: bytes) -> bytes:
    rng = np.random.default_rng(3)
    return magic + rng.integers(0, 256, POLICY.max_bytes - len(magic), dtype=np.uint8).tobytes()


def worst_cases() -> dict[str, Callable[[], bytes]]:
    """Name -> builder of each worst case (built lazily: some take seconds)."""
    side_64mp = int(POLICY.max_pixels**0.5)  # 8000
    side_25mp = int(POLICY.max_whole_decode_pixels**0.5)  # 5000
    return {
        "jpeg-64mp-noise": lambda: largest_jpeg(_noise(side_64mp, side_64mp, cell=16)),
        "jpeg-64mp-progressive-max-scans": lambda: with_scans(
            largest_jpeg(_noise(side_64mp, side_64mp, cell=64), progressive=True), MAX_JPEG_SCANS
        ),
        "jpeg-64mp-too-many-scans": lambda: with_scans(
            largest_jpeg(_noise(side_64mp, side_64mp, cell=64), progressive=True), 10**6, max_bytes=POLICY.max_bytes
        ),
        "jpeg-64mp-cmyk-icc": lambda: largest_jpeg(
            _noise(side_64mp, side_64mp, cell=64).convert("CMYK"), icc_profile=_cmyk_like_profile()
        ),
        "mpo-2x-24mp": lambda: _mpo(_noise(6000, 4000, cell=32), _noise(6000, 4000, cell=32, seed=2)),
        "png-25mp-rgba-flat": lambda: _flat("RGBA", side_25mp, "PNG"),
        "png-25mp-16bit-gray": lambda: _flat("I;16", side_25mp, "PNG"),
        "png-25mp-palette-transparent": lambda: _flat("P", side_25mp, "PNG"),
        "png-64mp-flat": lambda: _flat("RGB", side_64mp, "PNG"),
        "webp-25mp-lossless-flat": lambda: _flat("RGBA", side_25mp, "WEBP", lossless=True),
        "webp-16383px-lossy": lambda: encode(_noise(16383, 1526, cell=32), "WEBP", quality=90),
        "heic-25mp-most-bits-decoded": lambda: largest_heic(_noise(side_25mp, side_25mp, cell=32)),
        "heic-25mp-too-many-bits": lambda: heic(_noise(side_25mp, side_25mp, cell=32), quality=80),
        "random-15mb": lambda: _looks_like(b""),
        "jpeg-header-then-15mb-noise": lambda: _looks_like(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00"),
        "png-header-then-15mb-noise": lambda: _looks_like(b"\x89PNG\r\n\x1a\n"),
        "tiff-header-then-15mb-noise": lambda: _looks_like(b"II*\x00"),
        "heic-header-then-15mb-noise": lambda: _looks_like(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00heicmif1"),
    }


def _cmyk_like_profile() -> bytes:
    from PIL import ImageCms

    return bytes(ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes())


_CHILD = """
import json, os, sys, time
os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
import cv2
cv2.setNumThreads(1)
from avatar.photo_check.checker import check_photo, default_face_models


def peak_mb():  # this program's own high-water mark (ru_maxrss would carry the parent's across fork and exec)
    status = open('/proc/self/status').read().split('VmHWM:')[1]
    return round(int(status.split()[0]) / 1024)


default_face_models()
check_photo(open(sys.argv[2], 'rb').read())  # warm-up on a real selfie: imports, cascade, Pillow plugins
warm_mb = peak_mb()
data = open(sys.argv[1], 'rb').read()
started = time.perf_counter()
verdict = check_photo(data).verdict
seconds = round(time.perf_counter() - started, 3)
reasons = [str(r) for r in verdict.reasons]
print(json.dumps({"seconds": seconds, "peak_mb": peak_mb(), "warm_mb": warm_mb, "reasons": reasons}))
"""


def measure(data: bytes, selfie: Path, *, repeats: int = REPEATS) -> dict[str, Any]:
    """One verdict's time and peak memory (the whole process: what Lambda's memory setting must hold), each in a
    fresh process `repeats` times: the median time (a shared machine stalls now and then) and the highest peak."""
    runs = []
    with tempfile.NamedTemporaryFile(suffix=".bin") as case:
        case.write(data)
        case.flush()
        for _ in range(repeats):
            out = subprocess.run(
                [sys.executable, "-c", _CHILD, case.name, str(selfie)],
                check=True,
                capture_output=True,
                text=True,
                env=os.environ | {"OMP_NUM_THREADS": "1"},
            ).stdout
            runs.append(json.loads(out.strip().splitlines()[-1]))
    seconds = sorted(run["seconds"] for run in runs)
    result: dict[str, Any] = runs[0] | {"seconds": seconds[len(seconds) // 2], "runs_seconds": seconds}
    result["peak_mb"] = max(run["peak_mb"] for run in runs)
    return result


def run(*, as_json: bool, only: str | None = None) -> int:
    """Build and check every worst case; print each, then the slowest verdict and the highest peak."""
    from avatar_dev.bench.intake import machine
    from avatar_dev.paths import shared_faces_dir

    selfie = sorted(shared_faces_dir().glob("*.jpg"))[0]
    results: dict[str, dict[str, Any]] = {}
    for name, build in worst_cases().items():
        if only and only not in name:
            continue
        data = build()
        results[name] = {"mb": round(len(data) / 2**20, 2), **measure(data, selfie)}
        if not as_json:
            print(f"{name}: {results[name]}", flush=True)
    slowest = max(results, key=lambda n: results[n]["seconds"])
    hungriest = max(results, key=lambda n: results[n]["peak_mb"])
    summary = {
        "slowest": {"case": slowest, "seconds": results[slowest]["seconds"]},
        "highest_peak": {"case": hungriest, "peak_mb": results[hungriest]["peak_mb"]},
        "goal": {"seconds": GOAL_SECONDS, "peak_mb": GOAL_PEAK_MB},
        "within_goal": all(r["seconds"] <= GOAL_SECONDS and r["peak_mb"] <= GOAL_PEAK_MB for r in results.values()),
        "machine": machine() + ", one core",
    }
    if as_json:
        print(json.dumps({"cases": results, **summary}))
    else:
        for key, value in summary.items():
            print(f"{key}: {value}")
    return 0 if summary["within_goal"] else 1

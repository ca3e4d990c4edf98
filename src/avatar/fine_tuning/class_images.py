"""Prior-preservation class images: generated once per (base model, class prompt, resolution, count), then reused."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from avatar.cache import build_once
from avatar.contracts.training import TrainingProgress
from avatar.fine_tuning.progress import ProgressCallback, ignore_progress

INDEX_NAME = "index.json"


class ClassImageStore(Protocol):
    """Where cached class images live (a local folder, an S3 prefix)."""

    def load(self, key: str) -> list[bytes] | None:
        """The PNGs of a complete set, or None when there is none."""
        ...

    def save(self, key: str, pngs: Sequence[bytes], index: dict[str, Any]) -> None:
        """Store a set; the index is written last and marks it complete."""
        ...


class LocalClassImageStore:
    """Class images in `<folder>/<key>/`."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder

    def load(self, key: str) -> list[bytes] | None:
        """The PNGs of a complete set, or None."""
        index_path = self._folder / key / INDEX_NAME
        if not index_path.is_file():
            return None
        files = json.loads(index_path.read_text())["files"]
        return [(self._folder / key / name).read_bytes() for name in files]

    def save(self, key: str, pngs: Sequence[bytes], index: dict[str, Any]) -> None:
        """Write the set in a staging folder renamed into place: a concurrent reader (two jobs on one machine) sees a
        whole set or none."""
        folder = self._folder / key
        if folder.exists() and not (folder / INDEX_NAME).is_file():
            shutil.rmtree(folder)  # left by an interrupted writer of an earlier version

        def write(staging: Path) -> None:
            names = class_image_names(len(pngs))
            for name, png in zip(names, pngs, strict=True):
                (staging / name).write_bytes(png)
            (staging / INDEX_NAME).write_text(json.dumps(index | {"files": names}, indent=2))

        build_once(folder, marker=INDEX_NAME, build=write)


def class_image_names(count: int) -> list[str]:
    """The file names of a set of `count` class images (the same in every store)."""
    return [f"{number:04d}.png" for number in range(count)]


def class_image_key(*, base_sha256: str, prompt: str, resolution: int, count: int, steps: int, seed: int) -> str:
    """A stable name for one set: anything that changes the images changes the key."""
    fields = json.dumps([base_sha256, prompt, resolution, count, steps, seed])
    return hashlib.sha256(fields.encode()).hexdigest()[:24]


def ensure_class_images(
    pipeline: Any,
    store: ClassImageStore,
    *,
    base_sha256: str,
    prompt: str,
    resolution: int,
    count: int,
    steps: int,
    seed: int,
    batch_size: int = 8,
    progress: ProgressCallback = ignore_progress,
    started: float | None = None,
) -> tuple[list[np.ndarray], bool]:
    """The class images as RGB uint8 arrays, and whether they came from the cache; while generating, `progress` hears
    how many are done and the time left after each batch."""
    import torch

    started = time.perf_counter() if started is None else started

    key = class_image_key(
        base_sha256=base_sha256, prompt=prompt, resolution=resolution, count=count, steps=steps, seed=seed
    )
    cached = store.load(key)
    if cached is not None and len(cached) >= count:
        return [np.asarray(Image.open(io.BytesIO(png)).convert("RGB")) for png in cached[:count]], True
    images: list[np.ndarray] = []
    generator = torch.Generator(device="cpu").manual_seed(seed)
    generating = time.perf_counter()
    while len(images) < count:
        batch = min(batch_size, count - len(images))
        with torch.inference_mode():
            output = pipeline(
                [prompt] * batch,
                height=resolution,
                width=resolution,
                num_inference_steps=steps,
                generator=generator,
                output_type="np",
            )
        images.extend((np.asarray(frame) * 255).round().clip(0, 255).astype(np.uint8) for frame in output.images)
        per_image = (time.perf_counter() - generating) / len(images)
        progress(
            TrainingProgress(
                phase="class_images",
                step=len(images),
                total_steps=count,
                images_per_second=1 / per_image if per_image else None,
                eta_seconds=per_image * (count - len(images)),
                elapsed_seconds=time.perf_counter() - started,
            )
        )
    pngs = []
    for image in images:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        pngs.append(buffer.getvalue())
    store.save(key, pngs, {"prompt": prompt, "resolution": resolution, "base_sha256": base_sha256, "steps": steps})
    return images, False

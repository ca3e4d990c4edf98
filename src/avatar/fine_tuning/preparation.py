"""Training images from photos: largest face -> square crop with margin -> pad -> resize, optional new backgrounds."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from avatar.contracts.training import RejectedPhoto
from avatar.errors import PhotoRefused
from avatar.fine_tuning.backgrounds import generate_background
from avatar.fine_tuning.segmentation import GrabCutSegmenter, PersonSegmenter
from avatar.photo_check.checker import default_face_detector
from avatar.photo_check.decoding import decode_upright, open_photo
from avatar.photo_check.faces import FaceDetector
from avatar.photo_check.verdict import FaceBox

MANIFEST_NAME = "manifest.json"


class PrepareOptions(BaseModel):
    """How photos become training images."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    resolution: int = Field(512, ge=64, le=1024, description="side of the square training images")
    face_fraction: float = Field(
        0.4, gt=0.1, le=0.9, description="face width as a fraction of the crop: 0.4 keeps hair, neck and shoulders"
    )
    face_center_height: float = Field(0.42, ge=0.2, le=0.6, description="where the face centre sits, from the top")
    backgrounds_per_photo: int = Field(0, ge=0, le=8, description="extra copies with generated backgrounds")
    seed: int = 0
    max_pixels: int = 64_000_000
    working_side: int = 2048


@dataclass(frozen=True)
class PreparedImage:
    """One square training image and where it came from."""

    name: str
    source: str
    pixels: np.ndarray
    face: FaceBox
    crop: FaceBox
    background: str | None = None
    person_mask: np.ndarray | None = field(default=None, repr=False)


@dataclass(frozen=True)
class PreparedSet:
    """The training images of one set of photos, plus the photos that gave none."""

    options: PrepareOptions
    images: tuple[PreparedImage, ...]
    rejected: tuple[RejectedPhoto, ...]

    @property
    def photo_count(self) -> int:
        """How many photos gave a training image (background variations not counted)."""
        return len({image.source for image in self.images})

    def manifest(self) -> dict[str, Any]:
        """What was made from what, reproducibly."""
        return {
            "options": self.options.model_dump(),
            "images": [
                {
                    "file": f"{image.name}.png",
                    "source": image.source,
                    "face": image.face.model_dump(),
                    "crop": image.crop.model_dump(),
                    "background": image.background,
                }
                for image in self.images
            ],
            "rejected": [photo.model_dump() for photo in self.rejected],
        }

    def write(self, folder: Path) -> Path:
        """Write PNGs and `manifest.json` into `folder`; returns the manifest path."""
        folder.mkdir(parents=True, exist_ok=True)
        for image in self.images:
            # PNG, no metadata: deterministic bytes for a given seed.
            cv2.imwrite(str(folder / f"{image.name}.png"), cv2.cvtColor(image.pixels, cv2.COLOR_RGB2BGR))
        path = folder / MANIFEST_NAME
        path.write_text(json.dumps(self.manifest(), indent=2) + "\n")
        return path


def square_crop_box(
    face: FaceBox, image_width: int, image_height: int, *, face_fraction: float, face_center_height: float
) -> FaceBox:
    """The square around a face: face `face_fraction` of its width, face centre at `face_center_height`.

    The square shrinks (down to 1.25x the face) and slides to stay inside the photo, since padding invents pixels;
    only a face too close to the edge for that is padded.
    """
    wanted = round(max(face.w, face.h) / face_fraction)
    side = max(min(wanted, image_width, image_height), round(1.25 * max(face.w, face.h)))
    center_x = face.x + face.w / 2
    center_y = face.y + face.h / 2
    x = round(center_x - side / 2)
    y = round(center_y - face_center_height * side)
    # Slide inside the photo, but never so far that the face leaves the square.
    x = min(max(x, 0), image_width - side) if side <= image_width else x
    y = min(max(y, 0), image_height - side) if side <= image_height else y
    x = min(max(x, face.x + face.w - side), face.x)
    y = min(max(y, face.y + face.h - side), face.y)
    return FaceBox(x=x, y=y, w=side, h=side)


def crop_padded(pixels: np.ndarray, box: FaceBox) -> np.ndarray:
    """Cut `box` out of `pixels`, replicating the edge where the box leaves the photo (no mirrored faces)."""
    height, width = pixels.shape[:2]
    top, left = max(0, -box.y), max(0, -box.x)
    bottom, right = max(0, box.y + box.h - height), max(0, box.x + box.w - width)
    inside = pixels[max(0, box.y) : min(height, box.y + box.h), max(0, box.x) : min(width, box.x + box.w)]
    if top or left or bottom or right:
        inside = cv2.copyMakeBorder(inside, top, bottom, left, right, cv2.BORDER_REPLICATE)
    return inside


def prepare_photos(
    photos: Sequence[tuple[str, bytes]],
    options: PrepareOptions | None = None,
    *,
    detector: FaceDetector | None = None,
    segmenter: PersonSegmenter | None = None,
) -> PreparedSet:
    """Prepare training images from `(source name, bytes)` pairs; deterministic for `options.seed`."""
    options = options or PrepareOptions()
    detector = detector or default_face_detector()
    if options.backgrounds_per_photo and segmenter is None:
        segmenter = GrabCutSegmenter()
    images: list[PreparedImage] = []
    rejected: list[RejectedPhoto] = []
    for index, (source, data) in enumerate(photos):
        try:
            image, _ = open_photo(data, max_pixels=options.max_pixels, min_side=64)
            pixels, _ = decode_upright(image, max_side=options.working_side)
        except PhotoRefused as refused:
            rejected.append(RejectedPhoto(source=source, reason="unreadable", detail=str(refused)))
            continue
        faces = detector.detect(cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY))
        if not faces:
            rejected.append(RejectedPhoto(source=source, reason="no_face", detail="no face found"))
            continue
        face = faces[0]
        box = square_crop_box(
            face,
            pixels.shape[1],
            pixels.shape[0],
            face_fraction=options.face_fraction,
            face_center_height=options.face_center_height,
        )
        side = options.resolution
        crop = cv2.resize(crop_padded(pixels, box), (side, side), interpolation=cv2.INTER_AREA)
        scale = side / box.w
        face_in_crop = FaceBox(
            x=round((face.x - box.x) * scale),
            y=round((face.y - box.y) * scale),
            w=round(face.w * scale),
            h=round(face.h * scale),
        )
        name = f"{index:03d}-{hashlib.sha256(data).hexdigest()[:10]}"
        images.append(PreparedImage(name=name, source=source, pixels=crop, face=face_in_crop, crop=box))
        if not options.backgrounds_per_photo:
            continue
        assert segmenter is not None
        rng = np.random.default_rng([options.seed, index])
        mask = segmenter.segment(crop, face_in_crop, seed=options.seed + index)
        for variation in range(options.backgrounds_per_photo):
            kind, background = generate_background(side, rng)
            alpha = mask[..., None]
            composite = (crop * alpha + background * (1 - alpha)).round().astype(np.uint8)
            images.append(
                PreparedImage(
                    name=f"{name}-bg{variation}",
                    source=source,
                    pixels=composite,
                    face=face_in_crop,
                    crop=box,
                    background=kind,
                    person_mask=mask,
                )
            )
    return PreparedSet(options=options, images=tuple(images), rejected=tuple(rejected))

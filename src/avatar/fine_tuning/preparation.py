"""Training images from photos: largest face -> landmarks -> aligned square crop (eyes level, at the same place in
every crop) -> optional new backgrounds; each photo's face descriptor, for the identity stored with the model."""

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
from avatar.identity.alignment import AlignedCrop, aligned_crop
from avatar.identity.likeness import Identity, IdentityPolicy, person_of_set
from avatar.identity.models import FaceModels
from avatar.photo_check.checker import default_face_models
from avatar.photo_check.decoding import decode_upright, open_photo
from avatar.photo_check.verdict import FaceBox

MANIFEST_NAME = "manifest.json"


class PrepareOptions(BaseModel):
    """How photos become training images."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    resolution: int = Field(512, ge=64, le=1024, description="side of the square training images")
    eye_distance: float = Field(
        0.17,
        gt=0.04,
        le=0.4,
        description="distance between the eye centres as a fraction of the crop: 0.17 keeps hair, neck and shoulders",
    )
    eye_height: float = Field(0.4, ge=0.15, le=0.6, description="where the eyes sit, from the top, as a fraction")
    max_eye_distance: float = Field(
        0.3,
        gt=0.04,
        le=0.5,
        description="how far a crop may zoom in (eye distance as a fraction) to stay inside a tight photo",
    )
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
    rotation: float = 0.0
    background: str | None = None
    person_mask: np.ndarray | None = field(default=None, repr=False)
    descriptor: np.ndarray | None = field(default=None, repr=False)


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

    def identity(self) -> Identity | None:
        """The person the training images show: the descriptors of the photos used (None without any)."""
        descriptors = [image.descriptor for image in self.images if image.descriptor is not None]
        return Identity.of(descriptors) if descriptors else None

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
                    "rotation": image.rotation,
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


def prepare_photos(
    photos: Sequence[tuple[str, bytes]],
    options: PrepareOptions | None = None,
    *,
    face_models: FaceModels | None = None,
    segmenter: PersonSegmenter | None = None,
    identity: IdentityPolicy | None = None,
) -> PreparedSet:
    """Prepare training images from `(source name, bytes)` pairs; deterministic for `options.seed`.

    Photos whose face is not the person most of the photos show are left out (`different_person`), as the photo
    check refuses them on upload."""
    options = options or PrepareOptions()
    face_models = face_models or default_face_models()
    if options.backgrounds_per_photo and segmenter is None:
        segmenter = GrabCutSegmenter()
    found: dict[int, tuple[str, bytes, AlignedCrop, np.ndarray]] = {}
    rejected: list[RejectedPhoto] = []
    for index, (source, data) in enumerate(photos):
        try:
            image, _ = open_photo(data, max_pixels=options.max_pixels, min_side=64)
            pixels, _ = decode_upright(image, data, max_side=options.working_side)
        except PhotoRefused as refused:
            rejected.append(RejectedPhoto(source=source, reason="unreadable", detail=str(refused)))
            continue
        faces = face_models.detector.detect(pixels)
        if not faces:
            rejected.append(RejectedPhoto(source=source, reason="no_face", detail="no face found"))
            continue
        landmarks = face_models.landmarks.landmarks(pixels, faces[0])
        descriptor = face_models.describer.describe(pixels, landmarks)
        cut = aligned_crop(
            pixels,
            landmarks,
            side=options.resolution,
            eye_distance=options.eye_distance,
            eye_height=options.eye_height,
            max_eye_distance=options.max_eye_distance,
        )
        found[index] = (source, data, cut, descriptor)
    person = person_of_set({str(index): found[index][3] for index in found}, identity)
    images: list[PreparedImage] = []
    for index, (source, data, cut, descriptor) in found.items():
        if person is not None and str(index) not in person:
            detail = "the face is not the person most of the photos show"
            rejected.append(RejectedPhoto(source=source, reason="different_person", detail=detail))
            continue
        name = f"{index:03d}-{hashlib.sha256(data).hexdigest()[:10]}"
        crop, face_in_crop = cut.pixels, cut.face
        common: dict[str, Any] = {"source": source, "face": face_in_crop, "crop": cut.source_square}
        common["rotation"] = cut.rotation
        images.append(PreparedImage(name=name, pixels=crop, descriptor=descriptor, **common))
        if not options.backgrounds_per_photo:
            continue
        assert segmenter is not None
        rng = np.random.default_rng([options.seed, index])
        mask = segmenter.segment(crop, face_in_crop, seed=options.seed + index)
        for variation in range(options.backgrounds_per_photo):
            kind, background = generate_background(options.resolution, rng)
            alpha = mask[..., None]
            composite = (crop * alpha + background * (1 - alpha)).round().astype(np.uint8)
            images.append(
                PreparedImage(
                    name=f"{name}-bg{variation}", pixels=composite, background=kind, person_mask=mask, **common
                )
            )
    return PreparedSet(options=options, images=tuple(images), rejected=tuple(rejected))

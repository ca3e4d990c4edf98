"""Likeness of generated images to the person a model was trained on, and where it comes from on the serving side."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Sequence
from dataclasses import replace
from functools import cache
from pathlib import Path

import numpy as np

from avatar.contracts.generation import GeneratedImage
from avatar.identity.likeness import Identity
from avatar.identity.models import FaceModels, describe_largest_face

logger = logging.getLogger(__name__)


def score_images(
    images: Sequence[GeneratedImage], identity: Identity | None, models: FaceModels | None, threshold: float = 0.6
) -> list[GeneratedImage]:
    """Each image with whether a face was found and its likeness to `identity`; unchanged (not scored) without an
    identity or face models."""
    if identity is None or models is None:
        return list(images)
    from PIL import Image

    scored = []
    for image in images:
        rgb = np.asarray(Image.open(io.BytesIO(image.png)).convert("RGB"))
        descriptor = describe_largest_face(rgb, models)
        if descriptor is None:
            scored.append(replace(image, face_found=False, likeness=None))
        else:
            scored.append(replace(image, face_found=True, likeness=identity.likeness(descriptor, threshold)))
    return scored


def read_identity(path: Path | None) -> Identity | None:
    """The identity stored with a model, or None when it has none or it cannot be read (then nothing is scored)."""
    if path is None:
        return None
    try:
        return Identity.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError) as exc:
        logger.warning("identity %s unreadable, images are not scored: %s", path, exc)
        return None


@cache
def serving_face_models() -> FaceModels | None:
    """The face models on the serving side, or None where they cannot load (then nothing is scored)."""
    try:
        from avatar.identity.dlib_models import dlib_face_models

        return dlib_face_models()
    except (ImportError, OSError, RuntimeError) as exc:
        logger.warning("face models unavailable, generated images are not scored: %s", exc)
        return None

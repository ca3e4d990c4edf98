"""The photo check: cheapest test first, every refusal a stable reason, every input a verdict."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

from avatar.errors import PhotoRefused
from avatar.identity.descriptors import encode_descriptor
from avatar.identity.models import FaceModels
from avatar.identity.pose import head_turn
from avatar.photo_check import measures
from avatar.photo_check.decoding import decode_upright, encode_normalized, open_photo
from avatar.photo_check.policy import CheckPolicy, check_size
from avatar.photo_check.verdict import PhotoVerdict, Reason


@dataclass(frozen=True)
class CheckedPhoto:
    """A verdict, and for an accepted photo the upright pixels kept for training."""

    verdict: PhotoVerdict
    pixels: np.ndarray | None = None

    def normalized_jpeg(self) -> bytes:
        """The normalized copy of an accepted photo (upright sRGB JPEG, no metadata)."""
        if self.pixels is None:
            raise ValueError("only an accepted photo has a normalized copy")
        return encode_normalized(self.pixels)


@cache
def default_face_models() -> FaceModels:
    """The offline default face models (dlib's, shipped in a package), built once per process."""
    from avatar.identity.dlib_models import dlib_face_models

    return dlib_face_models()


def check_photo(
    data: bytes,
    *,
    policy: CheckPolicy | None = None,
    face_models: FaceModels | None = None,
    accepted_fingerprints: Mapping[str, str] | None = None,
) -> CheckedPhoto:
    """Check one photo. `accepted_fingerprints` maps the user's other accepted photos to their fingerprints.

    Whether the face is the person the user's other photos show is a judgement on the set, made by the caller from
    the accepted photo's descriptor (`avatar.identity.likeness.person_of_set`)."""
    policy = policy or CheckPolicy()
    face_models = face_models or default_face_models()
    size_reason = check_size(len(data), policy)
    if size_reason is not None:
        return CheckedPhoto(PhotoVerdict(accepted=False, reasons=(size_reason,)))
    try:
        image, header = open_photo(
            data,
            max_pixels=policy.max_pixels,
            min_side=policy.min_side,
            max_whole_decode_pixels=policy.max_whole_decode_pixels,
        )
        pixels, scale = decode_upright(image, data, max_side=policy.working_side)
    except PhotoRefused as refused:
        return CheckedPhoto(PhotoVerdict(accepted=False, reasons=(refused.reason,)))

    gray = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)
    upright_landscape = pixels.shape[1] >= pixels.shape[0]
    width, height = (header.width, header.height)
    if upright_landscape != (width >= height):  # EXIF orientation swapped the sides
        width, height = height, width
    seen = PhotoVerdict(accepted=False, format=header.format, width=width, height=height)

    faces = face_models.detector.detect(pixels)
    if not faces:
        # Say why no face was found when the whole photo is badly exposed.
        why_not = (Reason.NO_FACE, *_exposure_reasons(measures.brightness(gray), policy))
        return CheckedPhoto(seen.model_copy(update={"reasons": why_not}))

    face = faces[0]
    face_gray = measures.face_crop(gray, face)
    seen = seen.model_copy(
        update={
            "face": face.scaled(1 / scale),
            "sharpness": round(measures.sharpness(face_gray), 1),
            "brightness": round(measures.brightness(face_gray), 1),
        }
    )
    assert seen.face is not None
    assert seen.sharpness is not None
    assert seen.brightness is not None
    reasons: list[Reason] = []
    if len(faces) > 1 and faces[1].w >= policy.second_face_ratio * face.w:
        reasons.append(Reason.MULTIPLE_FACES)
    if seen.face.w < policy.min_face_side:
        reasons.append(Reason.FACE_TOO_SMALL)
    elif seen.sharpness < policy.min_sharpness:
        # A face under the size limit is always soft once resized: only judge sharpness of big-enough faces.
        reasons.append(Reason.BLURRY)
    reasons.extend(_exposure_reasons(seen.brightness, policy))
    if reasons:
        return CheckedPhoto(seen.model_copy(update={"reasons": tuple(reasons)}))

    own_fingerprint = measures.fingerprint(gray)
    seen = seen.model_copy(update={"fingerprint": own_fingerprint})
    for photo_id, other in (accepted_fingerprints or {}).items():
        if measures.fingerprint_distance(own_fingerprint, other) <= policy.max_duplicate_distance:
            return CheckedPhoto(seen.model_copy(update={"reasons": (Reason.DUPLICATE,), "duplicate_of": photo_id}))
    landmarks = face_models.landmarks.landmarks(pixels, face)
    identity = {
        "descriptor": encode_descriptor(face_models.describer.describe(pixels, landmarks)),
        "yaw": head_turn(landmarks),
    }
    return CheckedPhoto(seen.model_copy(update={"accepted": True, **identity}), pixels=pixels)


def _exposure_reasons(mean_luminance: float, policy: CheckPolicy) -> tuple[Reason, ...]:
    if mean_luminance < policy.min_brightness:
        return (Reason.TOO_DARK,)
    if mean_luminance > policy.max_brightness:
        return (Reason.TOO_BRIGHT,)
    return ()

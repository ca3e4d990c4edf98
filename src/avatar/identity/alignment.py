"""Aligned face crops: eyes level, and the eyes at the same place and distance in every crop."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from avatar.identity.models import FaceLandmarks
from avatar.photo_check.verdict import FaceBox


@dataclass(frozen=True)
class AlignedCrop:
    """A square crop, the face box inside it and how it was cut (rotation in degrees, the square in the source)."""

    pixels: np.ndarray
    face: FaceBox
    source_square: FaceBox
    rotation: float


def _fits(rgb: np.ndarray, middle: np.ndarray, angle: float, source_side: float, eye_height: float) -> bool:
    """Whether the square of `source_side` source pixels, turned by `angle`, lies inside the photo."""
    turn = math.radians(angle)
    across = np.array([math.cos(turn), math.sin(turn)])  # along the eyes
    down = np.array([-math.sin(turn), math.cos(turn)])
    top_middle = middle - down * eye_height * source_side
    corners = [top_middle + across * u * source_side / 2 + down * v * source_side for u in (-1, 1) for v in (0, 1)]
    height, width = rgb.shape[:2]
    return all(-0.5 <= x <= width - 0.5 and -0.5 <= y <= height - 0.5 for x, y in corners)


def aligned_crop(
    rgb: np.ndarray,
    landmarks: FaceLandmarks,
    *,
    side: int,
    eye_distance: float,
    eye_height: float,
    max_eye_distance: float | None = None,
) -> AlignedCrop:
    """Rotate and scale `rgb` so the eye centres are level, centred horizontally, `eye_height` x side from the top
    and `eye_distance` x side apart.

    Where that square would leave the photo, the crop zooms in (the eyes up to `max_eye_distance` x side apart) to
    stay inside it rather than invent pixels; only beyond that is the edge replicated (never mirrored)."""
    right, left = landmarks.right_eye_center, landmarks.left_eye_center  # image-left, image-right eye
    dx, dy = (left - right).tolist()
    angle = math.degrees(math.atan2(dy, dx))
    eyes_apart = max(math.hypot(dx, dy), 1e-6)
    middle = (left + right) / 2
    if max_eye_distance is not None and not _fits(rgb, middle, angle, eyes_apart / eye_distance, eye_height):
        low, high = eye_distance, max(eye_distance, max_eye_distance)  # search the loosest framing that fits
        for _ in range(20):
            mid = (low + high) / 2
            low, high = (low, mid) if _fits(rgb, middle, angle, eyes_apart / mid, eye_height) else (mid, high)
        eye_distance = high
    scale = eye_distance * side / eyes_apart
    matrix = cv2.getRotationMatrix2D((float(middle[0]), float(middle[1])), angle, scale)
    matrix[0, 2] += side / 2 - middle[0]
    matrix[1, 2] += eye_height * side - middle[1]
    # Shrink with area averaging first (warpAffine only interpolates, which aliases when it shrinks), then rotate.
    shrink = min(1.0, scale)
    source = rgb if shrink == 1.0 else cv2.resize(rgb, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
    warp = np.asarray(matrix, dtype=np.float64).copy()
    warp[:, :2] = warp[:, :2] / shrink
    pixels = cv2.warpAffine(source, warp, (side, side), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    face = landmarks.face
    corners = np.array(
        [[face.x, face.y], [face.x + face.w, face.y], [face.x, face.y + face.h], [face.x + face.w, face.y + face.h]],
        dtype=np.float64,
    )
    moved = corners @ matrix[:, :2].T + matrix[:, 2]
    x0, y0 = moved.min(axis=0)
    x1, y1 = moved.max(axis=0)
    face_in_crop = FaceBox(x=round(x0), y=round(y0), w=round(x1 - x0), h=round(y1 - y0)).clipped(side, side)
    source_side = side / scale
    centre = cv2.invertAffineTransform(matrix) @ np.array([side / 2, side / 2, 1.0])
    square = FaceBox(
        x=round(centre[0] - source_side / 2), y=round(centre[1] - source_side / 2), w=round(source_side),
        h=round(source_side),
    )  # fmt: skip
    return AlignedCrop(pixels=pixels, face=face_in_crop, source_square=square, rotation=round(angle, 2))

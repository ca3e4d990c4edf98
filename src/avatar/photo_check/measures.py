"""Image measures on the face crop: sharpness, exposure, and a perceptual fingerprint for near duplicates."""

from __future__ import annotations

import cv2
import numpy as np

from avatar.photo_check.verdict import FaceBox

# Sharpness is only comparable between photos at one fixed crop size (on a whole 12 MP photo sharp faces score low).
SHARPNESS_SIDE = 192
# Contrast is normalised first, so a dark or washed-out face is not mistaken for a blurry one.
SHARPNESS_CONTRAST = 40.0
FINGERPRINT_SIDE = 16


def face_crop(gray: np.ndarray, face: FaceBox) -> np.ndarray:
    """The face region, clipped to the image."""
    height, width = gray.shape[:2]
    x0, y0 = max(0, face.x), max(0, face.y)
    x1, y1 = min(width, face.x + face.w), min(height, face.y + face.h)
    return gray[y0:y1, x0:x1]


def sharpness(face_gray: np.ndarray) -> float:
    """Variance of the Laplacian of the face at a fixed size and contrast: low means blurry."""
    shrinking = face_gray.shape[1] >= SHARPNESS_SIDE
    resized = cv2.resize(
        face_gray.astype(np.float32),
        (SHARPNESS_SIDE, SHARPNESS_SIDE),
        interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR,
    )
    normalized = (resized - resized.mean()) / (resized.std() + 1e-6) * SHARPNESS_CONTRAST
    return float(cv2.Laplacian(normalized, cv2.CV_32F).var())


def brightness(face_gray: np.ndarray) -> float:
    """Mean luminance of the face, 0-255."""
    return float(face_gray.mean())


def fingerprint(gray: np.ndarray) -> str:
    """256-bit difference hash of the whole photo, as hex.

    Written here rather than taken from `imagehash`, which pulls SciPy and PyWavelets into a Lambda near its size cap.
    """
    small = cv2.resize(gray, (FINGERPRINT_SIDE + 1, FINGERPRINT_SIDE), interpolation=cv2.INTER_AREA)
    bits = (small[:, 1:] > small[:, :-1]).flatten()
    return f"{int(''.join('1' if bit else '0' for bit in bits), 2):064x}"


def fingerprint_distance(a: str, b: str) -> int:
    """Number of differing bits between two fingerprints."""
    return (int(a, 16) ^ int(b, 16)).bit_count()

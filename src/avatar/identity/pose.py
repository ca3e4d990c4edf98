"""Head turn (yaw) estimated from five landmarks."""

from __future__ import annotations

import math

import numpy as np

from avatar.identity.models import FaceLandmarks

# The bottom of the nose sits about a third of the eye distance in front of the eyes: seen turned by `yaw`, it moves
# sideways by 0.33 * tan(yaw) eye distances from the eyes' midpoint.
NOSE_DEPTH = 0.33


def head_turn(landmarks: FaceLandmarks) -> float:
    """Estimated yaw in degrees: positive when the person turned to their left, negative to their right.

    Assumes an unmirrored photo (the person's left eye on the image's right), as phone cameras save them by
    default; a mirrored selfie swaps left and right."""
    right, left = landmarks.right_eye_center, landmarks.left_eye_center
    axis = left - right
    eye_distance = float(np.linalg.norm(axis))
    if eye_distance == 0:
        return 0.0
    offset = float(np.dot(np.asarray(landmarks.nose) - (left + right) / 2, axis / eye_distance)) / eye_distance
    return round(math.degrees(math.atan(offset / NOSE_DEPTH)), 1)

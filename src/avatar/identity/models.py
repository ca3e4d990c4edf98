"""The three face models the project needs, each behind a small protocol so a better one can be dropped in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from avatar.photo_check.verdict import FaceBox


@dataclass(frozen=True)
class FaceLandmarks:
    """Five points of a face in image pixels: the two corners of each eye, then the bottom of the nose.

    `person_right_eye` is the eye on the left of an unmirrored photo (the person's right)."""

    face: FaceBox
    person_right_eye: tuple[tuple[float, float], tuple[float, float]]
    person_left_eye: tuple[tuple[float, float], tuple[float, float]]
    nose: tuple[float, float]

    @property
    def right_eye_center(self) -> np.ndarray:
        """Centre of the person's right eye."""
        centre: np.ndarray = np.asarray(self.person_right_eye, dtype=np.float64).mean(axis=0)
        return centre

    @property
    def left_eye_center(self) -> np.ndarray:
        """Centre of the person's left eye."""
        centre: np.ndarray = np.asarray(self.person_left_eye, dtype=np.float64).mean(axis=0)
        return centre

    def points(self) -> list[tuple[float, float]]:
        """All five points, in the order the models use."""
        return [*self.person_left_eye, *self.person_right_eye, self.nose]


class FaceDetector(Protocol):
    """Finds human faces in an upright RGB image; boxes in that image's pixels, largest first."""

    def detect(self, rgb: np.ndarray) -> list[FaceBox]:
        """Return the faces found, largest first."""
        ...


class LandmarkModel(Protocol):
    """Places the five landmarks of a face found by a detector."""

    def landmarks(self, rgb: np.ndarray, face: FaceBox) -> FaceLandmarks:
        """The landmarks of `face` in `rgb`."""
        ...


class FaceDescriber(Protocol):
    """Turns a face into a descriptor: an embedding in which distance means a different person."""

    def describe(self, rgb: np.ndarray, landmarks: FaceLandmarks) -> np.ndarray:
        """The descriptor (1-D float32) of the face at `landmarks`."""
        ...


@dataclass(frozen=True)
class FaceModels:
    """The detector, landmark model and describer used together."""

    detector: FaceDetector
    landmarks: LandmarkModel
    describer: FaceDescriber


def describe_largest_face(rgb: np.ndarray, models: FaceModels) -> np.ndarray | None:
    """The descriptor of the largest face in `rgb`, or None when no face is found."""
    faces = models.detector.detect(rgb)
    if not faces:
        return None
    return models.describer.describe(rgb, models.landmarks.landmarks(rgb, faces[0]))

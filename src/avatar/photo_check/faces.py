"""Finding faces. The detector sits behind a Protocol so a better model can replace the Haar cascade."""

from __future__ import annotations

from typing import Protocol

import cv2
import numpy as np

from avatar.photo_check.verdict import FaceBox


class FaceDetector(Protocol):
    """Finds faces in an upright greyscale image; boxes in that image's pixels, largest first."""

    def detect(self, gray: np.ndarray) -> list[FaceBox]:
        """Return the faces found, largest first."""
        ...


class HaarCascadeFaceDetector:
    """OpenCV's frontal-face Haar cascade: offline, shipped in opencv-python-headless < 5, ~40 ms per photo."""

    def __init__(
        self,
        *,
        detect_side: int = 1024,
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        cascade: str = "haarcascade_frontalface_default.xml",
    ) -> None:
        self._detect_side = detect_side
        self._scale_factor = scale_factor
        self._min_neighbors = min_neighbors
        self._classifier = cv2.CascadeClassifier(cv2.data.haarcascades + cascade)  # type: ignore[attr-defined]
        if self._classifier.empty():
            raise RuntimeError(f"OpenCV cascade {cascade} could not be loaded")

    def detect(self, gray: np.ndarray) -> list[FaceBox]:
        """Detect on a downscaled, histogram-equalised copy so lighting does not decide whether a face exists."""
        height, width = gray.shape[:2]
        factor = min(1.0, self._detect_side / max(width, height))
        small = gray if factor == 1.0 else cv2.resize(gray, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        equalized = cv2.equalizeHist(small)
        found = self._classifier.detectMultiScale(
            equalized, scaleFactor=self._scale_factor, minNeighbors=self._min_neighbors, minSize=(24, 24)
        )
        boxes = [FaceBox(x=int(x), y=int(y), w=int(w), h=int(h)).scaled(1 / factor) for (x, y, w, h) in found]
        return sorted(boxes, key=lambda box: box.area, reverse=True)

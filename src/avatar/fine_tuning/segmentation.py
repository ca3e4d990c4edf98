"""Separating the person from the background, behind a Protocol so a learned matting model can replace GrabCut."""

from __future__ import annotations

from typing import Protocol

import cv2
import numpy as np

from avatar.photo_check.verdict import FaceBox


class PersonSegmenter(Protocol):
    """Returns a float32 mask in [0, 1] (1 = person) the size of `rgb`, given the face found in it."""

    def segment(self, rgb: np.ndarray, face: FaceBox, *, seed: int) -> np.ndarray:
        """The person mask."""
        ...


class GrabCutSegmenter:
    """OpenCV GrabCut seeded by the face box: offline, ~0.2 s per 512 px crop on one core."""

    def __init__(self, *, work_side: int = 256, iterations: int = 4, feather: float = 2.0) -> None:
        self._work_side = work_side
        self._iterations = iterations
        self._feather = feather

    def segment(self, rgb: np.ndarray, face: FaceBox, *, seed: int) -> np.ndarray:
        """Face box is sure foreground, head-and-shoulders region probable foreground, the border sure background."""
        height, width = rgb.shape[:2]
        scale = self._work_side / max(height, width)
        small = cv2.resize(rgb, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
        box = face.scaled(scale)
        mask = np.full(small.shape[:2], cv2.GC_PR_BGD, dtype=np.uint8)
        # The body sits below the face and is wider than it.
        x0, x1 = max(0, box.x - box.w), min(small.shape[1], box.x + 2 * box.w)
        y0 = max(0, box.y - box.h // 2)
        mask[y0:, x0:x1] = cv2.GC_PR_FGD
        inner = max(1, box.w // 6)
        mask[box.y + inner : box.y + box.h - inner, box.x + inner : box.x + box.w - inner] = cv2.GC_FGD
        border = max(2, small.shape[0] // 40)
        mask[:border, :] = cv2.GC_BGD
        mask[:, :border] = cv2.GC_BGD
        mask[:, -border:] = cv2.GC_BGD
        cv2.setRNGSeed(seed)  # GrabCut's GMM initialisation draws from OpenCV's RNG
        background_model = np.zeros((1, 65), np.float64)
        foreground_model = np.zeros((1, 65), np.float64)
        bgr = cv2.cvtColor(small, cv2.COLOR_RGB2BGR)
        no_rect = (0, 0, 0, 0)  # ignored with GC_INIT_WITH_MASK
        cv2.grabCut(bgr, mask, no_rect, background_model, foreground_model, self._iterations, cv2.GC_INIT_WITH_MASK)
        small_person = np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.float32)
        person = np.asarray(cv2.resize(small_person, (width, height), interpolation=cv2.INTER_LINEAR))
        if self._feather > 0:
            person = np.asarray(cv2.GaussianBlur(person, (0, 0), self._feather / scale))
        return np.clip(person, 0.0, 1.0).astype(np.float32)

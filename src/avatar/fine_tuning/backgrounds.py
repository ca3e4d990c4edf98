"""Backgrounds generated in code (no downloaded assets): solid colours, gradients and soft blotches."""

from __future__ import annotations

import cv2
import numpy as np

BACKGROUND_KINDS = ("solid", "gradient", "blotches")


def _colour(rng: np.random.Generator) -> np.ndarray:
    """A random, moderately saturated colour (pure black or white backgrounds teach the model nothing useful)."""
    hsv = np.array([[[rng.integers(0, 180), rng.integers(40, 200), rng.integers(70, 230)]]], dtype=np.uint8)
    rgb: np.ndarray = np.asarray(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB), dtype=np.float32)
    return np.array(rgb[0, 0], dtype=np.float32)


def generate_background(side: int, rng: np.random.Generator) -> tuple[str, np.ndarray]:
    """A side x side RGB uint8 background and its kind, drawn from `rng`."""
    kind = BACKGROUND_KINDS[int(rng.integers(0, len(BACKGROUND_KINDS)))]
    if kind == "solid":
        image = np.broadcast_to(_colour(rng), (side, side, 3)).copy()
    elif kind == "gradient":
        start, end = _colour(rng), _colour(rng)
        angle = rng.uniform(0, np.pi)
        ys, xs = np.mgrid[0:side, 0:side].astype(np.float32) / max(side - 1, 1)
        t = xs * np.cos(angle) + ys * np.sin(angle)
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
        image = start * (1 - t[..., None]) + end * t[..., None]
    else:
        # Low-frequency noise upscaled: out-of-focus interiors and foliage, roughly.
        coarse = rng.uniform(0, 1, size=(6, 6, 3)).astype(np.float32)
        field = cv2.resize(coarse, (side, side), interpolation=cv2.INTER_CUBIC)
        base, accent = _colour(rng), _colour(rng)
        image = base * (1 - field) + accent * field
    return kind, np.clip(image, 0, 255).astype(np.uint8)

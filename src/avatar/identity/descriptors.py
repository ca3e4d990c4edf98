"""Face descriptors as stored text: base64 of little-endian float32 (128 values -> 684 characters)."""

from __future__ import annotations

import base64

import numpy as np


def encode_descriptor(descriptor: np.ndarray) -> str:
    """A descriptor as compact text for records and JSON."""
    return base64.b64encode(np.asarray(descriptor, dtype="<f4").tobytes()).decode("ascii")


def decode_descriptor(text: str) -> np.ndarray:
    """What `encode_descriptor` wrote (raises ValueError for text that is not one)."""
    raw = base64.b64decode(text.encode("ascii"), validate=True)
    if not raw or len(raw) % 4:
        raise ValueError("not a float32 descriptor")
    return np.frombuffer(raw, dtype="<f4").copy()

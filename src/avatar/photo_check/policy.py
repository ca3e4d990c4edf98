"""Thresholds of the photo check, and the one check that needs no image library (the object size)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from avatar.photo_check.verdict import Reason


class CheckPolicy(BaseModel):
    """Thresholds of the photo check; the defaults were tuned on the shared selfies and harder cases built from them."""

    model_config = ConfigDict(frozen=True)

    max_bytes: int = 15 * 1024 * 1024
    # Refused from the header, before a pixel is decoded. A JPEG (decoded at 1/2-1/8 scale) may have up to 64 MP:
    # 48 MP phone photos pass. PNG, WebP and HEIC are decoded whole (about 10 bytes a pixel at the peak, and a 48 MP
    # HEIC takes 3 s on one core), so they may have 25 MP: the 24 MP HEICs of recent iPhones pass.
    max_pixels: int = 64_000_000
    max_whole_decode_pixels: int = 25_000_000
    min_side: int = 512
    # Photos are decoded (and kept for training) at most this size on the long side.
    working_side: int = 2048
    min_face_side: int = 128
    # A second face at least this fraction of the largest face's side makes the photo a group photo.
    second_face_ratio: float = 0.5
    # Sharp selfies measure 66-301 (33 for a 141 px face), the same photos blurred with sigma 1.5 measure 11-22.
    min_sharpness: float = 25.0
    min_brightness: float = 50.0
    max_brightness: float = 215.0
    # Distinct selfies of one person differ by 41+ of 256 bits; re-encoded or resized copies by a handful.
    max_duplicate_distance: int = 20


def check_size(size: int, policy: CheckPolicy) -> Reason | None:
    """The first and cheapest check, from the object size alone."""
    if size <= 0:
        return Reason.NOT_AN_IMAGE
    if size > policy.max_bytes:
        return Reason.FILE_TOO_LARGE
    return None

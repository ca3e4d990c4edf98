"""Screening generated images: a classifier's unsafe score per image, and the policy's threshold. Withheld images
are dropped where they are made (the serving side), so they are never stored, returned or logged."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from avatar.contracts.generation import GeneratedImage

logger = logging.getLogger(__name__)

# An image at or over this open_nsfw score is withheld. open_nsfw's authors call scores under 0.2 safe and over 0.8
# NSFW; avatars of one person are portraits, so the product withholds from the middle of the uncertain band:
# 0.5 keeps false alarms rare (the shared selfies score 0.002-0.05) while anything the model leans NSFW on goes.
DEFAULT_THRESHOLD = 0.5
WITHHELD_REASON = "unsafe_content"


class SafetyClassifier(Protocol):
    """Scores images for unsafe content: 0 (safe) to 1 (unsafe)."""

    def unsafe_scores(self, pngs: Sequence[bytes]) -> list[float]:
        """One score per PNG, in order."""
        ...


@dataclass(frozen=True)
class SafetyPolicy:
    """Which images are withheld: those scoring at or over `threshold` (0 withholds everything, above 1 nothing)."""

    threshold: float = DEFAULT_THRESHOLD


@dataclass(frozen=True)
class Screened:
    """The images that may leave, and how many were withheld."""

    kept: list[GeneratedImage]
    withheld: int


def screen_images(images: Sequence[GeneratedImage], classifier: SafetyClassifier, policy: SafetyPolicy) -> Screened:
    """Keep the images under the policy's threshold (in their order)."""
    if not images:
        return Screened([], 0)
    scores = classifier.unsafe_scores([image.png for image in images])
    kept = [image for image, score in zip(images, scores, strict=True) if score < policy.threshold]
    if len(kept) < len(images):
        logger.info("withheld %d of %d generated images as unsafe", len(images) - len(kept), len(images))
    return Screened(kept, len(images) - len(kept))

"""How a set of photos covers front, left and right, from each photo's head turn (yaw), and what to add."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

SIDE_DEGREES = 15.0


class Facing(StrEnum):
    """Which way a face is turned, in the person's own terms (as if the photo were not mirrored)."""

    FRONT = "front"
    LEFT = "left"
    RIGHT = "right"


def facing(yaw: float, side_degrees: float = SIDE_DEGREES) -> Facing:
    """Front within `side_degrees` either way, else left or right."""
    if yaw >= side_degrees:
        return Facing.LEFT
    if yaw <= -side_degrees:
        return Facing.RIGHT
    return Facing.FRONT


class Coverage(BaseModel):
    """How a set of accepted photos covers the three directions, and what to add (advice, never a refusal)."""

    model_config = ConfigDict(frozen=True)

    front: int
    left: int
    right: int
    advice: tuple[str, ...]


ADVICE = {
    Facing.FRONT: "Add a photo looking straight at the camera.",
    Facing.LEFT: "Add a photo with your head turned to your left.",
    Facing.RIGHT: "Add a photo with your head turned to your right.",
}


def coverage(yaws: Iterable[float], side_degrees: float = SIDE_DEGREES) -> Coverage:
    """Count the photos facing each way; advise adding each direction no photo covers (once any photo exists)."""
    counts = dict.fromkeys(Facing, 0)
    for yaw in yaws:
        counts[facing(yaw, side_degrees)] += 1
    advice = tuple(ADVICE[way] for way in Facing if counts[way] == 0) if any(counts.values()) else ()
    return Coverage(front=counts[Facing.FRONT], left=counts[Facing.LEFT], right=counts[Facing.RIGHT], advice=advice)

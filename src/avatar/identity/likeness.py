"""Likeness: how alike two faces are, the person a set of photos shows, and the identity a model is trained on.

Descriptors are compared by Euclidean (L2) distance; `threshold` (0.6, dlib's customary value) separates the same
person from another. Likeness maps distance to 0..1, higher meaning more alike, with the threshold at 0.5:
`likeness = clip(1 - distance / (2 * threshold), 0, 1)`. On the eleven shared selfies each photo is 0.23-0.34 from
the set's centre (likeness 0.72-0.81); other people's faces are 0.70 or more (0.42 or less).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

DESCRIPTOR_MODEL = "dlib_face_recognition_resnet_model_v1"


class IdentityPolicy(BaseModel):
    """When two faces are the same person, and when a set of photos has a person at all."""

    model_config = ConfigDict(frozen=True)

    threshold: float = Field(0.6, gt=0, le=2, description="L2 distance at which faces stop being the same person")
    min_agreeing: int = Field(
        3, ge=2, description="photos that must agree (and outnumber any other group) before a set has a person"
    )


def face_distance(a: np.ndarray, b: np.ndarray) -> float:
    """L2 distance between two descriptors."""
    return float(np.linalg.norm(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)))


def likeness(distance: float, threshold: float = 0.6) -> float:
    """0..1, higher is more alike; 0.5 at the threshold."""
    return round(float(np.clip(1.0 - distance / (2.0 * threshold), 0.0, 1.0)), 3)


def _group_around(ids: Sequence[str], descriptors: Mapping[str, np.ndarray], threshold: float) -> list[str]:
    """The largest group of photos within `threshold` of one photo of `ids` (ties: the tighter group)."""

    def neighbours(i: str) -> list[str]:
        return [j for j in ids if face_distance(descriptors[i], descriptors[j]) <= threshold]

    def spread(group: list[str], i: str) -> float:
        return sum(face_distance(descriptors[i], descriptors[j]) for j in group)

    return max((neighbours(i) for i in ids), key=lambda g: (len(g), -spread(g, g[0])))


def person_of_set(descriptors: Mapping[str, np.ndarray], policy: IdentityPolicy | None = None) -> frozenset[str] | None:
    """The photos showing the person most photos of the set show, or None while the set has no such person: fewer
    than `min_agreeing` photos agree, or another group of agreeing photos is as large.

    The group is the largest set of photos within the threshold of one of them; its members are then every photo
    within the threshold of the group's centre (a steadier reference than any single photo)."""
    policy = policy or IdentityPolicy()
    ids = sorted(descriptors)
    if len(ids) < policy.min_agreeing:
        return None
    group = _group_around(ids, descriptors, policy.threshold)
    rest = [i for i in ids if i not in group]
    runner_up = len(_group_around(rest, descriptors, policy.threshold)) if rest else 0
    if len(group) < policy.min_agreeing or runner_up >= len(group):
        return None
    centre = np.mean([descriptors[i] for i in group], axis=0)
    return frozenset(i for i in ids if face_distance(descriptors[i], centre) <= policy.threshold)


@dataclass(frozen=True)
class Identity:
    """The person a model was trained on: the descriptors of the photos it used and their centre. Stored with the
    model version, so likeness never needs the raw photos."""

    descriptors: np.ndarray  # (n, 128) float32

    @classmethod
    def of(cls, descriptors: Iterable[np.ndarray]) -> Identity:
        """The identity of these descriptors (at least one)."""
        stacked = np.stack([np.asarray(d, dtype=np.float32) for d in descriptors])
        return cls(descriptors=stacked)

    @property
    def centre(self) -> np.ndarray:
        """The mean descriptor."""
        return np.asarray(self.descriptors.mean(axis=0), dtype=np.float32)

    def distance(self, descriptor: np.ndarray) -> float:
        """Distance of a face from the person's centre."""
        return face_distance(descriptor, self.centre)

    def likeness(self, descriptor: np.ndarray, threshold: float = 0.6) -> float:
        """Likeness (0..1) of a face to the person."""
        return likeness(self.distance(descriptor), threshold)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form (stored as identity.json with the model version)."""
        return {
            "descriptor_model": DESCRIPTOR_MODEL,
            "centre": [round(float(v), 6) for v in self.centre],
            "descriptors": [[round(float(v), 6) for v in row] for row in self.descriptors],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Identity:
        """Read what `to_json` wrote (raises ValueError for another descriptor model or an empty identity)."""
        if data.get("descriptor_model") != DESCRIPTOR_MODEL:
            raise ValueError(f"identity made with {data.get('descriptor_model')!r}, not {DESCRIPTOR_MODEL}")
        rows = data.get("descriptors") or []
        if not rows:
            raise ValueError("an identity needs at least one descriptor")
        return cls.of(np.asarray(row, dtype=np.float32) for row in rows)

"""Fixtures shared by all test levels: the real selfies and the hard cases built from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from avatar_dev.hard_cases import HardCase, build_hard_cases
from avatar_dev.paths import shared_faces_dir

FACES = shared_faces_dir()


@pytest.fixture(scope="session")
def selfies() -> list[Path]:
    """The eleven real selfies in ../shared/faces."""
    found = sorted(FACES.glob("*.jpg"))
    assert len(found) == 11, f"expected the eleven shared selfies in {FACES}"
    return found


@pytest.fixture(scope="session")
def hard_cases(selfies: list[Path]) -> dict[str, HardCase]:
    """Harder photos built from the selfies, by name."""
    return {case.name: case for case in build_hard_cases(selfies)}

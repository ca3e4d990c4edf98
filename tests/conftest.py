"""Fixtures shared by all test levels: the real selfies, the hard cases built from them, and one model cache.

`make test` runs test files on several workers (pytest-xdist): what a session builds once (the tiny base model, class
images, Triton's folder, the hard cases, users' models) is built once per run and shared by every worker.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from avatar_dev.hard_cases import HardCase, build_hard_cases
from avatar_dev.paths import shared_faces_dir
from tests.helpers import built_once, run_folder

FACES = shared_faces_dir()


@pytest.fixture(scope="session")
def selfies() -> list[Path]:
    """The eleven real selfies in ../shared/faces."""
    found = sorted(FACES.glob("*.jpg"))
    assert len(found) == 11, f"expected the eleven shared selfies in {FACES}"
    return found


@pytest.fixture(scope="session")
def hard_cases(selfies: list[Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, HardCase]:
    """Harder photos built from the selfies, by name."""
    cases = built_once(tmp_path_factory, "hard-cases", lambda _: build_hard_cases(selfies))
    return {case.name: case for case in cases}


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One model cache for the run: the tiny base, class images and Triton's folder are built once (each of them
    atomically, so workers building at once are fine)."""
    return run_folder(tmp_path_factory, "avatar-cache")

"""Bounded fuzzing in every test run (derandomized, so every machine runs the same cases); `avatar fuzz` runs more."""

from __future__ import annotations

from pathlib import Path

from avatar_dev.fuzz import call_handler, fuzz_bodies, fuzz_photos, seed_photos
from avatar_dev.local.stack import IntakeStack

CASES = 300


def test_mutated_photos_all_get_a_verdict(selfies: list[Path]) -> None:
    report = fuzz_photos(seed_photos(selfies[0]), CASES, derandomize=True)
    assert report.cases == CASES
    assert report.escapes == []


def test_malformed_bodies_all_get_an_answer_in_the_error_shape(intake_stack: IntakeStack) -> None:
    report = fuzz_bodies(call_handler, CASES, derandomize=True)
    assert report.cases == CASES
    assert report.escapes == []

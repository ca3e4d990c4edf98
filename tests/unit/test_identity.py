"""The identity instrument on real photos: dlib's models, likeness, the person of a set, head turn and coverage."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from avatar.contracts.generation import GeneratedImage, GenerationRequest, most_alike
from avatar.identity.coverage import Facing, coverage, facing
from avatar.identity.descriptors import decode_descriptor, encode_descriptor
from avatar.identity.likeness import Identity, IdentityPolicy, face_distance, likeness, person_of_set
from avatar.identity.pose import head_turn
from avatar.identity.scoring import score_images
from avatar.photo_check.checker import default_face_models
from avatar_dev.hard_cases import cat_photo, other_people


def _rgb(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _describe(rgb: np.ndarray) -> np.ndarray:
    models = default_face_models()
    faces = models.detector.detect(rgb)
    assert faces, "no face found"
    return models.describer.describe(rgb, models.landmarks.landmarks(rgb, faces[0]))


@pytest.fixture(scope="module")
def selfie_descriptors(selfies: list[Path]) -> dict[str, np.ndarray]:
    return {path.name: _describe(_rgb(path.read_bytes())) for path in selfies}


@pytest.fixture(scope="module")
def stranger_descriptors() -> dict[str, np.ndarray]:
    return {name: _describe(_rgb(data)) for name, data in other_people().items()}


def test_the_detector_finds_people_not_cats(selfies: list[Path]) -> None:
    detector = default_face_models().detector

    assert all(len(detector.detect(_rgb(p.read_bytes()))) == 1 for p in selfies)
    assert detector.detect(_rgb(cat_photo())) == []


def test_likeness_separates_the_person_from_other_people_leaving_each_selfie_out(
    selfie_descriptors: dict[str, np.ndarray], stranger_descriptors: dict[str, np.ndarray]
) -> None:
    same = []
    for name, descriptor in selfie_descriptors.items():
        rest = Identity.of(d for other, d in selfie_descriptors.items() if other != name)
        same.append(rest.likeness(descriptor))
    everyone = Identity.of(selfie_descriptors.values())
    others = [everyone.likeness(d) for d in stranger_descriptors.values()]

    assert min(same) > 0.5 > max(others), (same, others)
    assert min(same) - max(others) > 0.15  # measured here: 0.69 against 0.38


def test_likeness_runs_from_0_to_1_with_the_threshold_at_one_half() -> None:
    assert likeness(0.0) == 1.0 and likeness(0.6) == 0.5 and likeness(5.0) == 0.0
    assert likeness(0.3, threshold=0.5) == 0.7


def test_the_person_of_a_set_is_the_largest_agreeing_group_once_it_has_three(
    selfie_descriptors: dict[str, np.ndarray], stranger_descriptors: dict[str, np.ndarray]
) -> None:
    selfies = list(selfie_descriptors.values())
    astronaut, cameraman = stranger_descriptors.values()
    policy = IdentityPolicy()

    assert person_of_set({"a": selfies[0], "b": selfies[1], "x": astronaut}, policy) is None  # 2 agree: too few
    assert person_of_set({"a": selfies[0], "b": selfies[1], "c": selfies[2], "x": astronaut}) == {"a", "b", "c"}
    with_ties = {"a": selfies[0], "b": selfies[1], "c": selfies[2], "x": astronaut, "y": astronaut + 0.01}
    assert person_of_set(with_ties) == {"a", "b", "c"}
    assert person_of_set({**with_ties, "z": astronaut - 0.01}) is None  # three against three: nobody yet
    assert person_of_set({"x": astronaut, "y": cameraman, "a": selfies[0]}) is None


def test_an_identity_and_a_descriptor_survive_their_stored_forms(selfie_descriptors: dict[str, np.ndarray]) -> None:
    descriptor = next(iter(selfie_descriptors.values()))
    assert np.array_equal(decode_descriptor(encode_descriptor(descriptor)), descriptor)
    identity = Identity.of(selfie_descriptors.values())
    again = Identity.from_json(identity.to_json())
    assert face_distance(again.centre, identity.centre) < 1e-5
    with pytest.raises(ValueError, match="something-else"):
        Identity.from_json({"descriptor_model": "something-else", "descriptors": [[0.0]]})


def test_head_turn_changes_sign_in_a_mirror_and_coverage_advises_what_is_missing(selfies: list[Path]) -> None:
    models = default_face_models()
    turns = {}
    for path in selfies:
        rgb = _rgb(path.read_bytes())
        for mirrored, pixels in ((False, rgb), (True, np.ascontiguousarray(rgb[:, ::-1]))):
            turns[path.name, mirrored] = head_turn(
                models.landmarks.landmarks(pixels, models.detector.detect(pixels)[0])
            )
    for path in selfies:
        # A mirror turns the head the other way by about as much (landmarks are not pixel-exact).
        assert abs(turns[path.name, False] + turns[path.name, True]) < 8, path.name
    most_turned = max(selfies, key=lambda p: abs(turns[p.name, False]))
    assert abs(turns[most_turned.name, False]) >= 15  # the set has at least one photo turned to a side

    assert facing(0.0) is Facing.FRONT and facing(30.0) is Facing.LEFT and facing(-30.0) is Facing.RIGHT
    fronts_only = coverage([0.0, 3.0, -5.0])
    assert (fronts_only.front, fronts_only.left, fronts_only.right) == (3, 0, 0)
    assert fronts_only.advice == (
        "Add a photo with your head turned to your left.",
        "Add a photo with your head turned to your right.",
    )
    assert coverage([0.0, 25.0, -25.0]).advice == ()
    assert coverage([]).advice == ()


def _png(data: bytes) -> bytes:
    buffer = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def test_generated_images_are_scored_against_the_identity_and_best_of_keeps_the_most_alike(
    selfies: list[Path], selfie_descriptors: dict[str, np.ndarray]
) -> None:
    identity = Identity.of(d for name, d in selfie_descriptors.items() if name != selfies[-1].name)
    wall = io.BytesIO()
    Image.new("RGB", (256, 256), (90, 120, 150)).save(wall, format="PNG")
    candidates = [
        GeneratedImage(png=wall.getvalue(), seed=10),
        GeneratedImage(png=_png(other_people()["astronaut.jpg"]), seed=11),
        GeneratedImage(png=_png(selfies[-1].read_bytes()), seed=12),
    ]

    scored = score_images(candidates, identity, default_face_models())

    assert [(image.seed, image.face_found) for image in scored] == [(10, False), (11, True), (12, True)]
    assert scored[0].likeness is None and scored[1].likeness < 0.5 < scored[2].likeness  # type: ignore[operator]
    assert [image.seed for image in most_alike(scored, 2)] == [12, 11]
    # Without an identity nothing is scored, and the first images are kept in seed order.
    unscored = score_images(candidates, None, default_face_models())
    assert all(image.face_found is None for image in unscored)
    assert [image.seed for image in most_alike(unscored, 2)] == [10, 11]
    # Through the Triton output's encoding and back.
    for image in scored:
        assert GeneratedImage(png=b"", seed=image.seed).with_likeness_value(image.likeness_value) == replace(
            image, png=b""
        )


def test_best_of_generates_more_candidates_and_they_count_in_the_cost() -> None:
    request = GenerationRequest(prompt="<<TOK>>", num_images=2, best_of=4, steps=10, width=512, height=512)
    assert request.candidates == 4 and request.as_candidates().num_images == 4
    assert request.step_megapixels() == pytest.approx(10 * 0.262144 * 4)
    assert GenerationRequest(prompt="x", num_images=2).candidates == 2
    with pytest.raises(ValueError, match="best_of must be at least num_images"):
        GenerationRequest(prompt="x", num_images=3, best_of=2)

"""Face preparation on the real selfies: crops, sizes, determinism, background variations."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from avatar.fine_tuning.preparation import MANIFEST_NAME, PrepareOptions, prepare_photos
from avatar.photo_check.checker import default_face_models
from avatar_dev.hard_cases import other_people


@pytest.fixture(scope="module")
def photos(selfies: list[Path]) -> list[tuple[str, bytes]]:
    return [(path.name, path.read_bytes()) for path in selfies]


@pytest.fixture(scope="module")
def with_backgrounds(photos: list[tuple[str, bytes]]):
    return prepare_photos(photos[:4], PrepareOptions(resolution=256, backgrounds_per_photo=2, seed=7))


def test_every_selfie_gives_an_exact_size_crop_that_contains_the_face(photos):
    prepared = prepare_photos(photos, PrepareOptions(resolution=512))

    assert prepared.photo_count == len(photos)
    assert not prepared.rejected
    detector = default_face_models().detector
    for image in prepared.images:
        assert image.pixels.shape == (512, 512, 3)
        assert image.pixels.dtype == np.uint8
        found = detector.detect(image.pixels)
        assert found, f"no face in the crop of {image.source}"
        face = found[0]
        # The detector finds the face again where preparation says it put it.
        center = (face.x + face.w / 2, face.y + face.h / 2)
        expected = (image.face.x + image.face.w / 2, image.face.y + image.face.h / 2)
        assert abs(center[0] - expected[0]) < 0.15 * image.face.w
        assert abs(center[1] - expected[1]) < 0.15 * image.face.h
        assert 0.25 < face.w / 512 < 0.75  # head and shoulders, not a tight face box or a distant figure


def test_preparation_is_deterministic_for_a_seed(photos):
    options = PrepareOptions(resolution=128, backgrounds_per_photo=1, seed=3)
    first = prepare_photos(photos[:2], options)
    again = prepare_photos(photos[:2], options)
    other_seed = prepare_photos(photos[:2], options.model_copy(update={"seed": 4}))

    assert [i.name for i in first.images] == [i.name for i in again.images]
    for a, b in zip(first.images, again.images, strict=True):
        assert np.array_equal(a.pixels, b.pixels)
    backgrounds = [i for i in first.images if i.background]
    other = [i for i in other_seed.images if i.background]
    assert any(not np.array_equal(a.pixels, b.pixels) for a, b in zip(backgrounds, other, strict=True))


def test_background_variations_change_only_the_background(with_backgrounds):
    plain = {i.source: i for i in with_backgrounds.images if i.background is None}
    variations = [i for i in with_backgrounds.images if i.background is not None]

    assert len(variations) == 2 * len(plain)
    for image in variations:
        mask = image.person_mask
        assert mask is not None
        original = plain[image.source].pixels.astype(int)
        person, background = mask >= 0.999, mask <= 0.001
        assert person.mean() > 0.15 and background.mean() > 0.15
        assert np.abs(image.pixels.astype(int) - original)[person].max() <= 1
        changed = np.abs(image.pixels.astype(int) - original).sum(axis=2)[background] > 20
        assert changed.mean() > 0.5


def test_the_segmented_person_covers_the_face_and_not_the_top_corners(with_backgrounds):
    for image in with_backgrounds.images:
        if image.person_mask is None:
            continue
        face = image.face
        inner = image.person_mask[
            face.y + face.h // 4 : face.y + 3 * face.h // 4, face.x + face.w // 4 : face.x + 3 * face.w // 4
        ]
        assert inner.mean() > 0.95
        assert image.person_mask[:20, :20].mean() < 0.05
        assert image.person_mask[:20, -20:].mean() < 0.05


def test_photos_without_a_face_or_unreadable_are_listed_with_a_reason(tmp_path):
    buffer = io.BytesIO()
    Image.new("RGB", (640, 640), (120, 160, 200)).save(buffer, format="JPEG")
    prepared = prepare_photos([("wall.jpg", buffer.getvalue()), ("junk.jpg", b"\xff\xd8 not really a jpeg")])

    assert not prepared.images
    assert {(p.source, p.reason) for p in prepared.rejected} == {("wall.jpg", "no_face"), ("junk.jpg", "unreadable")}


def test_the_manifest_lists_every_image_and_file(photos, tmp_path):
    prepared = prepare_photos(photos[:3], PrepareOptions(resolution=64, backgrounds_per_photo=1))
    manifest_path = prepared.write(tmp_path)

    import json

    manifest = json.loads(manifest_path.read_text())
    assert manifest_path.name == MANIFEST_NAME
    assert len(manifest["images"]) == 6
    for entry in manifest["images"]:
        assert Image.open(tmp_path / entry["file"]).size == (64, 64)
    assert manifest["options"]["resolution"] == 64


def _rotated_jpeg(path: Path, degrees: float) -> bytes:
    selfie = Image.open(path).convert("RGB")
    # Turned about the centre on a larger canvas, as a tilted camera would see it (no black corners near the face).
    canvas = cv2.copyMakeBorder(np.asarray(selfie), 128, 128, 128, 128, cv2.BORDER_REFLECT)
    centre = (canvas.shape[1] / 2, canvas.shape[0] / 2)
    turned = cv2.warpAffine(canvas, cv2.getRotationMatrix2D(centre, degrees, 1.0), canvas.shape[1::-1])
    buffer = io.BytesIO()
    Image.fromarray(turned).save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


@pytest.mark.parametrize("degrees", [-18, 0, 12])
def test_aligned_crops_have_level_eyes_at_the_same_place_however_the_camera_was_tilted(selfies, degrees):
    options = PrepareOptions(resolution=256)
    prepared = prepare_photos([(p.name, _rotated_jpeg(p, degrees)) for p in selfies[:4]], options)

    assert prepared.photo_count == 4
    models = default_face_models()
    for image in prepared.images:
        landmarks = models.landmarks.landmarks(image.pixels, models.detector.detect(image.pixels)[0])
        right, left = landmarks.right_eye_center, landmarks.left_eye_center
        tilt = np.degrees(np.arctan2(left[1] - right[1], left[0] - right[0]))
        assert abs(tilt) < 3, (image.source, tilt)
        middle = (left + right) / 2 / 256
        assert abs(middle[0] - 0.5) < 0.03 and abs(middle[1] - options.eye_height) < 0.03, middle
        # The eye distance asked for, or closer where the photo is too tight to frame that without inventing pixels.
        assert options.eye_distance - 0.02 < np.linalg.norm(left - right) / 256 < options.max_eye_distance + 0.02
        assert abs(image.rotation + degrees) < 4  # the crop undid the camera's tilt


def test_a_photo_of_someone_else_is_left_out_and_the_identity_is_the_persons(photos):
    stranger = other_people()["astronaut.jpg"]
    prepared = prepare_photos([*photos[:5], ("astronaut.jpg", stranger)], PrepareOptions(resolution=64))

    assert [(p.source, p.reason) for p in prepared.rejected] == [("astronaut.jpg", "different_person")]
    identity = prepared.identity()
    assert identity is not None and identity.descriptors.shape == (5, 128)
    models = default_face_models()
    for name, data in photos[5:]:
        rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        descriptor = models.describer.describe(rgb, models.landmarks.landmarks(rgb, models.detector.detect(rgb)[0]))
        assert identity.likeness(descriptor) > 0.6, name

"""The photo check on real selfies and on the harder cases built from them."""

from __future__ import annotations

import io
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from avatar.photo_check.checker import check_photo
from avatar.photo_check.policy import CheckPolicy
from avatar.photo_check.verdict import REASON_MESSAGES, Reason
from avatar_dev.bench.intake import bomb_refusal
from avatar_dev.hard_cases import HardCase, heic, near_duplicate, other_people, png_bomb

HARD_CASE_NAMES = [
    "phone-12mp-rotated.jpg", "iphone.heic", "selfie.webp", "alpha.png", "gray16.png", "cmyk.jpg", "empty.jpg",
    "notes.jpg", "truncated.jpg", "animation.gif", "bomb-40000x40000.png", "tiny.jpg", "nobody.jpg", "cat.jpg",
    "two-people.jpg", "far-away.jpg", "blurred.jpg", "dark.jpg", "overexposed.jpg",
]  # fmt: skip


def test_every_shared_selfie_is_accepted_with_its_face_inside_the_photo(selfies: list[Path]) -> None:
    for path in selfies:
        verdict = check_photo(path.read_bytes()).verdict
        assert verdict.accepted, (path.name, verdict.reasons)
        assert verdict.face is not None
        assert verdict.face.x >= 0 and verdict.face.x + verdict.face.w <= 512
        assert verdict.face.y >= 0 and verdict.face.y + verdict.face.h <= 512
        assert verdict.face.w >= 200  # the selfies are close-ups


@pytest.mark.parametrize("name", HARD_CASE_NAMES)
def test_hard_case_gets_exactly_its_expected_verdict(hard_cases: dict[str, HardCase], name: str) -> None:
    case = hard_cases[name]
    verdict = check_photo(case.data).verdict
    assert verdict.reasons == case.expected, case.about
    assert verdict.accepted == (case.expected == ())


def test_every_reason_code_has_a_message_and_a_hard_case_or_a_dedicated_test(
    hard_cases: dict[str, HardCase],
) -> None:
    covered = {reason for case in hard_cases.values() for reason in case.expected}
    dedicated = {Reason.DUPLICATE, Reason.FILE_TOO_LARGE, Reason.DIFFERENT_PERSON}  # the last: tests/unit/test_intake
    assert covered | dedicated == set(Reason)
    assert set(REASON_MESSAGES) == set(Reason)


def test_rotated_phone_photo_is_judged_upright_and_normalized_without_metadata(
    hard_cases: dict[str, HardCase],
) -> None:
    checked = check_photo(hard_cases["phone-12mp-rotated.jpg"].data)
    assert (checked.verdict.width, checked.verdict.height) == (3024, 4032)  # portrait once EXIF is applied
    normalized = Image.open(io.BytesIO(checked.normalized_jpeg()))
    assert normalized.height > normalized.width
    assert max(normalized.size) <= CheckPolicy().working_side
    assert not normalized.getexif()  # no orientation, no GPS, nothing
    assert "icc_profile" not in normalized.info


def test_refused_photo_has_no_normalized_copy(hard_cases: dict[str, HardCase]) -> None:
    checked = check_photo(hard_cases["blurred.jpg"].data)
    with pytest.raises(ValueError, match="accepted"):
        checked.normalized_jpeg()


def test_decompression_bomb_is_refused_from_its_header_without_decoding() -> None:
    # Peak RSS of a fresh process (Pillow allocates in C, which tracemalloc cannot see).
    refusal = bomb_refusal()
    assert refusal["reasons"] == ["too_many_pixels"]
    assert refusal["extra_peak_rss_mb"] < 50  # 1.6 G pixels decoded would need gigabytes
    assert check_photo(png_bomb()).verdict.reasons == (Reason.TOO_MANY_PIXELS,)


def test_oversized_file_is_refused_before_anything_is_read() -> None:
    verdict = check_photo(b"\xff\xd8\xff" + b"\0" * 100, policy=CheckPolicy(max_bytes=50)).verdict
    assert verdict.reasons == (Reason.FILE_TOO_LARGE,)


def test_near_duplicate_of_an_accepted_photo_is_refused_and_names_it(selfies: list[Path]) -> None:
    original = check_photo(selfies[2].read_bytes()).verdict
    assert original.fingerprint is not None
    verdict = check_photo(near_duplicate(selfies[2]), accepted_fingerprints={"first": original.fingerprint}).verdict
    assert verdict.reasons == (Reason.DUPLICATE,)
    assert verdict.duplicate_of == "first"


def test_distinct_selfies_of_the_same_person_are_not_duplicates(selfies: list[Path]) -> None:
    fingerprints = {p.name: check_photo(p.read_bytes()).verdict.fingerprint or "" for p in selfies}
    for selfie in selfies:  # each against every other one: no pair is taken for a duplicate
        others = {name: fingerprint for name, fingerprint in fingerprints.items() if name != selfie.name}
        verdict = check_photo(selfie.read_bytes(), accepted_fingerprints=others).verdict
        assert verdict.accepted, (selfie.name, verdict.duplicate_of)


@pytest.mark.parametrize("source", ["selfie.webp", "iphone.heic", "alpha.png", "cmyk.jpg"])
def test_damaged_files_always_get_a_verdict_never_an_exception(hard_cases: dict[str, HardCase], source: str) -> None:
    data = hard_cases[source].data
    rng = random.Random(source)
    damaged = [data[:cut] for cut in range(0, len(data), max(1, len(data) // 25))]
    for _ in range(25):
        corrupt = bytearray(data)
        for _ in range(20):
            corrupt[rng.randrange(len(corrupt))] = rng.randrange(256)
        damaged.append(bytes(corrupt))
    for sample in damaged:
        verdict = check_photo(sample).verdict
        assert verdict.accepted or verdict.reasons


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_a_large_photo_reduced_before_the_checks_keeps_its_exif_orientation(fmt: str) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways, shown upright
    buffer = io.BytesIO()
    Image.new("RGB", (6000, 3000), (120, 110, 100)).save(buffer, format=fmt, exif=exif.tobytes())

    verdict = check_photo(buffer.getvalue()).verdict

    assert (verdict.width, verdict.height) == (3000, 6000)  # judged upright, as the phone shows it


def test_a_heic_with_more_data_than_a_camera_writes_is_refused_before_decoding(monkeypatch) -> None:
    from avatar.photo_check import decoding

    rng = np.random.default_rng(5)
    noise = Image.fromarray(rng.integers(0, 256, (600, 800, 3), dtype=np.uint8), mode="RGB")
    data = heic(noise, quality=95)
    assert len(data) * 8 / (800 * 600) > decoding.MAX_HEIC_BITS_PER_PIXEL
    assert check_photo(data).verdict.reasons != (Reason.FILE_TOO_LARGE,)  # under the floor for small files
    monkeypatch.setattr(decoding, "HEIC_BYTES_FLOOR", 0)

    assert check_photo(data).verdict.reasons == (Reason.FILE_TOO_LARGE,)


def test_an_accepted_photo_carries_its_face_descriptor_and_head_turn(selfies: list[Path]) -> None:
    from avatar.identity.descriptors import decode_descriptor

    verdict = check_photo(selfies[0].read_bytes()).verdict

    assert verdict.descriptor is not None and decode_descriptor(verdict.descriptor).shape == (128,)
    assert verdict.yaw is not None and -90 < verdict.yaw < 90


def test_another_persons_photo_passes_the_single_photo_checks() -> None:
    # Whether it is the user's face is a judgement on the set (different_person), not on the photo alone.
    verdict = check_photo(other_people()["astronaut.jpg"]).verdict

    assert verdict.accepted, verdict.reasons

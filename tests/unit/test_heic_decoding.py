"""HEIC decoding through libheif's planes (avatar.photo_check.libheif), against libheif's own RGB conversion."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from avatar.errors import PhotoRefused
from avatar.photo_check.checker import check_photo
from avatar.photo_check.decoding import _to_srgb
from avatar.photo_check.libheif import decode_heic, libheif_available
from avatar.photo_check.verdict import Reason
from avatar_dev.hard_cases import heic


def _libheif_rgb(data: bytes, size: tuple[int, int]) -> np.ndarray:
    """What pillow-heif decodes (libheif converting to RGB at full size), reduced to `size`."""
    image = _to_srgb(ImageOps.exif_transpose(Image.open(io.BytesIO(data))))
    return np.asarray(image.resize(size, Image.Resampling.BOX))


def _ours(data: bytes, max_side: int) -> np.ndarray:
    decoded = decode_heic(data, max_side=max_side)
    image = Image.fromarray(decoded.rgb, mode="RGB")
    if decoded.icc_profile:
        image.info["icc_profile"] = decoded.icc_profile
    return np.asarray(_to_srgb(image))


@pytest.fixture(scope="module")
def selfie(selfies: list[Path]) -> Image.Image:
    return ImageOps.exif_transpose(Image.open(selfies[0])).convert("RGB")


def test_libheif_is_found_beside_pillow_heif_so_heic_takes_the_fast_path() -> None:
    assert libheif_available()


@pytest.mark.parametrize(
    ("layout", "build"),
    [
        ("4:2:0 (phones)", lambda s: heic(s)),
        ("4:2:2", lambda s: heic(s, chroma=422)),
        ("4:4:4", lambda s: heic(s, chroma=444)),
        ("greyscale", lambda s: heic(s.convert("L"))),
        ("transparent strip", lambda s: heic(_with_transparent_strip(s))),
        ("10 bits", lambda s: _ten_bit_heic(s)),
    ],
)
def test_every_layout_decodes_to_the_colours_libheif_itself_converts_to(
    selfie: Image.Image, layout: str, build
) -> None:
    data = build(selfie)

    ours = _ours(data, max_side=2048)

    reference = _libheif_rgb(data, (ours.shape[1], ours.shape[0]))
    difference = np.abs(ours.astype(int) - reference.astype(int))
    assert ours.shape == (*selfie.size[::-1], 3), layout
    # Rounding and chroma upsampling differ a little; a wrong matrix, range or channel order is off by tens.
    assert difference.mean() < 1.0, layout
    assert np.percentile(difference, 99) <= 4, layout


def test_a_large_heic_is_reduced_to_the_size_asked_before_conversion(selfie: Image.Image) -> None:
    data = heic(selfie.resize((3000, 2250), Image.Resampling.LANCZOS))

    ours = _ours(data, max_side=1024)

    assert ours.shape == (768, 1024, 3)
    difference = np.abs(ours.astype(int) - _libheif_rgb(data, (1024, 768)).astype(int))
    assert difference.mean() < 1.5
    assert np.percentile(difference, 99) <= 6


def test_a_heic_stored_sideways_comes_back_upright() -> None:
    stored = np.zeros((300, 600, 3), np.uint8)
    stored[:, :300] = (200, 30, 30)  # red on the left as stored; orientation 6 turns it to the top
    exif = Image.Exif()
    exif[0x0112] = 6

    upright = decode_heic(heic(Image.fromarray(stored), exif=exif.tobytes()), max_side=2048).rgb

    assert upright.shape == (600, 300, 3)
    assert upright[:280].mean(axis=(0, 1))[0] > 150  # red on top
    assert upright[320:].mean() < 20


def test_damaged_heic_data_is_a_refusal_not_a_crash(selfie: Image.Image) -> None:
    data = heic(selfie)

    with pytest.raises(PhotoRefused) as refused:
        decode_heic(data[: len(data) // 2], max_side=2048)

    assert refused.value.reason is Reason.NOT_AN_IMAGE


def test_a_heic_selfie_is_judged_like_the_same_selfie_as_a_jpeg(selfies: list[Path]) -> None:
    jpeg = check_photo(selfies[0].read_bytes()).verdict
    from_heic = check_photo(heic(ImageOps.exif_transpose(Image.open(selfies[0])))).verdict

    assert from_heic.accepted and jpeg.accepted
    assert from_heic.face is not None and jpeg.face is not None
    assert abs(from_heic.face.x - jpeg.face.x) <= 8 and abs(from_heic.face.w - jpeg.face.w) <= 16


def _with_transparent_strip(selfie: Image.Image) -> Image.Image:
    rgba = np.array(selfie.convert("RGBA"))
    rgba[:, :100, 3] = 0
    rgba[:, 100:200, 3] = 128
    return Image.fromarray(rgba, mode="RGBA")


def _ten_bit_heic(selfie: Image.Image) -> bytes:
    import pillow_heif

    deep = np.asarray(selfie).astype(np.uint16) * 257
    heif = pillow_heif.from_bytes("RGB;16", selfie.size, deep.tobytes())
    buffer = io.BytesIO()
    heif.save(buffer, quality=90)
    return buffer.getvalue()


def test_an_unexpected_failure_inside_the_heic_decoder_is_still_a_verdict(selfie: Image.Image, monkeypatch) -> None:
    from avatar.photo_check import decoding

    def broken(data: bytes, *, max_side: int) -> None:
        raise ValueError("a plane of zero rows")

    monkeypatch.setattr(decoding, "decode_heic", broken)

    verdict = check_photo(heic(selfie)).verdict

    assert verdict.reasons == (Reason.NOT_AN_IMAGE,)

"""Harder photos built from real selfies: phone-sized, rotated, HEIC, blurred, dark, two people, hostile files.

Shared by the tests, the demo and the benchmarks, so each case states the verdict it must get.
"""

from __future__ import annotations

import io
import re
import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from avatar.photo_check.verdict import Reason

EXIF_ORIENTATION = 0x0112
EXIF_GPS_IFD = 0x8825


@dataclass(frozen=True)
class HardCase:
    """A file to check and the reasons it must be refused for (empty when it must be accepted)."""

    name: str
    data: bytes
    expected: tuple[Reason, ...]
    about: str


def _jpeg(image: Image.Image, quality: int = 92, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality, **options)
    return buffer.getvalue()


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    """The image saved in `fmt` with Pillow's options."""
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _scene(width: int, height: int, seed: int = 7) -> Image.Image:
    """A plausible background: a soft gradient, a few shapes and sensor noise, no face."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([90 + 60 * xs / width, 110 + 50 * ys / height, 140 - 40 * xs / width], axis=-1)
    canvas = base.astype(np.uint8)
    for _ in range(6):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        color = tuple(int(c) for c in rng.integers(40, 220, 3))
        cv2.rectangle(canvas, (x, y), (x + width // 6, y + height // 5), color, thickness=-1)
    noisy = canvas.astype(np.int16) + rng.normal(0, 4, canvas.shape).astype(np.int16)
    return Image.fromarray(noisy.clip(0, 255).astype(np.uint8), mode="RGB")


def _paste(selfie: Image.Image, canvas: Image.Image, side: int, center: tuple[float, float]) -> Image.Image:
    scene = canvas.copy()
    face = selfie.resize((side, side), Image.Resampling.LANCZOS)
    scene.paste(face, (int(center[0] * scene.width - side / 2), int(center[1] * scene.height - side / 2)))
    return scene


def phone_photo(selfie: Image.Image, *, size: tuple[int, int] = (4032, 3024), with_gps: bool = True) -> bytes:
    """A 12 MP phone JPEG stored sideways with EXIF orientation 6 (and GPS tags), as phones write them."""
    width, height = size
    upright = _paste(selfie, _scene(height, width), side=int(height * 0.5), center=(0.5, 0.45))  # portrait
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # orientation 6 turns it back upright
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    if with_gps:
        exif.get_ifd(EXIF_GPS_IFD).update({1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)})
    return _jpeg(stored, exif=exif.tobytes())


def with_scans(progressive_jpeg: bytes, scans: int, *, max_bytes: int | None = None) -> bytes:
    """The JPEG with its smallest scan repeated until it has `scans` scans (libjpeg decodes every one again), or as
    many as fit in `max_bytes`."""
    starts = [match.start() for match in re.finditer(b"\xff\xda", progressive_jpeg)]
    ends = [*starts[1:], len(progressive_jpeg) - 2]  # the last scan ends at EOI
    start, end = min(zip(starts, ends, strict=True), key=lambda span: span[1] - span[0])
    repeats = max(0, scans - len(starts))
    if max_bytes is not None:
        repeats = min(repeats, (max_bytes - len(progressive_jpeg)) // (end - start))
    return progressive_jpeg[:-2] + progressive_jpeg[start:end] * repeats + b"\xff\xd9"


def png_bomb(side: int = 40_000) -> bytes:
    """A valid 1-bit PNG of side x side pixels (1.6 G pixels) that is only a few hundred kB on disk."""
    row = b"\x00" + b"\x00" * ((side + 7) // 8)
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def heic(image: Image.Image, quality: int = 90, **options: object) -> bytes:
    """The image as an HEIC, as iPhones save photos (`options`: pillow-heif's, such as `chroma`)."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    return encode(image, "HEIF", quality=quality, **options)


def _with_alpha(selfie: Image.Image) -> Image.Image:
    rgba = selfie.convert("RGBA")
    alpha = np.full((rgba.height, rgba.width), 255, dtype=np.uint8)
    alpha[:, : rgba.width // 10] = 0  # a transparent strip, as cut-out portraits have
    rgba.putalpha(Image.fromarray(alpha, mode="L"))
    return rgba


def _sixteen_bit_gray(selfie: Image.Image) -> Image.Image:
    gray = np.asarray(selfie.convert("L"), dtype=np.uint16) * 257
    return Image.fromarray(gray)  # uint16 array -> mode "I;16", saved as a 16-bit PNG


def _scaled(selfie: Image.Image, factor: float) -> Image.Image:
    pixels = np.asarray(selfie, dtype=np.float32)
    return Image.fromarray((pixels * factor).clip(0, 255).astype(np.uint8), mode="RGB")


def _overexposed(selfie: Image.Image) -> Image.Image:
    pixels = np.asarray(selfie, dtype=np.float32)
    return Image.fromarray((255 - (255 - pixels) * 0.12).clip(0, 255).astype(np.uint8), mode="RGB")


def _blurred(selfie: Image.Image, sigma: float) -> Image.Image:
    return Image.fromarray(cv2.GaussianBlur(np.asarray(selfie), (0, 0), sigma), mode="RGB")


def build_hard_cases(selfie_paths: Sequence[Path]) -> list[HardCase]:
    """Every hard case, built from six different selfies of one person so the accepted ones are not duplicates."""
    if len(selfie_paths) < 6:
        raise ValueError("six selfies are needed")
    selfie, other, *more = (Image.open(p).convert("RGB") for p in selfie_paths[:6])
    ok: tuple[Reason, ...] = ()
    two_people = _scene(1400, 800)
    for center, face in (((0.28, 0.5), selfie), ((0.72, 0.5), other)):
        two_people = _paste(face, two_people, side=560, center=center)
    builders: list[tuple[str, Callable[[], bytes], tuple[Reason, ...], str]] = [
        (
            "phone-12mp-rotated.jpg",
            lambda: phone_photo(selfie),
            ok,
            "12 MP JPEG, EXIF orientation 6, GPS tags",
        ),
        ("iphone.heic", lambda: heic(_paste(selfie, _scene(1512, 2016), 1000, (0.5, 0.45))), ok, "HEIC"),
        ("selfie.webp", lambda: encode(other, "WEBP", quality=90), ok, "WebP"),
        ("alpha.png", lambda: encode(_with_alpha(more[0]), "PNG"), ok, "PNG with an alpha channel"),
        ("gray16.png", lambda: encode(_sixteen_bit_gray(more[1]), "PNG"), ok, "16-bit greyscale PNG"),
        ("cmyk.jpg", lambda: _jpeg(more[2].convert("CMYK")), ok, "CMYK JPEG"),
        ("empty.jpg", lambda: b"", (Reason.NOT_AN_IMAGE,), "an empty file"),
        (
            "notes.jpg",
            lambda: b"Dear diary, today I took a selfie.\n" * 20,
            (Reason.NOT_AN_IMAGE,),
            "text named .jpg",
        ),
        ("truncated.jpg", lambda: _jpeg(selfie)[:9000], (Reason.NOT_AN_IMAGE,), "a JPEG cut short"),
        ("animation.gif", lambda: encode(selfie, "GIF"), (Reason.UNSUPPORTED_FORMAT,), "a GIF"),
        (
            "phone-depth.mpo",
            lambda: encode(more[3], "MPO", save_all=True, append_images=[more[3].convert("L").convert("RGB")]),
            ok,
            "a multi-picture JPEG (MPO) with a depth picture, as phone cameras write",
        ),
        (
            "thousand-scans.jpg",
            lambda: with_scans(_jpeg(selfie, progressive=True), 1000),
            (Reason.NOT_AN_IMAGE,),
            "a progressive JPEG with 1000 scans (each decoded again)",
        ),
        (
            "lossless-30mp.webp",
            lambda: encode(Image.new("RGB", (6000, 5000), (128, 128, 128)), "WEBP", lossless=True),
            (Reason.TOO_MANY_PIXELS,),
            "a 30 MP lossless WebP of a few hundred bytes (decoded whole: 25 MP at most)",
        ),
        (
            "bomb-40000x40000.png",
            png_bomb,
            (Reason.TOO_MANY_PIXELS,),
            "a 40000x40000 PNG (decompression bomb)",
        ),
        (
            "tiny.jpg",
            lambda: _jpeg(selfie.resize((200, 200))),
            (Reason.RESOLUTION_TOO_LOW,),
            "200x200 pixels",
        ),
        ("nobody.jpg", lambda: _jpeg(_scene(1200, 900)), (Reason.NO_FACE,), "a photo of no one"),
        ("cat.jpg", cat_photo, (Reason.NO_FACE,), "a cat's face, which is not a person's"),
        ("two-people.jpg", lambda: _jpeg(two_people), (Reason.MULTIPLE_FACES,), "two people side by side"),
        (
            "far-away.jpg",
            lambda: _jpeg(_paste(selfie, _scene(2000, 1500), 160, (0.6, 0.4))),
            (Reason.FACE_TOO_SMALL,),
            "a face far from the camera",
        ),
        ("blurred.jpg", lambda: _jpeg(_blurred(selfie, 4.0)), (Reason.BLURRY,), "a blurred face"),
        ("dark.jpg", lambda: _jpeg(_scaled(selfie, 0.18)), (Reason.TOO_DARK,), "a very dark face"),
        ("overexposed.jpg", lambda: _jpeg(_overexposed(selfie)), (Reason.TOO_BRIGHT,), "a washed-out face"),
    ]
    return [HardCase(name, build(), expected, about) for name, build, expected, about in builders]


def near_duplicate(selfie_path: Path) -> bytes:
    """The same selfie re-saved larger and at lower quality, as a messaging app would: a near duplicate."""
    selfie = Image.open(selfie_path).convert("RGB")
    return _jpeg(selfie.resize((int(selfie.width * 1.25), int(selfie.height * 1.25))), quality=70)


def other_people() -> dict[str, bytes]:
    """Real photos of other people as JPEGs, from scikit-image's wheel: NASA's portrait of the astronaut Eileen
    Collins (public domain) and a cameraman (CC0, a small turned face that the photo check refuses as too small but
    the face models still describe), both enlarged 1.5 times so the detector finds them."""
    from skimage import data

    astronaut = Image.fromarray(data.astronaut()).resize((768, 768), Image.Resampling.BICUBIC)
    cameraman = Image.fromarray(data.camera()).convert("RGB").resize((768, 768), Image.Resampling.BICUBIC)
    return {"astronaut.jpg": _jpeg(astronaut), "cameraman.jpg": _jpeg(cameraman)}


def cat_photo() -> bytes:
    """Chelsea the cat (scikit-image, CC0), enlarged past the photo check's minimum size."""
    from skimage import data

    cat = Image.fromarray(data.chelsea())
    return _jpeg(cat.resize((cat.width * 2, cat.height * 2), Image.Resampling.BICUBIC))

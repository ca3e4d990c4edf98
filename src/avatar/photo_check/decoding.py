"""Reading untrusted photo bytes: format by content, pixel count from the header, then a bounded decode."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from functools import cache

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from avatar.errors import PhotoRefused
from avatar.photo_check.libheif import decode_heic, libheif_available
from avatar.photo_check.verdict import Reason

# Pillow format name -> MIME type of the formats we accept; only these decoders ever see the bytes. MPO is the JPEG
# with extra pictures (depth, a second lens) that many phone cameras write: its first picture is the photo.
SUPPORTED_FORMATS: dict[str, str] = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "HEIF": "image/heic",
}
# The Pillow openers tried, in this order (an MPO comes through the JPEG opener).
_OPENERS = ["JPEG", "PNG", "WEBP", "HEIF"]
# Formats a user might send by mistake, known by their first bytes, so the refusal can name them.
_OTHER_FORMATS: tuple[tuple[bytes, str], ...] = (
    (b"GIF8", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"BM", "BMP"),
    (b"8BPS", "PSD"),
    (b"%PDF", "PDF"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"\xff\x0a", "JPEG XL"),
    (b"\x00\x00\x00\x0cJXL ", "JPEG XL"),
)
# A JPEG's scans each pass over every block again: cameras write 1 (baseline) to about 10 (progressive) per picture,
# an MPO a few pictures and thumbnails. Thousands of scans would take minutes to decode.
MAX_JPEG_SCANS = 40
# Formats Pillow decodes at a reduced size itself (JPEG's DCT scaling); the others are decoded whole, then reduced.
_SCALED_DECODE = {"JPEG", "MPO"}
# HEVC decoding takes time with the bytes as well as the pixels (1.2-1.3 s on one core for a 25 MP HEIC of noise at
# 5.8 MB, the most this bound lets through). Phones write 1-2 bits a pixel (a 24 MP iPhone HEIC: 3-5 MB); more than 2,
# beyond a floor of 4 MB for small photos, is refused as too large for its size, which keeps a HEIC's verdict within
# 2 s.
MAX_HEIC_BITS_PER_PIXEL = 2.0
HEIC_BYTES_FLOOR = 4 * 1024 * 1024
_DRAFT_MARGIN = 0.9


@dataclass(frozen=True)
class PhotoHeader:
    """What the header says, before any pixel is decoded."""

    format: str
    width: int
    height: int


@cache
def _register_heif_opener() -> None:
    # pillow-heif adds HEIC/HEIF (iPhone photos) to Pillow; registering is global, so do it once, lazily.
    import pillow_heif

    pillow_heif.register_heif_opener()


def open_photo(
    data: bytes, *, max_pixels: int, min_side: int, max_whole_decode_pixels: int | None = None
) -> tuple[Image.Image, PhotoHeader]:
    """Identify the photo by content (only the accepted formats' openers look at it) and check its size from the
    header alone; raises PhotoRefused. JPEGs may have `max_pixels` (they are decoded reduced); formats decoded whole
    (PNG, WebP, HEIC) `max_whole_decode_pixels`, which bounds the decode's time and memory."""
    _register_heif_opener()
    if not data:
        raise PhotoRefused(Reason.NOT_AN_IMAGE, "the file is empty")
    try:
        with warnings.catch_warnings():
            # Pillow warns above its own pixel limit; ours is checked right below, before decoding.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            warnings.filterwarnings("ignore", "Image appears to be a malformed MPO file")  # it is read as a JPEG
            image = Image.open(io.BytesIO(data), formats=_OPENERS)
    except Image.DecompressionBombError as exc:
        raise PhotoRefused(Reason.TOO_MANY_PIXELS, str(exc)) from exc
    except UnidentifiedImageError as exc:
        other = next((name for magic, name in _OTHER_FORMATS if data.startswith(magic)), None)
        if other is not None:
            raise PhotoRefused(Reason.UNSUPPORTED_FORMAT, f"{other} is not accepted") from exc
        raise PhotoRefused(Reason.NOT_AN_IMAGE, "not a JPEG, PNG, WebP or HEIC image") from exc
    except Exception as exc:  # a damaged header can raise anything from the parser: it is still a verdict
        raise PhotoRefused(Reason.NOT_AN_IMAGE, f"unreadable image header ({type(exc).__name__})") from exc
    if image.format not in SUPPORTED_FORMATS:  # e.g. an AVIF, which the HEIF opener also reads
        raise PhotoRefused(Reason.UNSUPPORTED_FORMAT, f"{image.format} is not accepted")
    if image.format in _SCALED_DECODE and (scans := data.count(b"\xff\xda")) > MAX_JPEG_SCANS:
        # Start-of-scan markers cannot occur inside entropy-coded data (0xFF is stuffed there), so this counts scans.
        raise PhotoRefused(Reason.NOT_AN_IMAGE, f"a JPEG with {scans} scans (a camera writes at most a few dozen)")
    width, height = image.size
    limit = max_pixels if image.format in _SCALED_DECODE else (max_whole_decode_pixels or max_pixels)
    if width * height > limit:
        raise PhotoRefused(Reason.TOO_MANY_PIXELS, f"{width}x{height} {image.format} is over {limit} pixels")
    if min(width, height) < min_side:
        raise PhotoRefused(Reason.RESOLUTION_TOO_LOW, f"{width}x{height} is under {min_side} on the short side")
    if image.format == "HEIF" and len(data) > max(HEIC_BYTES_FLOOR, width * height * MAX_HEIC_BITS_PER_PIXEL / 8):
        bits = len(data) * 8 / (width * height)
        raise PhotoRefused(Reason.FILE_TOO_LARGE, f"a {width}x{height} HEIC at {bits:.1f} bits a pixel (phones: 1-2)")
    return image, PhotoHeader(format=image.format, width=width, height=height)


def decode_upright(image: Image.Image, data: bytes, *, max_side: int) -> tuple[np.ndarray, float]:
    """Decode `image` (opened from `data` by `open_photo`) to upright sRGB RGB pixels, at most `max_side` on the long
    side; returns (pixels, scale)."""
    width, height = image.size
    scale = min(1.0, max_side / max(width, height))
    try:
        if image.format == "HEIF" and libheif_available():
            # Reduced in YCbCr before conversion (see avatar.photo_check.libheif); libheif has made it upright.
            heic = decode_heic(data, max_side=max_side)
            upright = Image.fromarray(heic.rgb, mode="RGB")
            if heic.icc_profile:
                upright.info["icc_profile"] = heic.icc_profile
        else:
            if image.format in _SCALED_DECODE and scale < 1.0:
                # DCT scaling: libjpeg decodes at 1/2, 1/4 or 1/8 directly, several times faster than a full decode.
                # It picks the smallest scale at least the size asked for: asking for 90% of the working size lets an
                # 8000 px photo decode at 1/4 (2000 px) rather than at 1/2 (4000 px, four times the pixels).
                image.draft("RGB", (round(width * scale * _DRAFT_MARGIN), round(height * scale * _DRAFT_MARGIN)))
            image.load()
            factor = int(max(image.size) / max_side)
            if factor >= 2 and image.mode in _REDUCIBLE_MODES:
                # Box-reduce by a whole factor first (cheap, little memory), so every step below works on a small
                # copy.
                image = image.reduce(factor)  # keeps `info`: the EXIF orientation and colour profile read below
            upright = ImageOps.exif_transpose(image)
        rgb = _to_srgb(upright)
    except PhotoRefused:
        raise
    except Exception as exc:  # truncated or corrupt pixel data: every input gets a verdict
        raise PhotoRefused(Reason.NOT_AN_IMAGE, f"the image data is damaged ({type(exc).__name__}: {exc})") from exc
    if max(rgb.size) > max_side:
        rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS, reducing_gap=2.0)
    # exif_transpose may swap width and height; the scale is the same on both axes.
    return np.asarray(rgb), max(rgb.size) / max(width, height)


_REDUCIBLE_MODES = {"L", "LA", "RGB", "RGBA", "RGBX", "RGBa", "La", "I", "F", "CMYK"}


def _to_srgb(image: Image.Image) -> Image.Image:
    """Convert any mode (CMYK, 16-bit, alpha, palette) and embedded colour profile to 8-bit sRGB."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale: Pillow's convert("L") clips instead of scaling.
        pixels = np.asarray(image, dtype=np.uint32)
        image = Image.fromarray((pixels >> 8).clip(0, 255).astype(np.uint8), mode="L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    icc = image.info.get("icc_profile")
    if icc:
        try:
            converted = ImageCms.profileToProfile(
                image, ImageCms.ImageCmsProfile(io.BytesIO(icc)), _srgb_profile(), outputMode="RGB"
            )
            if converted is not None:
                return converted
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # a broken profile: fall back to treating the pixels as sRGB
    return image.convert("RGB")


@cache
def _srgb_profile() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def encode_normalized(pixels: np.ndarray, *, quality: int = 95) -> bytes:
    """The copy kept for training: upright sRGB JPEG with no metadata at all (no EXIF, no GPS)."""
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()

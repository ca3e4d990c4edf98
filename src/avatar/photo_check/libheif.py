"""HEIC pixels from libheif's C API (the copy pillow-heif ships), reduced before they are converted to RGB.

Written by hand because no Python binding hands out the decoded YCbCr planes: pillow-heif always asks libheif for
full-size interleaved RGB, and that conversion alone took 0.3-0.6 s of a 25 MP photo's verdict on one core (scalar
code), besides a 75 MB buffer. Here OpenCV shrinks the planes to the working size first, then one SIMD matrix
transform converts them with the photo's own matrix coefficients and range.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np

from avatar.errors import PhotoRefused
from avatar.photo_check.verdict import Reason

# Enumerations of libheif's heif_image.h and heif_color.h.
_COLORSPACE_YCBCR, _COLORSPACE_RGB, _COLORSPACE_MONOCHROME = 0, 1, 2
_CHANNEL_Y, _CHANNEL_CB, _CHANNEL_CR, _CHANNEL_R, _CHANNEL_G, _CHANNEL_B, _CHANNEL_ALPHA = range(7)
_UNDEFINED = 99
_MATRIX_IDENTITY = 0  # GBR: the "luma" plane holds green, Cb blue, Cr red
# (Kr, Kb) of each matrix_coefficients code; anything else (unspecified, YCgCo, chromaticity-derived) is read as
# BT.601, libheif's own default.
_LUMA_WEIGHTS: dict[int, tuple[float, float]] = {
    1: (0.2126, 0.0722),  # BT.709
    4: (0.30, 0.11),  # FCC
    5: (0.299, 0.114),  # BT.470 B/G
    6: (0.299, 0.114),  # BT.601
    7: (0.212, 0.087),  # SMPTE 240M
    9: (0.2627, 0.0593),  # BT.2020 (non-constant luminance)
    10: (0.2627, 0.0593),  # BT.2020 constant luminance, read as the non-constant one
}
_SRGB_DEFAULT = (6, True)  # libheif's nclx when a file names none: BT.601 matrix, full range
_MAX_THREADS = 4


class _Error(ctypes.Structure):
    _fields_ = [("code", ctypes.c_int), ("subcode", ctypes.c_int), ("message", ctypes.c_char_p)]


class _Nclx(ctypes.Structure):
    # The leading fields of heif_color_profile_nclx; the chromaticities after them are not read.
    _fields_ = [
        ("version", ctypes.c_uint8),
        ("color_primaries", ctypes.c_int),
        ("transfer_characteristics", ctypes.c_int),
        ("matrix_coefficients", ctypes.c_int),
        ("full_range_flag", ctypes.c_uint8),
    ]


@dataclass(frozen=True)
class HeicPixels:
    """The primary image, upright (libheif applies the file's rotation and mirroring), at most the size asked for."""

    rgb: np.ndarray  # uint8, height x width x 3, in the colour space `icc_profile` names (sRGB when None)
    icc_profile: bytes | None


def decode_heic(data: bytes, *, max_side: int) -> HeicPixels:
    """Decode `data`'s primary image to RGB at most `max_side` on the long side; raises PhotoRefused when libheif
    cannot, and RuntimeError when libheif is not there (see `libheif_available`)."""
    lib = _libheif()
    if lib is None:
        raise RuntimeError("libheif was not found beside pillow-heif")
    context = ctypes.c_void_p(lib.heif_context_alloc())
    handle = ctypes.c_void_p()
    image = ctypes.c_void_p()
    try:
        lib.heif_context_set_max_decoding_threads(context, min(_MAX_THREADS, len(os.sched_getaffinity(0))))
        _check(lib.heif_context_read_from_memory_without_copy(context, data, len(data), None))
        _check(lib.heif_context_get_primary_image_handle(context, ctypes.byref(handle)))
        # The decoder's own layout (no conversion); the default options apply the file's rotation and mirroring.
        _check(lib.heif_decode_image(handle, ctypes.byref(image), _UNDEFINED, _UNDEFINED, None))
        rgb = _to_rgb(lib, image, max_side=max_side)
        return HeicPixels(rgb=rgb, icc_profile=_icc_profile(lib, handle))
    finally:
        if image:
            lib.heif_image_release(image)
        if handle:
            lib.heif_image_handle_release(handle)
        lib.heif_context_free(context)


def libheif_available() -> bool:
    """Whether libheif's shared library was found (pillow-heif's wheels ship it); without it HEIC goes through
    pillow-heif's full-size RGB decode."""
    return _libheif() is not None


def _to_rgb(lib: ctypes.CDLL, image: ctypes.c_void_p, *, max_side: int) -> np.ndarray:
    colorspace = lib.heif_image_get_colorspace(image)
    if colorspace == _COLORSPACE_RGB:
        planes = [_plane(lib, image, channel) for channel in (_CHANNEL_R, _CHANNEL_G, _CHANNEL_B)]
    elif colorspace in (_COLORSPACE_YCBCR, _COLORSPACE_MONOCHROME):
        planes = [_plane(lib, image, _CHANNEL_Y)]
        if colorspace == _COLORSPACE_YCBCR:
            planes += [_plane(lib, image, _CHANNEL_CB), _plane(lib, image, _CHANNEL_CR)]
    else:
        raise PhotoRefused(Reason.NOT_AN_IMAGE, f"a HEIC whose pixels are in colour space {colorspace}")
    height, width = planes[0].shape
    scale = min(1.0, max_side / max(width, height))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = [_resized(plane, size) for plane in planes]
    matrix, full_range = _matrix_and_range(lib, image)
    if colorspace == _COLORSPACE_RGB:
        rgb = cv2.merge(small)
    elif colorspace == _COLORSPACE_MONOCHROME:
        luma_scale, luma_offset, _ = _ranges(full_range)
        rgb = cv2.transform(small[0], np.array([[luma_scale, -luma_scale * luma_offset]] * 3))
    elif matrix == _MATRIX_IDENTITY:
        rgb = cv2.merge([small[2], small[0], small[1]])
    else:
        rgb = cv2.transform(cv2.merge(small), _ycbcr_to_rgb(matrix, full_range))
    if lib.heif_image_has_channel(image, _CHANNEL_ALPHA):
        alpha = _resized(_plane(lib, image, _CHANNEL_ALPHA), size)
        rgb = _on_white(rgb, alpha, premultiplied=bool(lib.heif_image_is_premultiplied_alpha(image)))
    return np.ascontiguousarray(rgb)


def _plane(lib: ctypes.CDLL, image: ctypes.c_void_p, channel: int) -> np.ndarray:
    """One channel as an 8-bit array; deeper channels (10, 12 bits) keep their top 8 bits."""
    stride = ctypes.c_size_t()
    pointer = lib.heif_image_get_plane_readonly2(image, channel, ctypes.byref(stride))
    if not pointer:
        raise PhotoRefused(Reason.NOT_AN_IMAGE, f"a HEIC without its channel {channel}")
    width, height = lib.heif_image_get_width(image, channel), lib.heif_image_get_height(image, channel)
    bits = lib.heif_image_get_bits_per_pixel_range(image, channel)
    rows: np.ndarray = np.ctypeslib.as_array(pointer, shape=(height, stride.value))
    if bits <= 8:
        return rows[:, :width]
    # libheif stores more than 8 bits as native-endian 16-bit samples.
    deep: np.ndarray = rows.view(np.uint16)[:, :width]
    top: np.ndarray = (deep >> (bits - 8)).astype(np.uint8)
    return top


def _resized(plane: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if plane.shape[::-1] == size:
        return plane.copy()  # the plane is libheif's memory, released once the image is
    whole = plane.shape[1] // size[0]
    if whole >= 2:
        # Averaging by a whole factor is OpenCV's fast path (11 ms for 25 MP, against 99 ms for any other ratio);
        # what is left, less than half again, is interpolated.
        plane = cv2.resize(plane, (plane.shape[1] // whole, plane.shape[0] // whole), interpolation=cv2.INTER_AREA)
        if plane.shape[::-1] == size:
            return plane
    return cv2.resize(plane, size, interpolation=cv2.INTER_LINEAR)


def _matrix_and_range(lib: ctypes.CDLL, image: ctypes.c_void_p) -> tuple[int, bool]:
    nclx = ctypes.POINTER(_Nclx)()
    error = lib.heif_image_get_nclx_color_profile(image, ctypes.byref(nclx))
    if error.code != 0 or not nclx:
        return _SRGB_DEFAULT
    try:
        return nclx.contents.matrix_coefficients, bool(nclx.contents.full_range_flag)
    finally:
        lib.heif_nclx_color_profile_free(nclx)


def _ycbcr_to_rgb(matrix: int, full_range: bool) -> np.ndarray:
    """The 3x4 affine map from 8-bit (Y, Cb, Cr) to (R, G, B), for cv2.transform."""
    kr, kb = _LUMA_WEIGHTS.get(matrix, _LUMA_WEIGHTS[6])
    kg = 1.0 - kr - kb
    luma_scale, luma_offset, chroma_scale = _ranges(full_range)
    # Per output row: weights on (Y, Cb, Cr); chroma is centred on 128.
    weights = np.array(
        [
            [luma_scale, 0.0, 2 * (1 - kr) * chroma_scale],
            [luma_scale, -2 * kb * (1 - kb) / kg * chroma_scale, -2 * kr * (1 - kr) / kg * chroma_scale],
            [luma_scale, 2 * (1 - kb) * chroma_scale, 0.0],
        ]
    )
    offsets = -weights[:, 0] * luma_offset - (weights[:, 1] + weights[:, 2]) * 128.0
    return np.column_stack([weights, offsets])


def _ranges(full_range: bool) -> tuple[float, float, float]:
    """(luma scale, luma offset, chroma scale) that stretch 8-bit samples to 0-255: limited ("video") range puts luma
    in 16-235 and chroma in 16-240."""
    return (1.0, 0.0, 1.0) if full_range else (255 / 219, 16.0, 255 / 224)


def _on_white(rgb: np.ndarray, alpha: np.ndarray, *, premultiplied: bool) -> np.ndarray:
    """Composite onto white, as the other formats' transparent pixels are."""
    opacity = alpha.astype(np.float32)[..., None] / 255.0
    colour = rgb.astype(np.float32) if premultiplied else rgb.astype(np.float32) * opacity
    return np.clip(colour + 255.0 * (1.0 - opacity) + 0.5, 0, 255).astype(np.uint8)


def _icc_profile(lib: ctypes.CDLL, handle: ctypes.c_void_p) -> bytes | None:
    size = lib.heif_image_handle_get_raw_color_profile_size(handle)
    if not size:
        return None
    buffer = ctypes.create_string_buffer(size)
    if lib.heif_image_handle_get_raw_color_profile(handle, buffer).code != 0:
        return None
    return buffer.raw


def _check(error: _Error) -> None:
    if error.code != 0:
        message = (error.message or b"").decode("utf-8", "replace")
        raise PhotoRefused(Reason.NOT_AN_IMAGE, f"the image data is damaged (libheif: {message})")


@cache
def _libheif() -> ctypes.CDLL | None:
    """The libheif that pillow-heif loads (its wheels ship one: `pillow_heif.libs/` on Linux, `.dylibs/` on macOS),
    else the system's; with the signatures used here declared."""
    import pillow_heif

    package = Path(pillow_heif.__file__).parent
    candidates = sorted(package.parent.glob("pillow_heif.libs/libheif*.so*")) + sorted(
        package.glob(".dylibs/libheif*.dylib")
    )
    path = str(candidates[0]) if candidates else ctypes.util.find_library("heif")
    if path is None:
        return None
    lib = ctypes.CDLL(path)
    if not hasattr(lib, "heif_image_get_plane_readonly2"):  # libheif before 1.20
        return None
    pointer, size, integer = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int
    signatures: dict[str, tuple[object, list[object]]] = {
        "heif_context_alloc": (pointer, []),
        "heif_context_free": (None, [pointer]),
        "heif_context_set_max_decoding_threads": (None, [pointer, integer]),
        "heif_context_read_from_memory_without_copy": (_Error, [pointer, ctypes.c_char_p, size, pointer]),
        "heif_context_get_primary_image_handle": (_Error, [pointer, ctypes.POINTER(pointer)]),
        "heif_decode_image": (_Error, [pointer, ctypes.POINTER(pointer), integer, integer, pointer]),
        "heif_image_handle_release": (None, [pointer]),
        "heif_image_handle_get_raw_color_profile_size": (size, [pointer]),
        "heif_image_handle_get_raw_color_profile": (_Error, [pointer, ctypes.c_char_p]),
        "heif_image_release": (None, [pointer]),
        "heif_image_get_colorspace": (integer, [pointer]),
        "heif_image_has_channel": (integer, [pointer, integer]),
        "heif_image_is_premultiplied_alpha": (integer, [pointer]),
        "heif_image_get_plane_readonly2": (ctypes.POINTER(ctypes.c_uint8), [pointer, integer, ctypes.POINTER(size)]),
        "heif_image_get_width": (integer, [pointer, integer]),
        "heif_image_get_height": (integer, [pointer, integer]),
        "heif_image_get_bits_per_pixel_range": (integer, [pointer, integer]),
        "heif_image_get_nclx_color_profile": (_Error, [pointer, ctypes.POINTER(ctypes.POINTER(_Nclx))]),
        "heif_nclx_color_profile_free": (None, [ctypes.POINTER(_Nclx)]),
    }
    for name, (restype, argtypes) in signatures.items():
        function = getattr(lib, name)
        function.restype = restype
        function.argtypes = argtypes
    return lib

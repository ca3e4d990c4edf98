"""`avatar bench watermark`: would an invisible watermark survive what happens to a shared avatar?

invisible-watermark (the library Stable Diffusion's reference scripts use) embeds 32 bits into each of the eleven
shared selfies, cropped to 512 px as an avatar is; each marked image is then stored as PNG, re-encoded as JPEG
(95, 85, 75, 50) and WebP (80), and scaled down and up; the decoder reads the bits back. A watermark is useful only
where it reads back at (nearly) 100% and an unmarked image does not: the unmarked line is what the decoder reads
from the same photos without any watermark. Prints the share of bits read back per method and re-encoding.
"""

from __future__ import annotations

import json
import time
from typing import Any

PAYLOAD = b"AVTR"  # 32 bits
METHODS = ("dwtDct", "dwtDctSvd")


def _bits(data: bytes) -> Any:
    import numpy as np

    return np.unpackbits(np.frombuffer(data, dtype=np.uint8))


def _transforms() -> dict[str, Any]:
    import cv2

    def jpeg(quality: int) -> Any:
        return lambda image: cv2.imdecode(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1], 1)

    return {
        "png": lambda image: cv2.imdecode(cv2.imencode(".png", image)[1], 1),
        **{f"jpeg{quality}": jpeg(quality) for quality in (95, 85, 75, 50)},
        "webp80": lambda image: cv2.imdecode(cv2.imencode(".webp", image, [cv2.IMWRITE_WEBP_QUALITY, 80])[1], 1),
        "resized 384 and back": lambda image: cv2.resize(cv2.resize(image, (384, 384)), (512, 512)),
    }


def run(*, as_json: bool) -> int:
    """Measure and print."""
    import cv2
    import numpy as np
    from imwatermark import WatermarkDecoder, WatermarkEncoder
    from PIL import Image

    from avatar_dev.bench.intake import machine
    from avatar_dev.paths import shared_faces_dir

    photos = [
        cv2.cvtColor(np.asarray(Image.open(path).convert("RGB").resize((512, 512))), cv2.COLOR_RGB2BGR)
        for path in sorted(shared_faces_dir().glob("*.jpg"))
    ]
    want = _bits(PAYLOAD)
    results: dict[str, Any] = {}
    for method in METHODS:
        encoder = WatermarkEncoder()
        encoder.set_watermark("bytes", PAYLOAD)
        decoder = WatermarkDecoder("bytes", len(want))
        started = time.perf_counter()
        marked = [encoder.encode(photo, method) for photo in photos]
        encode_ms = (time.perf_counter() - started) * 1000 / len(photos)

        def read(images: list[Any], decoder: Any = decoder, method: str = method) -> float:
            return float(np.mean([(_bits(decoder.decode(image, method)) == want).mean() for image in images]))

        shares = {name: round(read([change(image) for image in marked]), 3) for name, change in _transforms().items()}
        results[method] = {
            "encode_ms_per_image": round(encode_ms),
            "psnr_db": round(float(np.mean([cv2.PSNR(a, b) for a, b in zip(photos, marked, strict=True)])), 1),
            "bits_read_back": shares,
            "bits_read_from_unmarked": round(read(photos), 3),
        }
    result = {"machine": machine(), "images": len(photos), "payload_bits": len(want), "methods": results}
    print(json.dumps(result) if as_json else json.dumps(result, indent=2))
    return 0

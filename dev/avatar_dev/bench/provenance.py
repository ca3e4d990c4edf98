"""`avatar bench provenance`: what marking costs per image, on one core. The eleven shared selfies cropped to 512 px
(an avatar's size and kind of content): encoding as PNG with and without the XMP mark (the serving side), signing the
C2PA manifest (the generate and starter-pack functions) and validating it with the C2PA reader (`avatar verify`).
Medians over every image, after one warm-up."""

from __future__ import annotations

import io
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _median_ms(work: Callable[[Any], Any], items: list[Any]) -> float:
    work(items[0])  # warm-up
    times = []
    for item in items:
        started = time.perf_counter()
        work(item)
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 1)


def run(*, as_json: bool) -> int:
    """Measure and print."""
    from PIL import Image

    from avatar.provenance.content_credentials import ContentCredentials, read_credentials
    from avatar.provenance.xmp import marked_png
    from avatar_dev.bench.intake import machine
    from avatar_dev.local.content_credentials import development_identity
    from avatar_dev.paths import shared_faces_dir

    pictures = [Image.open(p).convert("RGB").resize((512, 512)) for p in sorted(shared_faces_dir().glob("*.jpg"))]

    def plain(picture: Any) -> bytes:
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        return buffer.getvalue()

    pngs = [marked_png(picture) for picture in pictures]
    with tempfile.TemporaryDirectory() as scratch:
        identity, anchor = development_identity(Path(scratch))
    signer = ContentCredentials(identity, generator_version="bench")
    signed = [signer.sign_png(png) for png in pngs]
    result = {
        "machine": machine(),
        "images": f"{len(pictures)} selfies at 512x512",
        "png_encode_ms": _median_ms(plain, pictures),
        "png_encode_with_xmp_ms": _median_ms(marked_png, pictures),
        "c2pa_sign_ms": _median_ms(signer.sign_png, pngs),
        "c2pa_validate_ms": _median_ms(lambda png: read_credentials(png, trust_anchors=anchor), signed),
        "c2pa_added_kb": round(statistics.median(len(s) - len(p) for s, p in zip(signed, pngs, strict=True)) / 1024, 1),
        "png_kb": round(statistics.median(len(p) for p in pngs) / 1024, 1),
    }
    print(json.dumps(result) if as_json else json.dumps(result, indent=2))
    return 0

"""The AI-generated mark: written into a PNG's XMP as it is encoded, read back as it was written."""

from __future__ import annotations

import io

from PIL import Image

from avatar.provenance.xmp import DIGITAL_SOURCE_TYPE, GENERATOR, marked_png, read_xmp


def test_a_marked_png_reads_back_as_ai_generated_with_its_generator_and_its_pixels_intact() -> None:
    picture = Image.new("RGB", (32, 24), (200, 40, 10))
    png = marked_png(picture, generator="tester <&> tool")
    marks = read_xmp(png)
    assert marks.digital_source_type == DIGITAL_SOURCE_TYPE and marks.creator_tool == "tester <&> tool"
    assert Image.open(io.BytesIO(png)).convert("RGB").tobytes() == picture.tobytes()
    assert read_xmp(marked_png(picture)).creator_tool == GENERATOR


def test_an_unmarked_png_says_nothing() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="PNG")
    marks = read_xmp(buffer.getvalue())
    assert (marks.digital_source_type, marks.creator_tool) == (None, None)

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


def _signed(tmp_path: object) -> tuple[bytes, bytes, str]:
    from pathlib import Path

    from avatar.provenance.content_credentials import ContentCredentials
    from avatar_dev.local.content_credentials import development_identity

    identity, trust_anchor = development_identity(Path(str(tmp_path)) / "cc")
    picture = Image.new("RGB", (64, 64), (30, 120, 200))
    png = marked_png(picture)
    return png, ContentCredentials(identity, generator_version="9.9.9").sign_png(png), trust_anchor


def test_a_signed_png_carries_a_c2pa_manifest_the_c2pa_reader_validates(tmp_path: object) -> None:
    """The C2PA library's own reader is the independent check: trusted with the issuing CA, valid without it."""
    from avatar.provenance.content_credentials import CREATED, GENERATOR_NAME, read_credentials

    png, signed, trust_anchor = _signed(tmp_path)

    trusted = read_credentials(signed, trust_anchors=trust_anchor)
    assert (trusted.state, trusted.problems) == ("Trusted", ())
    assert trusted.ai_generated and trusted.actions == (CREATED,) and trusted.digital_source_type == DIGITAL_SOURCE_TYPE
    assert trusted.generator == f"{GENERATOR_NAME} 9.9.9" and "development signer" in (trusted.signer or "")
    untrusted = read_credentials(signed)
    assert untrusted.state == "Valid" and untrusted.problems == ("signingCredential.untrusted",)
    # The XMP mark and the pixels survive signing; the manifest costs a few KB, no thumbnail
    assert read_xmp(signed).digital_source_type == DIGITAL_SOURCE_TYPE
    assert Image.open(io.BytesIO(signed)).tobytes() == Image.open(io.BytesIO(png)).tobytes()
    assert len(signed) - len(png) < 16_000
    assert read_credentials(png).state is None  # unsigned: no manifest at all


def test_a_changed_pixel_makes_the_manifest_invalid_and_re_encoding_drops_it(tmp_path: object) -> None:
    from avatar.provenance.content_credentials import read_credentials

    _, signed, trust_anchor = _signed(tmp_path)
    image = Image.open(io.BytesIO(signed))
    idat = signed.index(b"IDAT") + 8  # a byte of the compressed pixels
    changed = signed[:idat] + bytes([signed[idat] ^ 0xFF]) + signed[idat + 1 :]

    tampered = read_credentials(changed, trust_anchors=trust_anchor)
    assert tampered.state == "Invalid" and not tampered.ai_generated
    assert any("mismatch" in problem for problem in tampered.problems)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    assert read_credentials(buffer.getvalue(), trust_anchors=trust_anchor).state is None


def test_a_signing_identity_needs_its_chain_and_key() -> None:
    import pytest

    from avatar.provenance.content_credentials import SigningIdentity

    with pytest.raises(ValueError, match="certificate_chain"):
        SigningIdentity.from_json('{"certificate_chain": "", "private_key": ""}')  # the template's placeholder
    identity = SigningIdentity("chain", "key")
    assert SigningIdentity.from_json(identity.to_json()) == identity


def test_the_development_trust_anchor_is_the_ca_of_the_development_identity_once_one_exists(tmp_path: object) -> None:
    from pathlib import Path

    from avatar_dev.local.content_credentials import development_identity, development_trust_anchor

    folder = Path(str(tmp_path)) / "cc"
    assert development_trust_anchor(folder) is None  # asking does not make one

    _, trust_anchor = development_identity(folder)

    assert development_trust_anchor(folder) == trust_anchor
    assert trust_anchor.startswith("-----BEGIN CERTIFICATE-----")

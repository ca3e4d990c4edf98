"""`avatar verify`: what an image says about where it came from."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from avatar_dev.cli import add_command

VERIFY_NOTES = """Reads each image's provenance:
  - its C2PA manifest, validated by the C2PA library's own reader: Trusted (valid, and the signer chains to a trust
    anchor), Valid (valid, signer not trusted here), Invalid (changed after signing), or none; the generator, the
    action and the digital source type it names;
  - its XMP digital source type (IPTC `trainedAlgorithmicMedia`: made by a trained model) and creator tool.
The local stack's development CA is trusted when it exists (~/.cache/avatar/content-credentials); --trust-anchors
PEM trusts others (a deployment's CA).

exit codes:
  0  every image carries both marks: a Trusted or Valid manifest of a created trainedAlgorithmicMedia, and the XMP
  1  some image is unreadable, lacks a mark, or its manifest is invalid (each has its line)
  2  usage error"""


def _trust_anchors(given: str | None) -> str | None:
    if given:
        return Path(given).read_text()
    from avatar_dev.local.content_credentials import development_trust_anchor

    return development_trust_anchor()


def _verify(args: argparse.Namespace, _: argparse.ArgumentParser) -> int:
    from avatar.provenance.content_credentials import read_credentials
    from avatar.provenance.xmp import DIGITAL_SOURCE_TYPE, read_xmp

    anchors = _trust_anchors(args.trust_anchors)
    failed = 0
    for given in args.images:
        line: dict[str, Any] = {"image": given}
        try:
            data = Path(given).read_bytes()
            marks = read_xmp(data)
            credentials = read_credentials(data, trust_anchors=anchors)
        except (OSError, ValueError, SyntaxError) as problem:  # PIL's errors for what is no image
            line |= {"error": f"cannot read it ({problem})"}
            text = f"{given}: cannot read it ({problem})"
            failed += 1
        else:
            marked = marks.digital_source_type == DIGITAL_SOURCE_TYPE
            failed += not (marked and credentials.ai_generated)
            line |= {
                "ai_generated": marked and credentials.ai_generated,
                "xmp_digital_source_type": marks.digital_source_type,
            }
            line |= {
                "creator_tool": marks.creator_tool,
                "c2pa": credentials.state,
                "c2pa_generator": credentials.generator,
            }
            line |= {
                "c2pa_actions": list(credentials.actions),
                "c2pa_digital_source_type": credentials.digital_source_type,
            }
            line |= {"c2pa_signer": credentials.signer, "c2pa_problems": list(credentials.problems)}
            text = f"{given}: " + "; ".join(_describe(marks.creator_tool if marked else None, credentials))
        print(json.dumps(line) if args.json else text, flush=True)
    return 1 if failed else 0


def _describe(creator_tool: str | None, credentials: Any) -> list[str]:
    parts = []
    if credentials.state is None:
        parts.append("no C2PA manifest")
    elif credentials.state == "Invalid":
        parts.append(
            f"C2PA manifest INVALID ({', '.join(credentials.problems) or 'unreadable'}): changed after signing"
        )
    else:
        trust = "trusted signer" if credentials.state == "Trusted" else "signer not trusted here"
        kind = "AI-generated" if credentials.ai_generated else f"digital source {credentials.digital_source_type}"
        parts.append(
            f"C2PA {credentials.state} ({trust}: {credentials.signer}): {kind}, "
            f"{'/'.join(credentials.actions) or 'no action'} by {credentials.generator}"
        )
    parts.append(
        f"XMP: AI-generated (IPTC trainedAlgorithmicMedia), made by {creator_tool}" if creator_tool else "no XMP mark"
    )
    return parts


def add_commands(commands: Any) -> None:
    """`avatar verify`."""
    verify = add_command(
        commands,
        "verify",
        help="say whether images carry the AI-generated marks (C2PA, XMP), and which software made them",
        example="avatar verify build/demo/avatars/*.png",
        notes=VERIFY_NOTES,
    )
    verify.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    verify.add_argument("--trust-anchors", metavar="PEM", help="CA certificates whose signers count as trusted")
    verify.add_argument("--json", action="store_true", help="one JSON object per line")
    verify.set_defaults(run=_verify)

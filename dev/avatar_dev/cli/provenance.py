"""`avatar verify`: what an image says about where it came from."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from avatar_dev.cli import add_command

VERIFY_NOTES = """Reads each image's XMP digital source type (IPTC `trainedAlgorithmicMedia`: made by a trained model)
and the software named as its creator.

exit codes:
  0  every image carries the AI-generated mark
  1  some image is unreadable or carries no mark (each has its line)
  2  usage error"""


def _verify(args: argparse.Namespace, _: argparse.ArgumentParser) -> int:
    from avatar.provenance.xmp import DIGITAL_SOURCE_TYPE, read_xmp

    unmarked = 0
    for given in args.images:
        line: dict[str, Any] = {"image": given}
        try:
            marks = read_xmp(Path(given).read_bytes())
        except (OSError, ValueError, SyntaxError) as problem:  # PIL's errors for what is no image
            line |= {"error": f"cannot read it ({problem})"}
            text = f"{given}: cannot read it ({problem})"
            unmarked += 1
        else:
            marked = marks.digital_source_type == DIGITAL_SOURCE_TYPE
            unmarked += not marked
            line |= {"ai_generated": marked, "digital_source_type": marks.digital_source_type}
            line |= {"creator_tool": marks.creator_tool}
            text = (
                f"{given}: AI-generated (IPTC trainedAlgorithmicMedia), made by {marks.creator_tool}"
                if marked
                else f"{given}: no AI-generated mark (digital source type: {marks.digital_source_type or 'none'})"
            )
        print(json.dumps(line) if args.json else text, flush=True)
    return 1 if unmarked else 0


def add_commands(commands: Any) -> None:
    """`avatar verify`."""
    verify = add_command(
        commands,
        "verify",
        help="say whether images carry the AI-generated mark, and which software made them",
        example="avatar verify build/demo/avatars/*.png",
        notes=VERIFY_NOTES,
    )
    verify.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    verify.add_argument("--json", action="store_true", help="one JSON object per line")
    verify.set_defaults(run=_verify)

"""`avatar likeness`: how alike the faces in photos are to a person (photos of them, or a trained model)."""

from __future__ import annotations

import argparse
import json
import tarfile
from pathlib import Path
from typing import Any

from avatar_dev.cli import add_command
from avatar_dev.cli.photos import find_photos, read_photo

LIKENESS_NOTES = """The reference is a trained model (its folder or model.tar.gz, which hold identity.json), an
identity.json, or a folder of photos of the person (the photos showing the person most of them show are used).
Likeness runs from 0 to 1, higher meaning more alike, with 0.5 at the threshold (a face distance of 0.6): the same
scale the API returns.

exit codes:
  0  every photo was read (a photo without a face has face_found false and no likeness)
  1  the reference gave no identity, or some photo could not be read
  2  usage error"""


def load_identity(reference: Path) -> Any:
    """The Identity of a model folder or archive, an identity.json, or a folder of photos; None when it has none."""
    from avatar.identity.likeness import Identity, person_of_set
    from avatar.identity.models import describe_largest_face
    from avatar.lora_format import IDENTITY_NAME
    from avatar.photo_check.checker import default_face_models

    if reference.is_file() and reference.name.endswith(".tar.gz"):
        with tarfile.open(reference, mode="r:gz") as tar:
            member = next((m for m in tar.getmembers() if m.isfile() and m.name.endswith(f"/{IDENTITY_NAME}")), None)
            data = tar.extractfile(member).read() if member else None  # type: ignore[union-attr]
        return Identity.from_json(json.loads(data)) if data else None
    if reference.is_file():
        return Identity.from_json(json.loads(reference.read_text()))
    stored = sorted(reference.rglob(IDENTITY_NAME))
    if stored:
        return Identity.from_json(json.loads(stored[0].read_text()))
    descriptors = {}
    for argument in find_photos([str(reference)]):
        data, _ = read_photo(argument)
        rgb = _pixels(data) if data else None
        descriptor = describe_largest_face(rgb, default_face_models()) if rgb is not None else None
        if descriptor is not None:
            descriptors[argument.given] = descriptor
    if not descriptors:
        return None
    person = person_of_set(descriptors) or set(descriptors)
    return Identity.of(descriptors[name] for name in sorted(person))


def _pixels(data: bytes) -> Any:
    from avatar.errors import PhotoRefused
    from avatar.photo_check.decoding import decode_upright, open_photo

    try:
        image, _ = open_photo(data, max_pixels=64_000_000, min_side=32, max_whole_decode_pixels=25_000_000)
        return decode_upright(image, max_side=2048)[0]
    except PhotoRefused:
        return None


def _likeness(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from avatar.identity.models import describe_largest_face
    from avatar.photo_check.checker import default_face_models

    reference = Path(args.reference)
    if not reference.exists():
        parser.error(f"--reference {reference}: no such file or folder")
    try:
        identity = load_identity(reference)
    except (ValueError, OSError, tarfile.TarError) as exc:
        print(f"{reference}: not a usable reference ({exc})")
        return 1
    if identity is None:
        print(f"{reference}: no face found in the reference, so there is nothing to compare with")
        return 1
    problems = 0
    for argument in find_photos(args.photos):
        data, problem = read_photo(argument)
        rgb = _pixels(data) if data is not None else None
        if rgb is None:
            problems += 1
            problem = problem or "not a photo the checks can read"
            line: dict[str, Any] = {"photo": argument.given, "error": problem}
            print(json.dumps(line) if args.json else f"{argument.given}: {problem}", flush=True)
            continue
        descriptor = describe_largest_face(rgb, default_face_models())
        score = identity.likeness(descriptor, args.threshold) if descriptor is not None else None
        line = {"photo": argument.given, "likeness": score, "face_found": descriptor is not None}
        text = f"{argument.given}: likeness {score:.3f}" if score is not None else f"{argument.given}: no face found"
        print(json.dumps(line) if args.json else text, flush=True)
    return 1 if problems else 0


def add_commands(commands: Any) -> None:
    """`avatar likeness`."""
    likeness = add_command(
        commands,
        "likeness",
        help="score how alike the faces in photos are to a person (0 to 1)",
        example="avatar likeness --reference ../shared/faces build/demo/avatars/*.png --json",
        notes=LIKENESS_NOTES,
    )
    likeness.add_argument("--reference", required=True, help="the person: a model, an identity.json or photos")
    likeness.add_argument("photos", nargs="+", metavar="PHOTO", help="photos or folders to score")
    likeness.add_argument("--json", action="store_true", help='one {"photo", "likeness", "face_found"} per line')
    likeness.add_argument("--threshold", type=float, default=0.6, help="face distance that scores 0.5")
    likeness.set_defaults(run=_likeness)

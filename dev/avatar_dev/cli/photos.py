"""`avatar check` and `avatar prepare`: the photo check and the face crops, on photos of this machine."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avatar_dev.cli import add_command

# What a folder argument picks up: every format the check knows how to refuse, not only those it accepts.
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif", ".gif", ".bmp", ".tif", ".tiff", ".avif"}

CHECK_NOTES = """Folders are read for photo files (JPEG, PNG, WebP, HEIC and other image suffixes). Photos are judged
in the order given, as a user's uploads are in the order they land, and each verdict is printed as soon as it is known.
Duplicates, and photos of someone other than the person most photos show (`different_person`), are found across the
photos given: once three accepted photos agree on a person, a photo accepted earlier that shows someone else gets a
second line, "refused after all" ("revised": true with --json). The summary counts final verdicts and says how the
accepted photos cover front, left and right.

exit codes:
  0  every argument was read and every photo got its verdict (refused photos included)
  1  some argument was missing, unreadable or a folder without photos: it has a line of its own, and every photo
     that could be read still got its verdict
  2  usage error"""


@dataclass(frozen=True)
class PhotoArgument:
    """One photo named on the command line (or found in a folder), or an argument that gave none, and why."""

    given: str
    path: Path | None
    problem: str | None = None


def find_photos(arguments: list[str]) -> list[PhotoArgument]:
    """Every photo the arguments name, in order; an argument that names none comes back with its problem."""
    found: list[PhotoArgument] = []
    for given in arguments:
        path = Path(given)
        if path.is_dir():
            inside = [p for p in sorted(path.iterdir()) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
            if not inside:
                found.append(PhotoArgument(given, None, "a folder with no photos in it"))
            found.extend(PhotoArgument(str(p), p) for p in inside)
        elif path.is_file():
            found.append(PhotoArgument(given, path))
        else:
            found.append(PhotoArgument(given, None, "no such file or folder"))
    return found


def read_photo(argument: PhotoArgument) -> tuple[bytes | None, str | None]:
    """The photo's bytes, or why it cannot be read."""
    if argument.path is None:
        return None, argument.problem
    try:
        return argument.path.read_bytes(), None
    except OSError as exc:
        return None, f"cannot read it ({exc.strerror or exc})"


def _check(args: argparse.Namespace, _: argparse.ArgumentParser) -> int:
    from avatar.identity.coverage import coverage
    from avatar.identity.descriptors import decode_descriptor
    from avatar.identity.likeness import person_of_set
    from avatar.photo_check.checker import check_photo
    from avatar.photo_check.verdict import PhotoVerdict, Reason
    from avatar.records import PHOTOS_NEEDED

    # Photos are judged in the order given, as the upload pipeline judges a user's photos in the order they land:
    # each verdict is printed as soon as it is known (`| head` stops the command early), and once the accepted
    # photos agree on a person, earlier photos of someone else are refused after all, each on a line of its own.
    fingerprints: dict[str, str] = {}  # the photos accepted so far: a later copy of one is a duplicate
    accepted: dict[str, PhotoVerdict] = {}
    refused = unreadable = 0
    for argument in find_photos(args.photos):
        data, problem = read_photo(argument)
        if data is None:
            unreadable += 1
            _print(args, {"photo": argument.given, "error": problem}, f"{argument.given}: {problem}")
            continue
        verdict = check_photo(data, accepted_fingerprints=fingerprints).verdict
        revised: list[str] = []
        if verdict.accepted and verdict.descriptor:
            described = {g: v.descriptor for g, v in accepted.items() if v.descriptor} | {
                argument.given: verdict.descriptor
            }
            person = person_of_set({g: decode_descriptor(d) for g, d in described.items()})
            if person is not None and argument.given not in person:
                verdict = verdict.model_copy(update={"accepted": False, "reasons": (Reason.DIFFERENT_PERSON,)})
            elif person is not None:
                revised = [g for g in described if g != argument.given and g not in person]
        if verdict.accepted:
            accepted[argument.given] = verdict
            if verdict.fingerprint:
                fingerprints[argument.given] = verdict.fingerprint
        else:
            refused += 1
        _print_verdict(args, argument.given, verdict)
        for given in revised:
            different = accepted.pop(given).model_copy(
                update={"accepted": False, "reasons": (Reason.DIFFERENT_PERSON,)}
            )
            fingerprints.pop(given, None)
            refused += 1
            _print_verdict(args, given, different, revised=True)
    needed = max(0, PHOTOS_NEEDED - len(accepted))
    turns = coverage(v.yaw for v in accepted.values() if v.yaw is not None)
    summary: dict[str, Any] = {"checked": len(accepted) + refused, "accepted": len(accepted), "refused": refused}
    summary |= {"unreadable": unreadable, "needed_to_train": needed, "coverage": turns.model_dump()}
    text = f"{summary['checked']} photos checked: {len(accepted)} accepted, {refused} refused"
    text += f"; {unreadable} could not be read" if unreadable else ""
    text += f". A training needs {PHOTOS_NEEDED} accepted photos: " + (f"{needed} more." if needed else "ready.")
    text += f" Facing: {turns.front} front, {turns.left} left, {turns.right} right."
    text += "".join(f" {advice}" for advice in turns.advice)
    _print(args, {"summary": summary}, text)
    return 1 if unreadable else 0


def _print_verdict(args: argparse.Namespace, given: str, verdict: Any, *, revised: bool = False) -> None:
    """One photo's verdict; `revised` marks a photo accepted earlier and refused once the set showed its person."""
    line = {
        "photo": given,
        "accepted": verdict.accepted,
        "reasons": [str(r) for r in verdict.reasons],
        "messages": verdict.messages,
        "face": verdict.face.model_dump() if verdict.face else None,
        "duplicate_of": verdict.duplicate_of,
        "yaw": verdict.yaw if verdict.accepted else None,
    }
    if verdict.accepted and verdict.face:
        box = verdict.face
        turn = round(verdict.yaw or 0)
        text = f"{given}: accepted (face {box.w}x{box.h} at {box.x},{box.y}, turned {turn:+d} degrees)"
    else:
        explained = "; ".join(f"{r}: {m}" for r, m in zip(verdict.reasons, verdict.messages, strict=True))
        duplicate = f" (same as {verdict.duplicate_of})" if verdict.duplicate_of else ""
        text = f"{given}: {'refused after all' if revised else 'refused'} - {explained}{duplicate}"
    if revised:
        line["revised"] = True
    _print(args, line, text)


def _print(args: argparse.Namespace, line: dict[str, Any], text: str) -> None:
    print(json.dumps(line) if args.json else text, flush=True)


def _prepare(args: argparse.Namespace, _: argparse.ArgumentParser) -> int:
    import sys

    from avatar.fine_tuning.preparation import PrepareOptions, prepare_photos

    photos = []
    for argument in find_photos(args.photos):
        data, problem = read_photo(argument)
        if data is None:
            print(f"{argument.given}: {problem}", file=sys.stderr)
        else:
            photos.append((argument.given, data))
    options = PrepareOptions(resolution=args.resolution, backgrounds_per_photo=args.backgrounds, seed=args.seed)
    prepared = prepare_photos(photos, options)
    manifest = prepared.write(Path(args.out))
    for photo in prepared.rejected:
        print(f"{photo.source}: skipped - {photo.reason} ({photo.detail})")
    print(f"{len(prepared.images)} training images from {prepared.photo_count} photos; manifest: {manifest}")
    if not prepared.images:
        print(
            f"no training image: none of the {len(photos)} photos read shows a face that can be cropped "
            "(see the lines above)",
            file=sys.stderr,
        )
        return 1
    return 0


def add_commands(commands: Any) -> None:
    """`avatar check`, `avatar prepare`."""
    check = add_command(
        commands,
        "check",
        help="check photos as the upload pipeline does",
        example="avatar check ../shared/faces photo.heic --json | head",
        notes=CHECK_NOTES,
    )
    check.add_argument("photos", nargs="+", metavar="PHOTO", help="photo files or folders of photos")
    check.add_argument(
        "--json", action="store_true", help="one JSON object per line (photo, accepted, reasons, messages, face)"
    )
    check.set_defaults(run=_check)

    prepare = add_command(
        commands,
        "prepare",
        help="make training images (face crops) and a manifest from photos",
        example="avatar prepare ../shared/faces --out build/prepared --backgrounds 2",
        notes="exit codes: 0 training images written; 1 no photo gave a training image (it says why); 2 usage error",
    )
    prepare.add_argument("photos", nargs="+", metavar="PHOTO", help="photo files or folders of photos")
    prepare.add_argument("--out", required=True, help="folder for the images and manifest.json")
    prepare.add_argument("--resolution", type=int, default=512, help="side of the square training images, in pixels")
    prepare.add_argument("--backgrounds", type=int, default=0, help="extra copies per photo with generated backgrounds")
    prepare.add_argument("--seed", type=int, default=0, help="seed of the segmentation and the backgrounds")
    prepare.set_defaults(run=_prepare)

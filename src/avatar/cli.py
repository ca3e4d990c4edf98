"""The `avatar` command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

IMAGE_SUFFIXES = {
    ".jpg",
    ".jpeg",
    ".png",
    ".webp",
    ".heic",
    ".heif",
    ".gif",
    ".bmp",
    ".tif",
    ".tiff",
    ".avif",
}


def _expand(paths: list[str], parser: argparse.ArgumentParser) -> list[tuple[str, Path]]:
    photos: list[tuple[str, Path]] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            photos.extend(
                (str(p), p) for p in sorted(path.iterdir()) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
        elif path.is_file():
            photos.append((given, path))
        else:
            parser.error(f"no such file or directory: {given}")
    return photos


def _check(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from avatar.photos.check import check_photo

    photos = _expand(args.photos, parser)
    accepted: dict[str, str] = {}
    for given, path in photos:
        verdict = check_photo(path.read_bytes(), accepted_fingerprints=accepted).verdict
        if verdict.accepted and verdict.fingerprint:
            accepted[given] = verdict.fingerprint
        face = verdict.face.model_dump() if verdict.face else None
        if args.json:
            line = {
                "photo": given,
                "accepted": verdict.accepted,
                "reasons": [str(r) for r in verdict.reasons],
            }
            print(json.dumps(line | {"face": face}))
        elif verdict.accepted and verdict.face:
            box = verdict.face
            print(f"{given}: accepted (face {box.w}x{box.h} at {box.x},{box.y})")
        else:
            explained = "; ".join(f"{r}: {m}" for r, m in zip(verdict.reasons, verdict.messages, strict=True))
            duplicate = f" (same as {verdict.duplicate_of})" if verdict.duplicate_of else ""
            print(f"{given}: refused - {explained}{duplicate}")
    return 0


def _demo(args: argparse.Namespace, _: argparse.ArgumentParser) -> int:
    from avatar.demo import run_demo
    from avatar.photos.hard_cases import shared_faces_dir

    return run_demo(out=Path(args.out), faces=Path(args.faces) if args.faces else shared_faces_dir())


def _bench(args: argparse.Namespace, _: argparse.ArgumentParser) -> int:
    from avatar import bench

    return bench.run(args.what, as_json=args.json)


def _openapi(_: argparse.Namespace, __: argparse.ArgumentParser) -> int:
    from services.upload.api import app

    print(app.get_openapi_json_schema(title="Avatar API", version="1"))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="avatar", description="Personal avatar models from selfies.")
    commands = parser.add_subparsers(dest="command", required=True)

    check = commands.add_parser("check", help="check photos as the upload pipeline does")
    check.add_argument("photos", nargs="+", metavar="PHOTO", help="photo files or folders of photos")
    check.add_argument("--json", action="store_true", help="one JSON object per line")
    check.set_defaults(run=_check)

    demo = commands.add_parser("demo", help="run the intake end to end on a local AWS (moto) and write a report")
    demo.add_argument("--out", default="build/demo", help="report folder")
    demo.add_argument("--faces", help="folder of selfies (default: ../shared/faces beside the repository)")
    demo.set_defaults(run=_demo)

    bench = commands.add_parser("bench", help="measure the figures quoted in the README")
    bench.add_argument("what", choices=["intake", "lambda-size"])
    bench.add_argument("--json", action="store_true", help="print one JSON line")
    bench.set_defaults(run=_bench)

    openapi = commands.add_parser("openapi", help="print the upload API's OpenAPI document")
    openapi.set_defaults(run=_openapi)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `avatar` command; exit 2 on usage errors (argparse's convention)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    code: int = args.run(args, parser)
    return code


if __name__ == "__main__":
    sys.exit(main())

"""`avatar likeness` and `avatar eval`: how alike faces are to a person, in photos or in what a model generates."""

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
        return decode_upright(image, data, max_side=2048)[0]
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


# A fixed prompt set: the same images for every model and setting compared (seed + i for image i of a prompt).
EVAL_PROMPTS = (
    "a portrait photo of <<TOK>> person, looking at the camera",
    "a close-up photo of <<TOK>> person smiling, natural light",
    "<<TOK>> person as an astronaut, studio lighting",
    "a photo of <<TOK>> person in a business suit, office background",
    "a watercolor painting of <<TOK>> person",
    "a black and white photo of <<TOK>> person, side view",
)

EVAL_NOTES = """Generates each prompt of a fixed set through a local Triton server (the same serving path as the
endpoint) and scores every image: with --photos, against the person in those photos (held-out photos make an honest
test); without, against the identity stored with the model. Per prompt: the mean likeness of the images with a face
and the face-found rate; then the same over all prompts.

exit codes:
  0  every prompt was generated and scored (images without a face included)
  1  no identity to score against
  2  usage error"""


def _eval(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import tempfile

    from avatar.contracts.generation import GenerationRequest
    from avatar.identity.scoring import score_images
    from avatar.photo_check.checker import default_face_models
    from avatar_dev.cli.training import cache_dir
    from avatar_dev.local.serving import local_serving

    model = Path(args.model)
    if not model.exists():
        parser.error(f"no such model: {model}")
    reference = load_identity(Path(args.photos)) if args.photos else load_identity(model)
    if reference is None:
        print(f"{args.photos or model}: no identity to score against (no face in the photos, or none stored)")
        return 1
    size = {"width": args.size, "height": args.size} if args.size else {}
    totals: list[Any] = []
    with (
        tempfile.TemporaryDirectory() as work,
        local_serving(Path(work), cache_dir=cache_dir(), base_model=args.base_model) as serving,
    ):
        name = serving.add_model(model)
        for index, prompt in enumerate(EVAL_PROMPTS):
            request = GenerationRequest(
                prompt=prompt, seed=args.seed + 1000 * index, steps=args.steps, num_images=args.images, **size
            )
            images = score_images(serving.generate(name, request), reference, default_face_models())
            totals.extend(images)
            _print_scores(args, prompt, images)
    _print_scores(args, None, totals)
    return 0


def _print_scores(args: argparse.Namespace, prompt: str | None, images: list[Any]) -> None:
    alike = [image.likeness for image in images if image.face_found and image.likeness is not None]
    mean = round(sum(alike) / len(alike), 3) if alike else None
    line = {"likeness": mean, "face_found_rate": round(len(alike) / len(images), 3), "images": len(images)}
    shown = f"likeness {mean:.3f}" if mean is not None else "likeness - (no face)"
    text = f"{shown}, faces in {len(alike)}/{len(images)}"
    if prompt is None:
        print(json.dumps({"summary": line}) if args.json else f"all prompts: {text}", flush=True)
    else:
        print(json.dumps({"prompt": prompt, **line}) if args.json else f"{prompt}: {text}", flush=True)


def add_commands(commands: Any) -> None:
    """`avatar likeness`, `avatar eval`."""
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

    evaluate = add_command(
        commands,
        "eval",
        help="generate a fixed prompt set with a model and score likeness and faces found per prompt",
        example="avatar eval --model build/train/model.tar.gz --photos held-out-selfies/ --base-model /models/sd21",
        notes=EVAL_NOTES,
    )
    evaluate.add_argument("--model", required=True, help="a per-user model (model.tar.gz or its folder)")
    evaluate.add_argument("--photos", help="photos of the person to score against (default: the model's identity)")
    evaluate.add_argument("--images", type=int, default=4, help="images per prompt")
    evaluate.add_argument("--steps", type=int, default=25, help="sampling steps")
    evaluate.add_argument("--size", type=int, help="image side in pixels (default: the base's native size)")
    evaluate.add_argument("--seed", type=int, default=0, help="prompt i uses seeds seed + 1000 i, + 1, ...")
    evaluate.add_argument("--base-model", default="tiny", help="the base the model was trained on (tiny, a folder)")
    evaluate.add_argument("--json", action="store_true", help="one JSON object per prompt, then a summary")
    evaluate.set_defaults(run=_eval)

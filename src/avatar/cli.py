"""The `avatar` command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from avatar.serving.generation import GenerationRequest

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

    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    _log_to_stderr(Path(args.out).parent / "demo-stack.log")  # the console shows the demo's own lines
    faces = Path(args.faces) if args.faces else shared_faces_dir()
    return run_demo(out=Path(args.out), faces=faces, base_model=args.base_model, cache_dir=_cache_dir())


def _stack(args: argparse.Namespace, _: argparse.ArgumentParser) -> int:
    import json

    from avatar.local import stack_cli

    state_dir = Path(args.state_dir)
    if args.action == "token":
        return stack_cli.stack_token(state_dir, args.user)
    if args.action == "down":
        return stack_cli.stack_down(state_dir)
    if args.detach:
        forwarded = ["--state-dir", str(state_dir), "--base-model", args.base_model]
        if args.training_defaults:
            forwarded += ["--training-defaults", args.training_defaults]
        return stack_cli.stack_up_detached(state_dir, argv=forwarded)
    _log_to_stderr()
    defaults = json.loads(args.training_defaults) if args.training_defaults else None
    return stack_cli.stack_up(state_dir, cache_dir=_cache_dir(), base_model=args.base_model, training_defaults=defaults)


def _log_to_stderr(path: Path | None = None) -> None:
    """One line per event, with its correlation ids; the handlers' Powertools lines are JSON already."""
    import logging

    from avatar.local.runtime import CorrelationFormatter

    handler = logging.FileHandler(path) if path else logging.StreamHandler()
    handler.setFormatter(CorrelationFormatter())
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    for noisy in ("botocore", "boto3", "urllib3", "werkzeug", "s3transfer", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _cache_dir() -> Path:
    import os

    return Path(os.environ.get("AVATAR_CACHE_DIR", Path.home() / ".cache" / "avatar"))


def _prepare(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from avatar.training.prepare import PrepareOptions, prepare_photos

    photos = [(given, path.read_bytes()) for given, path in _expand(args.photos, parser)]
    options = PrepareOptions(resolution=args.resolution, backgrounds_per_photo=args.backgrounds, seed=args.seed)
    prepared = prepare_photos(photos, options)
    manifest = prepared.write(Path(args.out))
    for photo in prepared.rejected:
        print(f"{photo.source}: skipped - {photo.reason} ({photo.detail})")
    print(f"{len(prepared.images)} training images from {prepared.photo_count} photos; manifest: {manifest}")
    return 0 if prepared.images else 1


def _train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from pydantic import ValidationError
    from tqdm import tqdm

    from avatar.adapter_format import ADAPTER_WEIGHTS
    from avatar.training.class_images import LocalClassImageStore
    from avatar.training.fine_tune import FineTuneFailed, fine_tune
    from avatar.training.options import TrainingOptions
    from avatar.training.progress import TrainingProgress

    photos = [(given, path.read_bytes()) for given, path in _expand(args.photos, parser)]
    overrides = {
        name: value
        for name, value in {
            "steps": args.steps,
            "resolution": args.resolution,
            "rank": args.rank,
            "seed": args.seed,
            "token": args.token,
            "num_class_images": args.class_images,
            "train_text_encoder": args.train_text_encoder or None,
        }.items()
        if value is not None
    }
    try:
        options = TrainingOptions(**overrides)
    except ValidationError as exc:
        parser.error(str(exc))
    cache_dir = _cache_dir()
    out = Path(args.out)
    bar = tqdm(total=options.steps, unit="step", dynamic_ncols=True)

    def show(progress: TrainingProgress) -> None:
        if progress.phase != "training":
            bar.set_description(progress.phase)
            return
        if bar.desc != "training":
            bar.reset(total=progress.total_steps)  # the rate and ETA count from the first step, not from loading
            bar.set_description("training")
        bar.set_postfix(loss=f"{progress.loss:.4f}", img_s=f"{progress.images_per_second:.1f}", refresh=False)
        bar.update(progress.step - bar.n)

    try:
        result = fine_tune(
            photos,
            out,
            base_model=args.base_model,
            options=options,
            cache_dir=cache_dir,
            class_store=LocalClassImageStore(cache_dir / "class-images"),
            name=args.name,
            backgrounds_per_photo=args.backgrounds,
            min_photos=args.min_photos,
            progress=show,
        )
    except FineTuneFailed as exc:
        bar.close()
        print(f"training failed: {exc}", file=sys.stderr)
        return 1
    bar.close()
    metrics = result.metrics
    print(
        f"adapter: {result.adapter_dir / ADAPTER_WEIGHTS} ({result.adapter_bytes / 1e6:.2f} MB)\n"
        f"model:   {result.archive}\n"
        f"{metrics.steps} steps in {metrics.seconds:.1f} s ({metrics.seconds_per_step * 1000:.0f} ms/step, "
        f"{metrics.device}, {metrics.precision}), {result.photos_used} photos, final loss {metrics.final_loss:.4f}"
    )
    return 0


def _bench(args: argparse.Namespace, _: argparse.ArgumentParser) -> int:
    from avatar import bench

    if args.what == "training":
        from avatar.training import benchmark

        return benchmark.run(size=args.size, as_json=args.json, steps=args.steps, resolution=args.resolution)
    if args.what == "serving":
        from avatar.serving import benchmark as serving_benchmark

        return serving_benchmark.run(size=args.size, users=args.users, as_json=args.json, strategy=args.strategy)
    return bench.run(args.what, as_json=args.json)


def _openapi(args: argparse.Namespace, __: argparse.ArgumentParser) -> int:
    if args.service == "generate":
        from services.generate.api import app
    elif args.service == "models":
        from services.orchestrator.api import app
    else:
        from services.upload.api import app

    print(app.get_openapi_json_schema(title="Avatar API", version="1"))
    return 0


def _generation_request(args: argparse.Namespace, parser: argparse.ArgumentParser) -> GenerationRequest:
    from pydantic import ValidationError

    from avatar.serving.generation import GenerationRequest

    fields = {
        name: getattr(args, name)
        for name in ("prompt", "negative_prompt", "seed", "steps", "guidance_scale", "width", "height", "num_images")
        if getattr(args, name) is not None
    }
    try:
        return GenerationRequest.model_validate(fields)
    except ValidationError as exc:
        parser.error(str(exc))


def _generate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import tempfile

    from avatar.local.serving import local_serving

    request = _generation_request(args, parser)
    model = Path(args.model)
    if not model.exists():
        parser.error(f"no such model: {model}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory() as work,
        local_serving(Path(work), cache_dir=_cache_dir(), base_model=args.base_model) as serving,
    ):
        name = serving.add_model(model)
        for index, image in enumerate(serving.generate(name, request)):
            path = out / f"{index}-{image.seed}.png"
            path.write_bytes(image.png)
            print(path)
    return 0


def _serve(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import signal
    import tempfile
    import threading

    import tritonclient.http as httpclient

    from avatar.local.serving import local_serving

    stop = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C or `kill`: stop the server cleanly, whenever it comes
        signal.signal(number, lambda *_: stop.set())
    with (
        tempfile.TemporaryDirectory() as work,
        local_serving(Path(work), cache_dir=_cache_dir(), base_model=args.base_model) as serving,
    ):
        client = httpclient.InferenceServerClient(serving.server.http_url, network_timeout=900)
        client.load_model("avatar_base")  # the container's preload: the shared base is ready before any user
        client.close()
        names = [serving.add_model(Path(model)) for model in args.model]
        print(f"Triton (HTTP/KServe v2) at http://{serving.server.http_url}; models: {', '.join(names) or 'none yet'}")
        print(f"log: {serving.server.log}; Ctrl-C stops it", flush=True)
        stop.wait()
        print("stopping", flush=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="avatar", description="Personal avatar models from selfies.")
    commands = parser.add_subparsers(dest="command", required=True)

    check = commands.add_parser("check", help="check photos as the upload pipeline does")
    check.add_argument("photos", nargs="+", metavar="PHOTO", help="photo files or folders of photos")
    check.add_argument("--json", action="store_true", help="one JSON object per line")
    check.set_defaults(run=_check)

    demo = commands.add_parser("demo", help="the whole flow on the local stack: photos, training, avatars, a report")
    demo.add_argument("--out", default="build/demo", help="report folder")
    demo.add_argument("--faces", help="folder of selfies (default: ../shared/faces beside the repository)")
    demo.add_argument("--base-model", default="tiny", help="tiny | a diffusers folder of SD 2.1 base | s3://...")
    demo.set_defaults(run=_demo)

    stack = commands.add_parser("stack", help="the whole system on this machine: up [--detach], token USER, down")
    stack.add_argument("action", choices=["up", "token", "down"])
    stack.add_argument("user", nargs="?", help="for `token`: the development user's id")
    stack.add_argument("--detach", action="store_true", help="return once ready; the API URL is the last line")
    stack.add_argument("--state-dir", default="build/stack", help="where the running stack keeps its state and log")
    stack.add_argument("--base-model", default="tiny", help="tiny | sd21 | a diffusers folder | s3://bucket/prefix")
    stack.add_argument("--training-defaults", help='JSON, e.g. \'{"options": {"steps": 100}}\'')
    stack.set_defaults(run=_stack)

    prepare = commands.add_parser("prepare", help="make training images (face crops) and a manifest from photos")
    prepare.add_argument("photos", nargs="+", metavar="PHOTO", help="photo files or folders of photos")
    prepare.add_argument("--out", required=True, help="folder for the images and manifest.json")
    prepare.add_argument("--resolution", type=int, default=512)
    prepare.add_argument("--backgrounds", type=int, default=0, help="extra copies per photo with generated backgrounds")
    prepare.add_argument("--seed", type=int, default=0)
    prepare.set_defaults(run=_prepare)

    train = commands.add_parser("train", help="fine-tune a personal LoRA adapter and package the per-user model")
    train.add_argument("photos", nargs="+", metavar="PHOTO_DIR_OR_FILES")
    train.add_argument("--out", required=True, help="writes model.tar.gz, adapter/ and prepared/ here")
    train.add_argument(
        "--base-model", default="tiny", help="tiny | sd21 | a diffusers folder | s3://bucket/prefix | hub id"
    )
    train.add_argument("--steps", type=int)
    train.add_argument("--resolution", type=int)
    train.add_argument("--rank", type=int)
    train.add_argument("--seed", type=int)
    train.add_argument("--token", help="identifier token (default ohwx)")
    train.add_argument("--class-images", type=int, help="prior-preservation images (default 100, cached)")
    train.add_argument("--train-text-encoder", action="store_true")
    train.add_argument("--backgrounds", type=int, default=1, help="generated-background copies per photo")
    train.add_argument("--min-photos", type=int, default=6)
    train.add_argument("--name", default="avatar-local", help="Triton model name inside model.tar.gz")
    train.set_defaults(run=_train)

    bench = commands.add_parser("bench", help="measure the figures quoted in the README")
    bench.add_argument("what", choices=["intake", "lambda-size", "training", "serving"])
    bench.add_argument("--json", action="store_true", help="print one JSON line")
    bench.add_argument("--size", choices=["tiny", "sd21"], default="tiny", help="training: the model to measure")
    bench.add_argument("--steps", type=int, help="training: steps per configuration")
    bench.add_argument("--resolution", type=int, help="training: image side (default: 512 on GPU, small on CPU)")
    bench.add_argument("--users", type=int, default=4, help="serving: users (adapters) to serve")
    bench.add_argument("--strategy", choices=["mixed", "grouped"], help="serving: how a batch of users is run")
    bench.set_defaults(run=_bench)

    openapi = commands.add_parser("openapi", help="print an API's OpenAPI document")
    openapi.add_argument("--service", choices=["upload", "models", "generate"], default="upload")
    openapi.set_defaults(run=_openapi)

    serve = commands.add_parser("serve", help="run the local Triton server with the shared base (and given models)")
    serve.add_argument("--base-model", default="tiny", help="tiny | sd21 | a diffusers folder | s3://bucket/prefix")
    serve.add_argument("--model", action="append", default=[], help="a per-user model (.tar.gz or adapter folder)")
    serve.set_defaults(run=_serve)

    generate = commands.add_parser("generate", help="generate avatars with a trained model on the local server")
    generate.add_argument("--model", required=True, help="model.tar.gz from `avatar train`, or its adapter/ folder")
    generate.add_argument("--prompt", required=True, help="put <<TOK>> where the person goes (else it is prepended)")
    generate.add_argument("--out", required=True, help="folder for the PNGs (named <index>-<seed>.png)")
    generate.add_argument("--base-model", default="tiny", help="the base the model was trained on")
    generate.add_argument("--negative-prompt")
    generate.add_argument("--seed", type=int)
    generate.add_argument("--steps", type=int)
    generate.add_argument("--guidance-scale", type=float)
    generate.add_argument("--width", type=int)
    generate.add_argument("--height", type=int)
    generate.add_argument("--num-images", type=int)
    generate.set_defaults(run=_generate)

    from avatar.deploy.cli import add_deploy_commands

    add_deploy_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `avatar` command; exit 2 on usage errors (argparse's convention)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    code: int = args.run(args, parser)
    return code


if __name__ == "__main__":
    sys.exit(main())

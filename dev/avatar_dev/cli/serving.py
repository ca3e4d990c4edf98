"""`avatar serve` and `avatar generate`: a real Triton server on this machine with the shared base and users' models."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from avatar_dev.cli import add_command
from avatar_dev.cli.training import cache_dir

if TYPE_CHECKING:
    from avatar.contracts.generation import GenerationRequest


def _generation_request(args: argparse.Namespace, parser: argparse.ArgumentParser) -> GenerationRequest:
    from pydantic import ValidationError

    from avatar.contracts.generation import GenerationRequest

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

    from avatar_dev.local.serving import local_serving

    request = _generation_request(args, parser)
    model = Path(args.model)
    if not model.exists():
        parser.error(f"no such model: {model}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory() as work,
        local_serving(Path(work), cache_dir=cache_dir(), base_model=args.base_model) as serving,
    ):
        name = serving.add_model(model)
        for index, image in enumerate(serving.generate(name, request)):
            path = out / f"{index}-{image.seed}.png"
            path.write_bytes(image.png)
            print(path, flush=True)
    return 0


def _serve(args: argparse.Namespace, _: argparse.ArgumentParser) -> int:
    import signal
    import tempfile
    import threading

    import tritonclient.http as httpclient

    from avatar_dev.local.serving import local_serving

    stop = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C or `kill`: stop the server cleanly, whenever it comes
        signal.signal(number, lambda *_: stop.set())
    with (
        tempfile.TemporaryDirectory() as work,
        local_serving(Path(work), cache_dir=cache_dir(), base_model=args.base_model) as serving,
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


def add_commands(commands: Any) -> None:
    """`avatar serve`, `avatar generate`."""
    serve = add_command(
        commands,
        "serve",
        help="run the local Triton server with the shared base (and the given users' models)",
        example="avatar serve --model build/train/model.tar.gz",
    )
    serve.add_argument("--base-model", default="tiny", help="tiny | sd21 | a diffusers folder | s3://bucket/prefix")
    serve.add_argument(
        "--model", action="append", default=[], help="a per-user model (.tar.gz or LoRA folder); repeat for more"
    )
    serve.set_defaults(run=_serve)

    generate = add_command(
        commands,
        "generate",
        help="generate avatars with a trained model on the local Triton server",
        example='avatar generate --model build/train/model.tar.gz --prompt "<<TOK>> in the snow" --out build/avatars',
        notes="Image i uses seed + i and is written as <index>-<seed>.png; the same seed makes the same image again.",
    )
    generate.add_argument("--model", required=True, help="model.tar.gz from `avatar train`, or its lora/ folder")
    generate.add_argument("--prompt", required=True, help="put <<TOK>> where the person goes (else it is prepended)")
    generate.add_argument("--out", required=True, help="folder for the PNGs")
    generate.add_argument("--base-model", default="tiny", help="the base model the LoRA was trained on")
    generate.add_argument("--negative-prompt", help="what the images should not show (default: nothing)")
    generate.add_argument("--seed", type=int, help="the first image's seed (default: a random one)")
    generate.add_argument("--steps", type=int, help="sampling steps, 1-100 (default 30)")
    generate.add_argument("--guidance-scale", type=float, help="classifier-free guidance, 0-20 (default 7.5)")
    generate.add_argument("--width", type=int, help="image width, a multiple of 8 (default: the base model's)")
    generate.add_argument("--height", type=int, help="image height, a multiple of 8 (default: the base model's)")
    generate.add_argument("--num-images", type=int, help="images to make, 1-4 (default 1)")
    generate.set_defaults(run=_generate)

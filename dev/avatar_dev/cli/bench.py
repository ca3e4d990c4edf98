"""`avatar bench` (the figures docs/figures.md quotes), `avatar fuzz` and `avatar openapi` (the APIs' documents)."""

from __future__ import annotations

import argparse
from typing import Any

from avatar_dev.cli import add_command


def _bench(args: argparse.Namespace, _: argparse.ArgumentParser) -> int:
    if args.what == "training":
        from avatar_dev.bench import training

        return training.run(size=args.size, as_json=args.json, steps=args.steps, resolution=args.resolution)
    if args.what == "serving":
        from avatar_dev.bench import serving

        return serving.run(size=args.size, users=args.users, as_json=args.json, strategy=args.strategy)
    if args.what == "provenance":
        from avatar_dev.bench import provenance

        return provenance.run(as_json=args.json)
    if args.what == "watermark":
        from avatar_dev.bench import watermark

        return watermark.run(as_json=args.json)
    if args.what == "pack":
        from avatar_dev.bench import pack

        return pack.run(as_json=args.json, users=args.users)
    if args.what == "fairness":
        from avatar_dev.bench import fairness

        return fairness.run(as_json=args.json)
    if args.what == "web-size":
        from avatar_dev.bench import web

        return web.run(as_json=args.json)
    if args.what == "photo-limits":
        from avatar_dev.bench import photo_limits

        return photo_limits.run(as_json=args.json)
    from avatar_dev.bench import intake

    return intake.run(args.what, as_json=args.json)


def _fuzz(args: argparse.Namespace, _: argparse.ArgumentParser) -> int:
    from avatar_dev import fuzz

    return fuzz.run(args.cases, as_json=args.json)


def _openapi(args: argparse.Namespace, _: argparse.ArgumentParser) -> int:
    if args.service == "generate":
        from services.generate.api import app
    elif args.service == "models":
        from services.orchestrator.api import app
    else:
        from services.upload.api import app

    print(app.get_openapi_json_schema())
    return 0


def add_commands(commands: Any) -> None:
    """`avatar bench`, `avatar openapi`."""
    bench = add_command(
        commands,
        "bench",
        help="measure the figures docs/figures.md quotes",
        example="avatar bench training --size sd21 --json",
        notes=(
            "intake: checking a 12 MP phone photo, refusing a PNG bomb, handler import times.\n"
            "photo-limits: the slowest verdict and highest peak memory over the worst photos within the limits\n"
            "(exit 1 over the 2 s / 600 MB goal). fairness: one user's heaviest requests against five ordinary\n"
            "users on the local stack (exit 1 if one of the five saw an error). lambda-size: the functions'\n"
            "unzipped sizes. training: tiny end to end, or the SD 2.1 architecture per step. serving: the shared\n"
            "base against a pipeline per user, in a real Triton server. web-size: the web app's first page,\n"
            "gzip-compressed (exit 1 over the 150 KB goal). pack: the starter pack's time and its share of the shared\n"
            "base's batches, one user's alone and --users at once, on the local stack. watermark: whether an\n"
            "invisible watermark survives re-encoding (bits read back per JPEG/WebP quality). provenance: XMP\n"
            "marking, C2PA signing and validating, per 512 px image."
        ),
    )
    bench.add_argument(
        "what",
        choices=[
            "intake",
            "photo-limits",
            "fairness",
            "lambda-size",
            "training",
            "serving",
            "web-size",
            "pack",
            "watermark",
            "provenance",
        ],
        help="which figures",
    )
    bench.add_argument("--json", action="store_true", help="print one JSON line")
    bench.add_argument("--size", choices=["tiny", "sd21"], default="tiny", help="training, serving: the model")
    bench.add_argument("--steps", type=int, help="training: steps per configuration (default: 30 on a GPU, 6 on CPU)")
    bench.add_argument("--resolution", type=int, help="training: image side (default: 512 on a GPU, 128 on CPU)")
    bench.add_argument("--users", type=int, default=4, help="serving: users (LoRAs) to serve; pack: packs at once")
    bench.add_argument(
        "--strategy", choices=["mixed", "grouped"], help="serving: how a batch of users runs (default: mixed)"
    )
    bench.set_defaults(run=_bench)

    fuzz = add_command(
        commands,
        "fuzz",
        help="fuzz the photo check and the API bodies; exit 1 on any escape",
        example="avatar fuzz --cases 10000 --json",
        notes=(
            "Mutated real photos through the photo check, malformed bodies through every POST handler (on a local\n"
            "AWS). An escape: an exception, a 5xx, or an error answer not in the project's shape."
        ),
    )
    fuzz.add_argument("--cases", type=int, default=10_000, help="cases per target")
    fuzz.add_argument("--json", action="store_true", help="print one JSON line")
    fuzz.set_defaults(run=_fuzz)

    openapi = add_command(
        commands,
        "openapi",
        help="print an API's OpenAPI document",
        example="avatar openapi --service models > models.json",
    )
    openapi.add_argument("--service", choices=["upload", "models", "generate"], default="upload", help="which API")
    openapi.set_defaults(run=_openapi)

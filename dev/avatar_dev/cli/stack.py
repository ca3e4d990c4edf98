"""`avatar stack` and `avatar demo`: the whole system on this machine, driven over HTTP as a client on AWS would."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from avatar_dev.cli import add_command
from avatar_dev.cli.training import cache_dir


def log_events(path: Path | None = None) -> None:
    """One line per event, with its correlation ids (to `path`, else stderr); the handlers' Powertools lines are
    JSON already."""
    from avatar_dev.local.runtime import CorrelationFormatter

    handler = logging.FileHandler(path) if path else logging.StreamHandler()
    handler.setFormatter(CorrelationFormatter())
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    for noisy in ("botocore", "boto3", "urllib3", "werkzeug", "s3transfer", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _demo(args: argparse.Namespace, _: argparse.ArgumentParser) -> int:
    from avatar_dev.demo.run import run_demo

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    log_events(out.parent / "demo-stack.log")  # the console shows the demo's own lines
    return run_demo(out=out, faces=Path(args.faces), base_model=args.base_model, cache_dir=cache_dir())


def _stack(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from avatar_dev.local import control

    state_dir = Path(args.state_dir)
    if args.action == "token":
        if not args.user:
            parser.error("`avatar stack token` needs the development user's id, e.g. `avatar stack token alice`")
        return control.stack_token(state_dir, args.user)
    if args.action == "down":
        return control.stack_down(state_dir)
    if args.detach:
        forwarded = ["--state-dir", str(state_dir), "--base-model", args.base_model]
        if args.training_defaults:
            forwarded += ["--training-defaults", args.training_defaults]
        return control.stack_up_detached(state_dir, argv=forwarded)
    log_events()
    defaults = json.loads(args.training_defaults) if args.training_defaults else None
    return control.stack_up(state_dir, cache_dir=cache_dir(), base_model=args.base_model, training_defaults=defaults)


def add_commands(commands: Any) -> None:
    """`avatar stack`, `avatar demo`."""
    from avatar_dev.paths import shared_faces_dir

    stack = add_command(
        commands,
        "stack",
        help="the whole system on this machine: up [--detach], token USER, down",
        example="avatar stack up --detach    # then: avatar stack token alice; avatar stack down",
        notes="`up --detach` returns once the stack is ready, the API's base URL last; see docs/local-stack.md.",
    )
    stack.add_argument("action", choices=["up", "token", "down"], help="start it, sign in a development user, stop it")
    stack.add_argument("user", nargs="?", help="for `token`: the development user's id")
    stack.add_argument("--detach", action="store_true", help="return once ready; the API's base URL is the last line")
    stack.add_argument("--state-dir", default="build/stack", help="where the running stack keeps its state and log")
    stack.add_argument("--base-model", default="tiny", help="tiny | sd21 | a diffusers folder | s3://bucket/prefix")
    stack.add_argument(
        "--training-defaults",
        help="the deployment's training plan as JSON, e.g. '{\"options\": {\"steps\": 100}}' (default: the product's)",
    )
    stack.set_defaults(run=_stack)

    demo = add_command(
        commands,
        "demo",
        help="the whole flow on the local stack: photos, checks, training, avatars, and a report",
        example="avatar demo --faces ~/my-selfies --out build/demo",
        notes="The report is OUT/index.html; every event of the stack is one line of OUT/../demo-stack.log.",
    )
    demo.add_argument("--out", default="build/demo", help="report folder")
    demo.add_argument("--faces", default=str(shared_faces_dir()), help="folder of selfies of one person (10 or more)")
    demo.add_argument("--base-model", default="tiny", help="tiny | a diffusers folder of SD 2.1 base | s3://...")
    demo.set_defaults(run=_demo)

"""`avatar train`: a personal LoRA from photos of this machine, packaged as the per-user model the endpoint serves."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from avatar_dev.cli import add_command
from avatar_dev.cli.photos import find_photos, read_photo


def cache_dir() -> Path:
    """Where base models and class images are kept between runs (`AVATAR_CACHE_DIR`, else ~/.cache/avatar)."""
    return Path(os.environ.get("AVATAR_CACHE_DIR", Path.home() / ".cache" / "avatar"))


def _train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from pydantic import ValidationError
    from tqdm import tqdm

    from avatar.contracts.training import TrainingOptions, TrainingPlan, TrainingProgress
    from avatar.errors import FineTuneFailed
    from avatar.fine_tuning.class_images import LocalClassImageStore
    from avatar.fine_tuning.fine_tune import fine_tune
    from avatar.lora_format import LORA_WEIGHTS

    photos = []
    for argument in find_photos(args.photos):
        data, problem = read_photo(argument)
        if data is None:
            print(f"{argument.given}: {problem}", file=sys.stderr)
        else:
            photos.append((argument.given, data))
    chosen = {
        "steps": args.steps,
        "resolution": args.resolution,
        "rank": args.rank,
        "seed": args.seed,
        "token": args.token,
        "num_class_images": args.class_images,
        "train_text_encoder": args.train_text_encoder or None,
    }
    try:
        options = TrainingOptions(**{name: value for name, value in chosen.items() if value is not None})
        plan = TrainingPlan(options=options, backgrounds_per_photo=args.backgrounds, min_photos=args.min_photos)
    except ValidationError as exc:
        parser.error(str(exc))
    cache = cache_dir()
    bar = tqdm(total=options.steps, unit="step", dynamic_ncols=True)

    def show(progress: TrainingProgress) -> None:
        if bar.desc != progress.phase:
            bar.set_description(progress.phase)
            if progress.total_steps:
                bar.reset(total=progress.total_steps)  # the rate and ETA count from the phase's first unit
        if progress.total_steps:
            if progress.loss is not None:
                bar.set_postfix(loss=f"{progress.loss:.4f}", img_s=f"{progress.images_per_second:.1f}", refresh=False)
            bar.update(progress.step - bar.n)

    try:
        result = fine_tune(
            photos,
            Path(args.out),
            base_model=args.base_model,
            plan=plan,
            cache_dir=cache,
            class_store=LocalClassImageStore(cache / "class-images"),
            name=args.name,
            progress=show,
        )
    except FineTuneFailed as exc:
        bar.close()
        print(f"training failed: {exc.message}", file=sys.stderr)
        return 1
    bar.close()
    metrics = result.metrics
    print(
        f"LoRA:  {result.lora_dir / LORA_WEIGHTS} ({result.lora_bytes / 1e6:.2f} MB)\n"
        f"model: {result.archive}\n"
        f"{metrics.steps} steps in {metrics.seconds:.1f} s ({metrics.seconds_per_step * 1000:.0f} ms/step, "
        f"{metrics.device}, {metrics.precision}), {result.photos_used} photos, final loss {metrics.final_loss:.4f}"
    )
    curve = ", ".join(
        f"step {p.step}: " + (f"{p.likeness:.3f}" if p.likeness is not None else "no face") for p in metrics.checkpoints
    )
    print(
        f"checkpoint shipped: step {metrics.chosen_step}, {metrics.chosen_because}"
        + (f" (likeness by step: {curve}; judging took {metrics.validation_seconds:.1f} s)" if curve else "")
    )
    return 0


def add_commands(commands: Any) -> None:
    """`avatar train`."""
    train = add_command(
        commands,
        "train",
        help="fine-tune a personal LoRA and package the per-user model",
        example="avatar train ../shared/faces --out build/train --base-model tiny --steps 200",
        notes=(
            "Options left out take the training defaults (500 steps, rank 16, token ohwx, 100 class images, the base\n"
            "model's own resolution). exit codes: 0 trained; 1 no model could be made (it says why); 2 usage error"
        ),
    )
    train.add_argument("photos", nargs="+", metavar="PHOTO", help="photo files or folders of photos")
    train.add_argument("--out", required=True, help="writes model.tar.gz, lora/ and prepared/ here")
    train.add_argument(
        "--base-model", default="tiny", help="tiny | sd21 | a diffusers folder | s3://bucket/prefix | a hub id"
    )
    train.add_argument("--steps", type=int, help="optimizer steps (default 500)")
    train.add_argument("--resolution", type=int, help="training image side (default: the base model's, 512 for SD 2.1)")
    train.add_argument("--rank", type=int, help="UNet LoRA rank (default 16)")
    train.add_argument("--seed", type=int, help="seed of everything random in the run (default 0)")
    train.add_argument("--token", help="the identifier token prompts use for the person (default ohwx)")
    train.add_argument(
        "--class-images", type=int, help="prior-preservation images, generated once and cached (default 100)"
    )
    train.add_argument("--train-text-encoder", action="store_true", help="also adapt the text encoder (slower, larger)")
    train.add_argument("--backgrounds", type=int, default=1, help="generated-background copies per photo")
    train.add_argument("--min-photos", type=int, default=6, help="fewest photos that must give a face crop")
    train.add_argument("--name", default="avatar-local", help="Triton model name inside model.tar.gz")
    train.set_defaults(run=_train)

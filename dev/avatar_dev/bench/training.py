"""`avatar bench training`: tiny end-to-end time, and per-step time / peak memory / adapter size at SD 2.1 size.

The `sd21` figures use the real SD 2.1 base architecture with random weights (same FLOPs and memory as the real
weights, which cannot be downloaded here). Each configuration runs in its own process so peak memory is its own.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from avatar.contracts.training import TrainingOptions, TrainingPlan

# The reference design (an AWS sample): rank-128 UNet + rank-64 text-encoder LoRA, both trained, fp16 mixed
# precision, VAE and text encoder run at every step, no gradient checkpointing, plain AdamW.
REFERENCE = {
    "rank": 128,
    "train_text_encoder": True,
    "text_encoder_rank": 64,
    "cache_latents": False,
    "gradient_checkpointing": False,
    "mixed_precision": "fp16",
    "use_8bit_adam": "no",
}
# Ours: the defaults; and the defaults with gradient checkpointing, to show what that trade costs and saves.
CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "reference": REFERENCE,
    "ours": {},
    "ours+ckpt": {"gradient_checkpointing": True},
}


class _RandomClassImages:
    """Class images for timing only: random pixels for any key (generation is timed elsewhere)."""

    def __init__(self, count: int, side: int) -> None:
        from PIL import Image

        rng = np.random.default_rng(0)
        self._pngs = []
        for _ in range(count):
            buffer = io.BytesIO()
            Image.fromarray(rng.integers(0, 255, (side, side, 3), dtype=np.uint8)).save(buffer, format="PNG")
            self._pngs.append(buffer.getvalue())

    def load(self, key: str) -> list[bytes] | None:
        return self._pngs

    def save(self, key: str, pngs: Sequence[bytes], index: dict[str, Any]) -> None:
        return None


def measure_configuration(name: str, *, steps: int, resolution: int) -> dict[str, Any]:
    """Train one configuration on the random-weight SD 2.1 architecture; step time, peak memory, adapter size."""

    from avatar.diffusion.presets import build_pipeline
    from avatar.fine_tuning.trainer import default_device, train_lora
    from avatar.lora_format import LORA_WEIGHTS

    device = default_device()
    started = time.perf_counter()
    # Built in fp32 on the CPU and cast before it moves, as a job's from_pretrained(torch_dtype=...) would load it:
    # building on the GPU would leave fp32 copies in the peak.
    pipeline = build_pipeline("sd21")
    build_seconds = time.perf_counter() - started
    options = TrainingOptions(steps=steps, resolution=resolution, num_class_images=8, **CONFIGURATIONS[name])
    rng = np.random.default_rng(1)
    instances = [rng.integers(0, 255, (resolution, resolution, 3), dtype=np.uint8) for _ in range(10)]
    with tempfile.TemporaryDirectory() as folder:
        metrics = train_lora(
            pipeline,
            instances,
            options,
            Path(folder),
            base_sha256="random-sd21",
            class_store=_RandomClassImages(8, resolution),
            device=device,
        )
        lora_bytes = (Path(folder) / LORA_WEIGHTS).stat().st_size
    return {
        "configuration": name,
        "options": {
            key: value for key, value in options.model_dump().items() if key in {*REFERENCE, "steps", "resolution"}
        },
        "seconds_per_step": round(metrics.seconds_per_step, 4),
        "peak_memory_gb": round(metrics.peak_memory_bytes / 2**30, 2),
        "peak_memory_kind": "GPU allocated" if device == "cuda" else "process RSS",
        "lora_mb": round(lora_bytes / 1e6, 2),
        "trainable_parameters": metrics.trainable_parameters,
        "precision": metrics.precision,
        "optimizer": metrics.optimizer,
        "device": metrics.device,
        "build_seconds": round(build_seconds, 1),
    }


def tiny_end_to_end(faces: Path) -> dict[str, Any]:
    """`avatar train <faces> --base-model tiny` with default options, on an empty cache (class images included)."""
    from avatar.fine_tuning.class_images import LocalClassImageStore
    from avatar.fine_tuning.fine_tune import fine_tune

    photos = [(path.name, path.read_bytes()) for path in sorted(faces.iterdir()) if path.suffix.lower() == ".jpg"]
    with tempfile.TemporaryDirectory() as folder:
        cache = Path(folder) / "cache"

        def timed_run(out: str) -> tuple[Any, float]:
            started = time.perf_counter()
            result = fine_tune(
                photos,
                Path(folder) / out,
                base_model="tiny",
                plan=TrainingPlan(),
                cache_dir=cache,
                class_store=LocalClassImageStore(cache / "class-images"),
                name="bench",
            )
            return result, time.perf_counter() - started

        result, cold = timed_run("out")  # builds the tiny model and generates the class images
        _, warm = timed_run("again")  # both cached
        return {
            "photos": len(photos),
            "steps": result.metrics.steps,
            "seconds_cold_cache": round(cold, 1),
            "seconds_class_images_cached": round(warm, 1),
            "ms_per_step": round(result.metrics.seconds_per_step * 1000, 1),
            "lora_mb": round(result.lora_bytes / 1e6, 3),
            "archive_mb": round(result.archive.stat().st_size / 1e6, 3),
            "device": result.metrics.device,
        }


def run(*, size: str, as_json: bool, steps: int | None, resolution: int | None) -> int:
    """Measure and print; the sd21 configurations each run in a child process."""
    from avatar_dev.bench.intake import machine

    if size == "tiny":
        from avatar_dev.paths import shared_faces_dir

        figures: dict[str, Any] = {"machine": machine(), "tiny": tiny_end_to_end(shared_faces_dir())}
    else:
        import torch

        on_gpu = torch.cuda.is_available()
        steps = steps or (30 if on_gpu else 6)
        resolution = resolution or (512 if on_gpu else 128)
        rows = []
        for name in CONFIGURATIONS:
            command = [sys.executable, "-m", "avatar_dev.bench.training", name, str(steps), str(resolution)]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode:
                print(done.stderr[-4000:], file=sys.stderr)
                return 1
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        reference, ours = rows[0], rows[1]
        figures = {
            "machine": machine(),
            "sd21": rows,
            "step_time_ratio": round(ours["seconds_per_step"] / reference["seconds_per_step"], 3),
            "peak_memory_ratio": round(ours["peak_memory_gb"] / reference["peak_memory_gb"], 3),
        }
    if as_json:
        print(json.dumps(figures))
        return 0
    print(f"machine: {figures['machine']}")
    if size == "tiny":
        for key, value in figures["tiny"].items():
            print(f"  {key}: {value}")
        return 0
    print(f"{'configuration':<13} {'s/step':>8} {'peak GB':>8} {'adapter MB':>11} {'trainable':>12}  precision")
    for row in figures["sd21"]:
        print(
            f"{row['configuration']:<13} {row['seconds_per_step']:>8.3f} {row['peak_memory_gb']:>8.2f} "
            f"{row['lora_mb']:>11.2f} {row['trainable_parameters']:>12,}  {row['precision']} on {row['device']}"
        )
    print(f"ours/reference: step time x{figures['step_time_ratio']}, peak memory x{figures['peak_memory_ratio']}")
    return 0


if __name__ == "__main__":
    # Child process: one configuration, one JSON line on stdout.
    print(json.dumps(measure_configuration(sys.argv[1], steps=int(sys.argv[2]), resolution=int(sys.argv[3]))))

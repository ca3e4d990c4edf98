"""`avatar bench serving`: our design (one shared base, thin per-user models) against the reference design (every
per-user model loads its own pipeline), both in a real Triton server, on the same base and the same users' LoRAs.

Figures:
- cold start overhead: a user's first request (including loading their model, as a multi-model endpoint does on
  first use) minus a warm request of the same user (median of three); the median over users;
- memory per resident user: the growth of the server's memory (tritonserver and its stub processes, see
  `server_memory_mb`) per extra loaded-and-used user;
- mixed-user throughput: N users' requests sent at once, against the same requests one by one (ours only).
The `sd21` size is the real SD 2.1 architecture with random weights (same FLOPs and memory as the real weights).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from avatar.contracts.generation import GenerationRequest

REFERENCE_ENV = {"AVATAR_BASE_MODEL_NAME": ""}  # no shared base: every per-user model loads its own pipeline


def server_memory_mb(pid: int, weights: Path) -> float:
    """Memory of a process and all its descendants, in MB, counted as a GPU would hold it.

    Everything is proportional (PSS: shared pages split between the processes sharing them), except pages mapped
    from the base model's files: those count in full for every process that maps them. On CPU the kernel shares one
    page-cache copy of the weights between processes; on a GPU every process holds its own device copy.
    """
    weights_prefix = str(weights.resolve())
    total_kb = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            mapping_is_weights = False
            for line in Path(f"/proc/{current}/smaps").read_text().splitlines():
                fields = line.split()
                if not fields[0].endswith(":"):  # a mapping's header: address, perms, offset, dev, inode, path
                    mapping_is_weights = len(fields) >= 6 and fields[5].startswith(weights_prefix)
                elif fields[0] == ("Rss:" if mapping_is_weights else "Pss:"):
                    total_kb += int(fields[1])
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(child) for child in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total_kb / 1024


def gpu_memory_mb() -> float | None:
    """Device memory in use on GPU 0 (all processes), from nvidia-smi; None without a GPU."""
    import shutil
    import subprocess

    if shutil.which("nvidia-smi") is None:
        return None
    answer = subprocess.run(
        ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits", "--id=0"],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    )
    return float(answer.stdout.strip()) if answer.returncode == 0 and answer.stdout.strip() else None


def _find_process(matches: Callable[[list[bytes]], bool]) -> int | None:
    """The first process whose command line (arguments split) `matches`, through /proc."""
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                command = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if matches(command):
                return int(proc.name)
    return None


def _model_process_mb(name: str, weights: Path) -> float | None:
    """Memory of the stub process that serves Triton model `name`."""
    script = f"/{name}/1/model.py".encode()
    pid = _find_process(
        lambda command: command[0].endswith(b"triton_python_backend_stub") and any(script in a for a in command)
    )
    return None if pid is None else server_memory_mb(pid, weights)


def machine() -> str:
    """The machine the figures come from."""
    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)}, {os.cpu_count()} CPU cores"
    return f"{platform.machine()} CPU, {os.cpu_count()} cores, no GPU"


def train_user_models(users: int, *, base_model: str, cache_dir: Path, out: Path) -> list[Path]:
    """Train one small LoRA per user (different seeds and photos) and package each as a per-user model."""
    from avatar.contracts.training import TrainingOptions
    from avatar.diffusion.base_checkpoints import resolve_base_model
    from avatar.fine_tuning.class_images import LocalClassImageStore
    from avatar.fine_tuning.model_archive import package_user_model, triton_model_name, write_identity, write_metadata
    from avatar.fine_tuning.preparation import PrepareOptions, prepare_photos
    from avatar.fine_tuning.trainer import train_lora
    from avatar_dev.paths import shared_faces_dir

    base = resolve_base_model(base_model, cache_dir=cache_dir)
    photos = sorted(shared_faces_dir().glob("*.jpg"))
    prepared = prepare_photos([(p.name, p.read_bytes()) for p in photos[:4]], PrepareOptions(resolution=64))
    images = [image.pixels for image in prepared.images]
    archives = []
    for user in range(users):
        lora = out / f"lora-{user}"
        lora.mkdir(parents=True, exist_ok=True)
        options = TrainingOptions(
            steps=2, learning_rate=1e-3, num_class_images=1, class_image_steps=1, seed=user, resolution=64
        )
        metrics = train_lora(
            base.load(),
            images,
            options,
            lora,
            base_sha256=base.sha256,
            class_store=LocalClassImageStore(cache_dir / "class-images"),
            device="cpu",
        )
        write_metadata(
            lora,
            base_model=base_model,
            base_model_sha256=base.sha256,
            options=options,
            metrics=metrics,
            photos=len(images),
        )
        write_identity(lora, prepared.identity())
        archive = out / f"user-{user}.tar.gz"
        archive.write_bytes(package_user_model(lora, name=triton_model_name(f"user{user}", "v1")))
        archives.append(archive)
    return archives


def _measure_design(
    archives: list[Path],
    *,
    base_model: str,
    weights: Path,
    cache_dir: Path,
    request: GenerationRequest,
    env: dict[str, str],
    shared: bool,
    throughput: bool,
) -> dict[str, Any]:
    from avatar_dev.local.serving import local_serving

    with (
        tempfile.TemporaryDirectory() as work,
        local_serving(Path(work), cache_dir=cache_dir, base_model=base_model, env=env) as serving,
    ):
        import tritonclient.http as httpclient

        pid = _server_pid(serving.server.http_url)
        if shared:  # the container preloads the shared base (the setup model's job), before any user arrives
            client = httpclient.InferenceServerClient(serving.server.http_url, network_timeout=900)
            client.load_model("avatar_base")
            client.close()
        memory = [server_memory_mb(pid, weights)]
        device = [gpu_memory_mb()]
        colds, warms, names = [], [], []
        for archive in archives:
            start = time.perf_counter()
            name = serving.add_model(archive)
            serving.generate(name, request)
            colds.append(time.perf_counter() - start)
            warm = []
            for _ in range(3):  # CPU timings wander: the median of three warm requests
                start = time.perf_counter()
                serving.generate(name, request)
                warm.append(time.perf_counter() - start)
            warms.append(statistics.median(warm))
            memory.append(server_memory_mb(pid, weights))
            device.append(gpu_memory_mb())
            names.append(name)
        figures: dict[str, Any] = {
            "cold_start_s": [round(x, 3) for x in colds],
            "warm_request_s": [round(x, 3) for x in warms],
            "cold_start_overhead_s": round(statistics.median(c - w for c, w in zip(colds, warms, strict=True)), 3),
            "memory_mb": [round(m, 1) for m in memory],
            "memory_per_resident_user_mb": round((memory[-1] - memory[1]) / max(1, len(archives) - 1), 1),
            # The part of it that is the per-user model's own process (the rest grows inside the serving pipeline).
            "user_model_process_mb": [_round(_model_process_mb(name, weights)) for name in names],
        }
        measured = [value for value in device if value is not None]
        if len(measured) == len(device):
            figures["gpu_memory_mb"] = measured
            figures["gpu_memory_per_resident_user_mb"] = round(
                (measured[-1] - measured[1]) / max(1, len(archives) - 1), 1
            )
        if throughput:
            requests = [request.model_copy(update={"seed": 100 + i}) for i in range(len(names))]
            start = time.perf_counter()
            for name, each in zip(names, requests, strict=True):
                serving.generate(name, each)
            one_by_one = time.perf_counter() - start
            with ThreadPoolExecutor(len(names)) as pool:
                start = time.perf_counter()
                list(pool.map(serving.generate, names, requests))
                concurrent = time.perf_counter() - start
            figures |= {
                "one_by_one_s": round(one_by_one, 3),
                "concurrent_s": round(concurrent, 3),
                "mixed_users_throughput_ratio": round(one_by_one / concurrent, 2),
            }
        return figures


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _server_pid(http_url: str) -> int:
    """The tritonserver process listening on `http_url` (found through /proc, to measure its memory)."""
    port = f"--http-port={http_url.rsplit(':', 1)[1]}".encode()
    pid = _find_process(lambda command: command[0].endswith(b"tritonserver") and port in command)
    if pid is None:
        raise RuntimeError(f"no tritonserver on {http_url}")
    return pid


def run(*, size: str, users: int, as_json: bool, strategy: str | None = None) -> int:
    """Measure both designs and print one JSON line last."""
    from avatar.diffusion.base_checkpoints import resolve_base_model
    from avatar.lora_format import LORA_WEIGHTS

    cache_dir = Path(os.environ.get("AVATAR_CACHE_DIR", Path.home() / ".cache" / "avatar"))
    import torch

    # A few small steps are enough for cold start and memory on CPU; on a GPU, SD 2.1 runs at its real size.
    on_gpu = torch.cuda.is_available() and size == "sd21"
    side = 512 if on_gpu else 64
    # One step at SD 2.1 size on CPU: the cold-start overhead is a difference of two timings, and the noise of a
    # CPU generation grows with its length.
    steps = 20 if on_gpu else (4 if size == "tiny" else 1)
    request = GenerationRequest(prompt="a portrait photo", seed=7, steps=steps, width=side, height=side)
    env = {"AVATAR_BATCH_STRATEGY": strategy} if strategy else {}
    with tempfile.TemporaryDirectory() as scratch:
        archives = train_user_models(users, base_model=size, cache_dir=cache_dir, out=Path(scratch))
        weights = resolve_base_model(size, cache_dir=cache_dir).folder
        lora_mb = (Path(scratch) / "lora-0" / LORA_WEIGHTS).stat().st_size / 1e6
        ours = _measure_design(
            archives,
            base_model=size,
            weights=weights,
            cache_dir=cache_dir,
            request=request,
            env=env,
            shared=True,
            throughput=True,
        )
        if not as_json:
            print(f"ours: {json.dumps(ours)}")
        reference = _measure_design(
            archives,
            base_model=size,
            weights=weights,
            cache_dir=cache_dir,
            request=request,
            env=env | REFERENCE_ENV,
            shared=False,
            throughput=False,
        )
        if not as_json:
            print(f"reference: {json.dumps(reference)}")
    summary = {
        "size": size,
        "users": users,
        "steps": steps,
        "image_side": side,
        "batch_strategy": strategy or "mixed",
        "lora_file_mb": round(lora_mb, 2),
        "cold_start_overhead_s": ours["cold_start_overhead_s"],
        "reference_cold_start_overhead_s": reference["cold_start_overhead_s"],
        "cold_start_ratio": round(ours["cold_start_overhead_s"] / reference["cold_start_overhead_s"], 3),
        "memory_per_resident_user_mb": ours["memory_per_resident_user_mb"],
        "reference_memory_per_resident_user_mb": reference["memory_per_resident_user_mb"],
        "mixed_users_throughput_ratio": ours["mixed_users_throughput_ratio"],
        "user_model_process_mb": ours["user_model_process_mb"],
        "gpu_memory_per_resident_user_mb": ours.get("gpu_memory_per_resident_user_mb"),
        "reference_gpu_memory_per_resident_user_mb": reference.get("gpu_memory_per_resident_user_mb"),
        "ours": ours,
        "reference": reference,
        "machine": machine(),
    }
    print(json.dumps(summary))
    return 0

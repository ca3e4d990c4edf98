"""The adapter's metadata and the per-user Triton model archive (`models/<user>/<version>.tar.gz`)."""

from __future__ import annotations

import gzip
import io
import json
import re
import shutil
import tarfile
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from avatar.adapter_format import ADAPTER_WEIGHTS, METADATA_NAME
from avatar.training.options import TrainingOptions
from avatar.training.trainer import TrainingMetrics

ADAPTER_FOLDER = "adapter"
TRITON_MODELS = Path("gpu") / "triton"
USER_MODEL = "user_model"
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")


class UnsafeArchive(Exception):
    """An archive member that would land outside the model folder, or is not a plain file or folder."""


def write_metadata(
    adapter_dir: Path,
    *,
    base_model: str,
    base_model_sha256: str,
    options: TrainingOptions,
    metrics: TrainingMetrics,
    photos: int,
    user_id: str | None = None,
    job_id: str | None = None,
) -> dict[str, Any]:
    """Write `metadata.json` next to the weights: what it was trained on and how, and what it cost."""
    metadata = {
        "format": "diffusers-lora",
        "format_version": 1,
        "weights": ADAPTER_WEIGHTS,
        "base_model": base_model,
        "base_model_sha256": base_model_sha256,
        "token": options.token,
        "instance_prompt": options.personal_prompt(options.instance_prompt),
        "class_prompt": options.class_prompt,
        "prompt_placeholder": "<<TOK>>",
        "rank": options.rank,
        "alpha": options.lora_alpha,
        "text_encoder_rank": options.text_encoder_rank if options.train_text_encoder else None,
        "steps": options.steps,
        "learning_rate": options.learning_rate,
        "resolution": metrics.resolution,
        "seed": options.seed,
        "photos": photos,
        "user_id": user_id,
        "job_id": job_id,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "training": metrics.as_dict(),
        "options": options.model_dump(),
    }
    (adapter_dir / METADATA_NAME).write_text(json.dumps(metadata, indent=2) + "\n")
    return metadata


def triton_model_folder(name: str, start: Path | None = None) -> Path:
    """Find `gpu/triton/<name>` (the models the endpoint serves) above this package or `start`."""
    here = (start or Path(__file__)).resolve()
    for folder in [here, *here.parents]:
        candidate = folder / TRITON_MODELS / name
        if (candidate / "config.pbtxt").is_file():
            return candidate
    raise FileNotFoundError(f"{TRITON_MODELS / name} not found above {here}")


def user_model_template(start: Path | None = None) -> Path:
    """`gpu/triton/user_model`: the one template of every per-user model."""
    return triton_model_folder(USER_MODEL, start)


def model_name(user_id: str, version: str) -> str:
    """The Triton model name inside the archive (SageMaker addresses it by TargetModel, Triton by this)."""
    name = re.sub(r"[^A-Za-z0-9_-]", "_", f"avatar-{user_id}-{version}")[:128]
    if not _MODEL_NAME.match(name):
        raise ValueError(f"cannot make a Triton model name from {user_id!r}, {version!r}")
    return name


def package_user_model(adapter_dir: Path, *, name: str, template: Path | None = None) -> bytes:
    """The per-user model as a .tar.gz: `<name>/config.pbtxt`, `<name>/1/model.py`, `<name>/1/adapter/*`."""
    template = template or user_model_template()
    buffer = io.BytesIO()
    # gzip's header carries a timestamp too: zero it, or two packagings a second apart differ.
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as archive,
    ):
        members: list[tuple[Path, str]] = [
            (path, f"{name}/{path.relative_to(template).as_posix()}")
            for path in sorted(template.rglob("*"))
            if path.is_file() and "__pycache__" not in path.parts
        ]
        members += [
            (adapter_dir / file, f"{name}/1/{ADAPTER_FOLDER}/{file}") for file in (ADAPTER_WEIGHTS, METADATA_NAME)
        ]
        for path, arcname in members:
            info = tarfile.TarInfo(arcname)
            info.size = path.stat().st_size
            info.mode = 0o644
            info.mtime = 0  # same inputs, same archive
            with path.open("rb") as handle:
                archive.addfile(info, handle)
    return buffer.getvalue()


def check_members(members: Iterable[tarfile.TarInfo]) -> str:
    """Every member a regular file or folder under one top folder with a safe name; returns that folder's name."""
    tops = set()
    for member in members:
        parts = Path(member.name).parts
        if (
            member.name.startswith("/")
            or ".." in parts
            or not (member.isfile() or member.isdir())
            or not parts
            or not _MODEL_NAME.match(parts[0])
        ):
            raise UnsafeArchive(f"refusing archive member {member.name!r}")
        tops.add(parts[0])
    if len(tops) != 1:
        raise UnsafeArchive(f"expected one model folder, found {sorted(tops)}")
    return tops.pop()


def extract_user_model(archive: bytes | Path, destination: Path) -> Path:
    """Safely extract a per-user model archive; returns the model folder."""
    source = archive.read_bytes() if isinstance(archive, Path) else archive
    with tarfile.open(fileobj=io.BytesIO(source), mode="r:gz") as tar:
        name = check_members(tar.getmembers())
        destination.mkdir(parents=True, exist_ok=True)
        target = destination / name
        if target.exists():
            shutil.rmtree(target)
        tar.extractall(destination, filter="data")  # the stdlib's own guard, on top of the check above
    return target

"""The LoRA's metadata and the per-user Triton model archive (`models/<user>/<version>.tar.gz`)."""

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
from typing import TYPE_CHECKING, Any, BinaryIO

from avatar.contracts.training import TrainingFigures, TrainingOptions
from avatar.errors import UnsafeArchive
from avatar.lora_format import IDENTITY_NAME, LORA_FOLDER, LORA_WEIGHTS, METADATA_NAME

if TYPE_CHECKING:
    from avatar.identity.likeness import Identity

TRITON_MODELS = Path("gpu") / "triton"
USER_MODEL = "user_model"
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")


def write_metadata(
    lora_dir: Path,
    *,
    base_model: str,
    base_model_sha256: str,
    options: TrainingOptions,
    metrics: TrainingFigures,
    photos: int,
    user_id: str | None = None,
    job_id: str | None = None,
) -> dict[str, Any]:
    """Write `metadata.json` next to the weights: what it was trained on and how, and what it cost."""
    metadata = {
        "format": "diffusers-lora",
        "format_version": 1,
        "weights": LORA_WEIGHTS,
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
        "training": metrics.model_dump(mode="json"),
        "options": options.model_dump(),
    }
    (lora_dir / METADATA_NAME).write_text(json.dumps(metadata, indent=2) + "\n")
    return metadata


def write_identity(lora_dir: Path, identity: Identity | None) -> None:
    """Write the person the LoRA was trained on as `identity.json` (nothing without one): likeness is scored from
    it, never from the photos."""
    if identity is not None:
        (lora_dir / IDENTITY_NAME).write_text(json.dumps(identity.to_json()) + "\n")


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


def triton_model_name(user_id: str, version: str) -> str:
    """The Triton model name inside the archive (SageMaker addresses it by TargetModel, Triton by this)."""
    name = re.sub(r"[^A-Za-z0-9_-]", "_", f"avatar-{user_id}-{version}")[:128]
    if not _MODEL_NAME.fullmatch(name):
        raise ValueError(f"cannot make a Triton model name from {user_id!r}, {version!r}")
    return name


def with_execution_env(config: str, execution_env: str) -> str:
    """A Python-backend config.pbtxt that runs its model in the conda-pack environment at `execution_env`."""
    if "EXECUTION_ENV_PATH" in config:
        raise ValueError("the config already names an execution environment")
    return config.rstrip("\n") + (
        "\n# The Python environment (conda-pack) the stub runs in: torch, diffusers, peft and the avatar package.\n"
        f'parameters: {{ key: "EXECUTION_ENV_PATH", value: {{ string_value: "{execution_env}" }} }}\n'
    )


def write_reproducible_tar_gz(members: Iterable[tuple[str, bytes | Path]], target: BinaryIO) -> None:
    """Write a .tar.gz of (name, content or file) with zeroed times and fixed modes: same inputs, same bytes.
    Files are streamed, so a multi-gigabyte member never sits in memory."""
    # gzip's header carries a timestamp and the file's name: zero both, or the same inputs give other bytes.
    with (
        gzip.GzipFile(filename="", fileobj=target, mode="wb", mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as archive,
    ):
        for arcname, content in members:
            info = tarfile.TarInfo(arcname)
            info.mode = 0o644
            info.mtime = 0
            if isinstance(content, Path):
                info.size = content.stat().st_size
                with content.open("rb") as handle:
                    archive.addfile(info, handle)
            else:
                info.size = len(content)
                archive.addfile(info, io.BytesIO(content))


def reproducible_tar_gz(members: Iterable[tuple[str, bytes | Path]]) -> bytes:
    """`write_reproducible_tar_gz` into memory, for small archives."""
    buffer = io.BytesIO()
    write_reproducible_tar_gz(members, buffer)
    return buffer.getvalue()


def folder_files(folder: Path) -> list[Path]:
    """A folder's files in a stable order, without Python's bytecode caches."""
    return [path for path in sorted(folder.rglob("*")) if path.is_file() and "__pycache__" not in path.parts]


def model_folder_members(
    folder: Path, name: str, *, execution_env: str | None = None
) -> list[tuple[str, bytes | Path]]:
    """A Triton model folder as archive members under `name/`; with `execution_env`, its config.pbtxt runs the model
    in that conda-pack environment."""
    members: list[tuple[str, bytes | Path]] = []
    for path in folder_files(folder):
        arcname = f"{name}/{path.relative_to(folder).as_posix()}"
        if path.name == "config.pbtxt" and execution_env:
            members.append((arcname, with_execution_env(path.read_text(), execution_env).encode()))
        else:
            members.append((arcname, path))
    return members


def package_user_model(
    lora_dir: Path, *, name: str, template: Path | None = None, execution_env: str | None = None
) -> bytes:
    """The per-user model as a .tar.gz: `<name>/config.pbtxt`, `<name>/1/model.py`, `<name>/1/lora/*` (the weights,
    the metadata and, where the photos had faces the models could describe, the identity).

    `execution_env`: where the multi-model endpoint keeps the models' conda-pack environment (on SageMaker, where
    the image's own Python lacks torch and diffusers); None for a Triton whose Python has them (the local one).
    """
    members = model_folder_members(template or user_model_template(), name, execution_env=execution_env)
    files = [LORA_WEIGHTS, METADATA_NAME, *([IDENTITY_NAME] if (lora_dir / IDENTITY_NAME).is_file() else [])]
    members += [(f"{name}/1/{LORA_FOLDER}/{file}", lora_dir / file) for file in files]
    return reproducible_tar_gz(members)


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
            or not _MODEL_NAME.fullmatch(parts[0])
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

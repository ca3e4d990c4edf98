"""What the setup model does once per container: put the models' Python environment where their configs name it,
and fetch the shared base model."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from avatar.diffusion.base_checkpoints import resolve_base_model
from avatar.serving.settings import ServingSettings

# The conda-pack archive inside the setup model's folder (its config runs the setup model in it).
BUNDLED_ENV = "avatar_env.tar.gz"


@dataclass(frozen=True)
class PreparedContainer:
    """The local copies the serving models use."""

    base_model: Path
    base_model_sha256: str
    execution_env: Path | None


def install_execution_env(source: Path, target: Path) -> bool:
    """Copy the environment archive to `target` unless the same file is there; True when it copied.

    Triton's Python backend unpacks an EXECUTION_ENV_PATH once and again only when its modification time changes,
    so an unchanged archive is left alone. The copy is renamed into place, so a model loading meanwhile never sees
    half an archive.
    """
    if target.is_file() and target.stat().st_size == source.stat().st_size:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    os.close(handle)
    try:
        shutil.copyfile(source, staging)
        os.replace(staging, target)
    finally:
        Path(staging).unlink(missing_ok=True)
    return True


def prepare_container(settings: ServingSettings, *, bundled_env: Path | None = None) -> PreparedContainer:
    """Install the bundled environment where the models expect it, and fetch (or build) the base model; idempotent."""
    environment = None
    if settings.triton_execution_env and bundled_env is not None and bundled_env.is_file():
        environment = Path(settings.triton_execution_env)
        install_execution_env(bundled_env, environment)
    base = resolve_base_model(settings.base_model, cache_dir=settings.cache_dir)
    return PreparedContainer(base_model=base.folder, base_model_sha256=base.sha256, execution_env=environment)

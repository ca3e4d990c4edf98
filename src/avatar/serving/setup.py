"""What the setup model does once per container: fetch the shared base and unpack the Python execution environment."""

from __future__ import annotations

import hashlib
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from avatar.cache import build_once
from avatar.diffusion.base_model import resolve_base_model
from avatar.serving.settings import ServingSettings


@dataclass(frozen=True)
class PreparedContainer:
    """The local copies the serving models use."""

    base_model: Path
    base_model_sha256: str
    execution_env: Path | None


def unpack_execution_env(source: str, *, cache_dir: Path) -> Path:
    """Unpack a conda-pack archive (a local path or s3://bucket/key) once; later calls return the same folder."""
    folder = cache_dir / "execution-env" / hashlib.sha256(source.encode()).hexdigest()[:16]

    def unpack(staging: Path) -> None:
        with tempfile.TemporaryDirectory() as scratch:
            archive = Path(source)
            if source.startswith("s3://"):
                import boto3

                bucket, _, key = source.removeprefix("s3://").partition("/")
                archive = Path(scratch) / "env.tar.gz"
                boto3.client("s3").download_file(bucket, key, str(archive))
            with tarfile.open(archive) as tar:
                tar.extractall(staging, filter="data")
        (staging / ".complete").touch()

    return build_once(folder, marker=".complete", build=unpack)


def prepare_container(settings: ServingSettings) -> PreparedContainer:
    """Fetch (or build) the base model and the execution environment; idempotent, so safe to call again."""
    base = resolve_base_model(settings.base_model, cache_dir=settings.cache_dir)
    environment = (
        unpack_execution_env(settings.execution_env, cache_dir=settings.cache_dir) if settings.execution_env else None
    )
    return PreparedContainer(base_model=base.folder, base_model_sha256=base.sha256, execution_env=environment)

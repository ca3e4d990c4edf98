"""Where a base model comes from: `tiny`/`sd21` presets, a local diffusers folder, an `s3://` prefix or a hub id.

Every source ends as a local diffusers folder loaded by `StableDiffusionPipeline.from_pretrained`: one code path.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from avatar.cache import build_once
from avatar.diffusion.presets import PRESETS, ensure_preset
from avatar.errors import BaseModelUnavailable

if TYPE_CHECKING:
    import torch
    from diffusers import StableDiffusionPipeline
    from mypy_boto3_s3.client import S3Client


@dataclass(frozen=True)
class BaseCheckpoint:
    """A base model (a spec: tiny, sd21, a folder, s3://..., a hub id) resolved to a local diffusers folder."""

    spec: str
    folder: Path

    @property
    def sha256(self) -> str:
        """Content hash of the folder's config and weight files (what the LoRA was trained against)."""
        return folder_sha256(self.folder)

    @property
    def native_resolution(self) -> int:
        """The image side the base model was trained at, from its config files (no weights loaded): the UNet's sample
        size times the VAE's downscale, as diffusers computes it."""
        try:
            unet = json.loads((self.folder / "unet" / "config.json").read_text())
            vae = json.loads((self.folder / "vae" / "config.json").read_text())
        except (OSError, ValueError) as exc:
            raise BaseModelUnavailable(f"{self.spec} has no readable unet/vae config: {exc}") from exc
        sample_size = unet["sample_size"]
        side = sample_size[0] if isinstance(sample_size, list) else sample_size
        return int(side) << (len(vae["block_out_channels"]) - 1)  # the VAE halves the side once per extra block

    def load(self, *, dtype: torch.dtype | None = None, device: str | torch.device = "cpu") -> StableDiffusionPipeline:
        """Load the pipeline (no safety checker: the base models we ship and the SD 2.1 base have none)."""
        import diffusers
        import torch
        import transformers
        from diffusers import StableDiffusionPipeline

        # Loading bars would interleave with the training bar and the logs; loading takes seconds.
        diffusers.utils.logging.disable_progress_bar()
        transformers.utils.logging.disable_progress_bar()
        pipeline = StableDiffusionPipeline.from_pretrained(
            self.folder, dtype=dtype or torch.float32, safety_checker=None, requires_safety_checker=False
        )
        pipeline.set_progress_bar_config(disable=True)
        return cast("StableDiffusionPipeline", pipeline.to(device))


def resolve_base_model(spec: str, *, cache_dir: Path, s3_client: S3Client | None = None) -> BaseCheckpoint:
    """Turn a base-model spec into a local folder, fetching and caching it when it is remote."""
    if spec in PRESETS:
        return BaseCheckpoint(spec, ensure_preset(spec, cache_dir / "presets"))
    if spec.startswith("s3://"):
        if s3_client is None:
            import boto3

            s3_client = boto3.client("s3")
        return BaseCheckpoint(spec, _download_s3_prefix(spec, cache_dir / "s3", s3_client))
    path = Path(spec).expanduser()
    if path.exists():
        if not (path / "model_index.json").is_file():
            raise BaseModelUnavailable(f"{spec} is not a diffusers folder (no model_index.json)")
        return BaseCheckpoint(spec, path)
    if spec.count("/") == 1 and not spec.startswith((".", "/")):
        return BaseCheckpoint(spec, _download_hub(spec, cache_dir / "hub"))
    raise BaseModelUnavailable(f"unknown base model {spec!r}: use tiny, sd21, a folder, s3://bucket/prefix or a hub id")


def _download_s3_prefix(uri: str, cache_dir: Path, client: S3Client) -> Path:
    """Mirror `s3://bucket/prefix/` into the cache once; a marker file says the copy is complete."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    prefix = prefix.rstrip("/") + "/" if prefix else ""

    def download(staging: Path) -> None:
        paginator = client.get_paginator("list_objects_v2")
        count = 0
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for entry in page.get("Contents", []):
                relative = entry["Key"][len(prefix) :]
                target = (staging / relative).resolve()
                if not relative or relative.endswith("/"):
                    continue
                if not target.is_relative_to(staging.resolve()):
                    raise BaseModelUnavailable(f"refusing object key outside the prefix: {entry['Key']}")
                target.parent.mkdir(parents=True, exist_ok=True)
                client.download_file(bucket, entry["Key"], str(target))
                count += 1
        if not (staging / "model_index.json").is_file():
            raise BaseModelUnavailable(f"{uri} holds no diffusers model ({count} objects, no model_index.json)")
        (staging / ".complete").touch()

    folder = cache_dir / hashlib.sha256(f"{bucket}/{prefix}".encode()).hexdigest()[:16]  # one copy per prefix
    try:
        return build_once(folder, marker=".complete", build=download)
    except (ClientError, BotoCoreError) as exc:
        raise BaseModelUnavailable(f"could not download {uri}: {exc}") from exc


def _download_hub(repo_id: str, cache_dir: Path) -> Path:
    """A hub snapshot of the files a StableDiffusionPipeline needs (safetensors only)."""
    try:
        from huggingface_hub import snapshot_download

        folder = snapshot_download(
            repo_id,
            cache_dir=cache_dir,
            allow_patterns=["*.json", "*.txt", "*.safetensors"],
            ignore_patterns=["*.fp16.*", "*ema*", "*.non_ema.*"],
        )
    except Exception as exc:  # huggingface_hub raises many types: network, auth, missing repo
        raise BaseModelUnavailable(f"could not fetch {repo_id} from the hub: {exc}") from exc
    return Path(folder)


_HASHES: dict[tuple[str, float, int], str] = {}
_HASH_MEMO = ".avatar-sha256"


def folder_sha256(folder: Path) -> str:
    """SHA-256 over the sorted relative paths and contents of a model folder's json, txt and safetensors files."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in {".json", ".txt", ".safetensors"})
    stamp = (str(folder.resolve()), max((p.stat().st_mtime for p in files), default=0.0), len(files))
    if stamp in _HASHES:
        return _HASHES[stamp]
    # Hashing SD 2.1 (2.6 GB) takes seconds; every process that loads the base would pay it. Keep it beside the files.
    memo = folder / _HASH_MEMO
    with contextlib.suppress(OSError, ValueError):
        saved = json.loads(memo.read_text())
        if saved["stamp"] == [stamp[1], stamp[2]]:
            _HASHES[stamp] = str(saved["sha256"])
            return _HASHES[stamp]
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    _HASHES[stamp] = digest.hexdigest()
    with contextlib.suppress(OSError):  # a read-only folder is hashed again next time
        memo.write_text(json.dumps({"stamp": [stamp[1], stamp[2]], "sha256": _HASHES[stamp]}))
    return _HASHES[stamp]


def pipeline_resolution(pipeline: Any) -> int:
    """The image side the base model was trained at (UNet sample size times the VAE's downscale)."""
    return int(pipeline.unet.config.sample_size) * int(pipeline.vae_scale_factor)

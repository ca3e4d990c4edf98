"""Upload what the endpoints load: before `sam deploy`, to the artifact bucket; after it, the setup model to the
stack's bucket, under the multi-model endpoint's `models/` prefix."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from avatar_dev.deploy.artifacts import content_key

SETUP_TARGET_MODEL = "_system/avatar_setup.tar.gz"  # below models/: user ids never start with "_"


def upload_training_code(s3: Any, artifact: Path, *, bucket: str, prefix: str = "avatar") -> str:
    """Upload the LMI code artifact under a content-addressed key; returns the key (the TrainingCodeKey parameter)."""
    key = content_key(prefix, artifact)
    s3.upload_file(str(artifact), bucket, key)
    return key


def upload_base_model(
    s3: Any, folder: Path, *, bucket: str, prefix: str, log: Callable[[str], None] = print
) -> tuple[int, int]:
    """Mirror a diffusers folder to `s3://bucket/prefix/`, skipping files already there with the same size;
    returns (uploaded, skipped)."""
    if not (folder / "model_index.json").is_file():
        raise FileNotFoundError(f"{folder} is not a diffusers folder (no model_index.json)")
    prefix = prefix.strip("/") + "/"
    present: dict[str, int] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        present.update({entry["Key"]: entry["Size"] for entry in page.get("Contents", [])})
    uploaded = skipped = 0
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and ".cache" not in p.parts):
        key = prefix + path.relative_to(folder).as_posix()
        if present.get(key) == path.stat().st_size:
            skipped += 1
            continue
        log(f"uploading {key} ({path.stat().st_size / 1e6:.1f} MB)")
        s3.upload_file(str(path), bucket, key)
        uploaded += 1
    return uploaded, skipped


def stack_outputs(cloudformation: Any, stack_name: str) -> dict[str, str]:
    """The stack's outputs by key."""
    stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    return {output["OutputKey"]: output["OutputValue"] for output in stacks[0].get("Outputs", [])}


def publish_setup_model(s3: Any, artifact: Path, *, bucket: str) -> str:
    """Put the setup model where the multi-model endpoint finds it as TargetModel `_system/avatar_setup.tar.gz`."""
    key = f"models/{SETUP_TARGET_MODEL}"
    s3.upload_file(str(artifact), bucket, key)
    return key

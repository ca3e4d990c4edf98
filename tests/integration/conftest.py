"""moto in server mode as the local AWS, with the resources built from template.yaml for each test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from avatar.diffusion.base_checkpoints import BaseCheckpoint, resolve_base_model
from avatar_dev.local.aws import local_aws
from avatar_dev.local.stack import IntakeStack, start_intake_stack
from services.upload import dependencies
from tests.helpers import built_once


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """One moto server for the session; every test gets its own resources in it."""
    with local_aws() as endpoint:
        yield endpoint


@pytest.fixture
def intake_stack(moto_endpoint: str) -> Iterator[IntakeStack]:
    """Fresh resources from template.yaml and the functions' environments as the template sets them."""
    saved = dict(os.environ)
    yield start_intake_stack()
    os.environ.clear()
    os.environ.update(saved)
    dependencies.reset()


@pytest.fixture(scope="session")
def tiny(cache_dir: Path) -> BaseCheckpoint:
    """The embedded tiny Stable Diffusion pipeline."""
    return resolve_base_model("tiny", cache_dir=cache_dir)


@pytest.fixture(scope="session")
def user_models(cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Ten users' per-user model archives, each from its own (short) training run."""
    from avatar_dev.bench.serving import train_user_models

    return built_once(
        tmp_path_factory,
        "user-models",
        lambda folder: train_user_models(10, base_model="tiny", cache_dir=cache_dir, out=folder),
    )

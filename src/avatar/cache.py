"""Folders built once into a local cache, safely under concurrent builders (two jobs on one machine)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def build_once(folder: Path, *, marker: str, build: Callable[[Path], None]) -> Path:
    """`folder` when `folder/marker` exists; else `build` fills a staging folder that is renamed into place atomically.

    A concurrent builder that loses the race drops its copy; a failed build leaves nothing behind.
    """
    if (folder / marker).exists():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        build(staging)
        try:
            staging.rename(folder)
        except OSError:
            if not (folder / marker).exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder

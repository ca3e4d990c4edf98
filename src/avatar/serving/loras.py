"""Users' LoRAs on one shared base: what a LoRA folder must hold, and the LRU cache of loaded LoRAs (stdlib only: the
thin per-user model checks its LoRA with it)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from avatar.errors import LoraRefused
from avatar.lora_format import IDENTITY_NAME, LORA_WEIGHTS, METADATA_NAME

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Lora:
    """One user's LoRA on disk, checked against the base it will run on."""

    lora_id: str  # content address of the weights: the same file is loaded once, whoever asks
    directory: Path
    token: str
    size_bytes: int
    identity_file: Path | None = None  # the person it was trained on (identity.json), for likeness scores


def check_lora(directory: Path, *, base_sha256: str) -> tuple[str, int]:
    """Check a LoRA folder (weights, metadata, base hash) without loading it; returns (token, weights bytes).

    Raises LoraRefused with the reason. Reads the weights' header, not the tensors: cheap enough for model load.
    """
    weights, metadata_file = directory / LORA_WEIGHTS, directory / METADATA_NAME
    for required in (weights, metadata_file):
        if not required.is_file() or required.is_symlink():
            raise LoraRefused(f"LoRA {directory} has no {required.name}")
    try:
        metadata: dict[str, Any] = json.loads(metadata_file.read_text())
        token, trained_on = str(metadata["token"]), str(metadata["base_model_sha256"])
    except (ValueError, KeyError, TypeError) as exc:
        raise LoraRefused(f"LoRA {directory} has unreadable {METADATA_NAME}: {exc}") from exc
    if trained_on != base_sha256:
        raise LoraRefused(
            f"LoRA {directory} was trained on base {trained_on[:12]}, this server runs base {base_sha256[:12]}"
        )
    size = weights.stat().st_size
    with weights.open("rb") as handle:
        head = handle.read(8)
        header_length = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
        header = handle.read(header_length) if 0 < header_length < 100 * 1024 * 1024 else b""
    _check_safetensors(header_length, header, size, weights)
    return token, size


def open_lora(directory: Path, *, base_sha256: str) -> Lora:
    """Check a LoRA folder and name it by the content of its weights."""
    token, size = check_lora(directory, base_sha256=base_sha256)
    digest = hashlib.sha256((directory / LORA_WEIGHTS).read_bytes()).hexdigest()
    identity = directory / IDENTITY_NAME
    return Lora(
        lora_id=f"a{digest[:20]}",
        directory=directory,
        token=token,
        size_bytes=size,
        identity_file=identity if identity.is_file() and not identity.is_symlink() else None,
    )


def _check_safetensors(header_length: int, header: bytes, size: int, path: Path) -> None:
    """The safetensors layout: u64 header length, JSON header, then tensor bytes that add up to the file size."""
    try:
        entries = json.loads(header)
        end = max((int(e["data_offsets"][1]) for name, e in entries.items() if name != "__metadata__"), default=0)
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        raise LoraRefused(f"{path} is not a safetensors file: {exc}") from exc
    if not entries or 8 + header_length + end != size:
        raise LoraRefused(f"{path} is truncated or padded ({size} bytes, header says {8 + header_length + end})")


SHARED_BASE_RECORD = "shared-base.json"


def publish_base(cache_dir: Path, *, spec: str, sha256: str) -> None:
    """Say which base the shared model runs, for per-user models that check their LoRA at load."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    record = cache_dir / SHARED_BASE_RECORD
    staging = record.with_suffix(f".{os.getpid()}.tmp")
    staging.write_text(json.dumps({"base_model": spec, "base_model_sha256": sha256}))
    staging.replace(record)


def published_base(cache_dir: Path) -> str:
    """The SHA-256 of the base the shared model runs; raises LoraRefused when no shared base published one."""
    try:
        return str(json.loads((cache_dir / SHARED_BASE_RECORD).read_text())["base_model_sha256"])
    except (OSError, ValueError, KeyError) as exc:
        raise LoraRefused(f"no shared base has published its hash in {cache_dir}: {exc}") from exc


class LoraHost(Protocol):
    """Where LoRAs are loaded: the shared pipeline."""

    def load_lora(self, lora: Lora) -> None:
        """Load `lora` under `lora.lora_id`."""

    def unload_lora(self, lora_id: str) -> None:
        """Free a loaded LoRA."""


class LoraCache:
    """Least-recently-used LoRAs kept loaded within a count limit and a memory budget (weights-file bytes)."""

    def __init__(self, host: LoraHost, *, max_loras: int, max_bytes: int) -> None:
        if max_loras < 1 or max_bytes < 1:
            raise ValueError("the LoRA cache needs room for at least one LoRA")
        self._host = host
        self._max_loras = max_loras
        self._max_bytes = max_bytes
        self._loaded: OrderedDict[str, Lora] = OrderedDict()
        self._lock = threading.Lock()
        self.loads = 0
        self.evictions = 0

    @property
    def max_loras(self) -> int:
        """How many LoRAs may be loaded at once."""
        return self._max_loras

    @property
    def resident(self) -> list[str]:
        """Loaded LoRA ids, least recently used first."""
        return list(self._loaded)

    @property
    def resident_bytes(self) -> int:
        """Bytes of the loaded LoRAs' weights."""
        return sum(lora.size_bytes for lora in self._loaded.values())

    def drop(self, lora_id: str) -> bool:
        """Unload one LoRA now (its user was erased); False when it was not loaded."""
        with self._lock:
            if self._loaded.pop(lora_id, None) is None:
                return False
            self._host.unload_lora(lora_id)
            logger.info("dropped LoRA %s", lora_id)
            return True

    def ensure(self, lora: Lora, *, keep: frozenset[str] = frozenset()) -> None:
        """Make `lora` loaded and most recently used, evicting the least recently used ones (never `keep`)."""
        if lora.size_bytes > self._max_bytes:
            raise LoraRefused(f"LoRA {lora.directory} ({lora.size_bytes} B) exceeds the cache budget")
        with self._lock:
            if lora.lora_id in self._loaded:
                self._loaded.move_to_end(lora.lora_id)
                return
            protected = keep | {lora.lora_id}
            while self._loaded and (
                len(self._loaded) + 1 > self._max_loras or self.resident_bytes + lora.size_bytes > self._max_bytes
            ):
                victim = next((name for name in self._loaded if name not in protected), None)
                if victim is None:
                    break
                self._loaded.pop(victim)
                self._host.unload_lora(victim)
                self.evictions += 1
                logger.info("evicted LoRA %s", victim)
            self._host.load_lora(lora)
            self._loaded[lora.lora_id] = lora
            self.loads += 1

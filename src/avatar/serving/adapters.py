"""Users' adapters on one shared base: what an adapter folder must hold, and the LRU cache of loaded adapters."""

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

from avatar.adapter_format import ADAPTER_WEIGHTS, METADATA_NAME

logger = logging.getLogger(__name__)


class AdapterRefused(Exception):
    """An adapter folder that must not be served: files missing, unreadable metadata, or trained on another base."""


@dataclass(frozen=True)
class Adapter:
    """One user's adapter on disk, checked against the base it will run on."""

    adapter_id: str  # content address of the weights: the same file is loaded once, whoever asks
    directory: Path
    token: str
    size_bytes: int


def check_adapter(directory: Path, *, base_sha256: str) -> tuple[str, int]:
    """Check an adapter folder (weights, metadata, base hash) without loading it; returns (token, weights bytes).

    Raises AdapterRefused with the reason. Reads the weights' header, not the tensors: cheap enough for model load.
    """
    weights, metadata_file = directory / ADAPTER_WEIGHTS, directory / METADATA_NAME
    for required in (weights, metadata_file):
        if not required.is_file() or required.is_symlink():
            raise AdapterRefused(f"adapter {directory} has no {required.name}")
    try:
        metadata: dict[str, Any] = json.loads(metadata_file.read_text())
        token, trained_on = str(metadata["token"]), str(metadata["base_model_sha256"])
    except (ValueError, KeyError, TypeError) as exc:
        raise AdapterRefused(f"adapter {directory} has unreadable {METADATA_NAME}: {exc}") from exc
    if trained_on != base_sha256:
        raise AdapterRefused(
            f"adapter {directory} was trained on base {trained_on[:12]}, this server runs base {base_sha256[:12]}"
        )
    size = weights.stat().st_size
    with weights.open("rb") as handle:
        head = handle.read(8)
        header_length = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
        header = handle.read(header_length) if 0 < header_length < 100 * 1024 * 1024 else b""
    _check_safetensors(header_length, header, size, weights)
    return token, size


def open_adapter(directory: Path, *, base_sha256: str) -> Adapter:
    """Check an adapter folder and name it by the content of its weights."""
    token, size = check_adapter(directory, base_sha256=base_sha256)
    digest = hashlib.sha256((directory / ADAPTER_WEIGHTS).read_bytes()).hexdigest()
    return Adapter(adapter_id=f"a{digest[:20]}", directory=directory, token=token, size_bytes=size)


def _check_safetensors(header_length: int, header: bytes, size: int, path: Path) -> None:
    """The safetensors layout: u64 header length, JSON header, then tensor bytes that add up to the file size."""
    try:
        entries = json.loads(header)
        end = max((int(e["data_offsets"][1]) for name, e in entries.items() if name != "__metadata__"), default=0)
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        raise AdapterRefused(f"{path} is not a safetensors file: {exc}") from exc
    if not entries or 8 + header_length + end != size:
        raise AdapterRefused(f"{path} is truncated or padded ({size} bytes, header says {8 + header_length + end})")


SHARED_BASE_RECORD = "shared-base.json"


def publish_base(cache_dir: Path, *, spec: str, sha256: str) -> None:
    """Say which base the shared model runs, for per-user models that check their adapter at load."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    record = cache_dir / SHARED_BASE_RECORD
    staging = record.with_suffix(f".{os.getpid()}.tmp")
    staging.write_text(json.dumps({"base_model": spec, "base_model_sha256": sha256}))
    staging.replace(record)


def published_base(cache_dir: Path) -> str:
    """The SHA-256 of the base the shared model runs; raises AdapterRefused when no shared base published one."""
    try:
        return str(json.loads((cache_dir / SHARED_BASE_RECORD).read_text())["base_model_sha256"])
    except (OSError, ValueError, KeyError) as exc:
        raise AdapterRefused(f"no shared base has published its hash in {cache_dir}: {exc}") from exc


class AdapterHost(Protocol):
    """Where adapters are loaded: the shared pipeline."""

    def load_adapter(self, adapter: Adapter) -> None:
        """Load `adapter` under `adapter.adapter_id`."""

    def unload_adapter(self, adapter_id: str) -> None:
        """Free a loaded adapter."""


class AdapterCache:
    """Least-recently-used adapters kept loaded within a count limit and a memory budget (weights-file bytes)."""

    def __init__(self, host: AdapterHost, *, max_adapters: int, max_bytes: int) -> None:
        if max_adapters < 1 or max_bytes < 1:
            raise ValueError("the adapter cache needs room for at least one adapter")
        self._host = host
        self._max_adapters = max_adapters
        self._max_bytes = max_bytes
        self._loaded: OrderedDict[str, Adapter] = OrderedDict()
        self._lock = threading.Lock()
        self.loads = 0
        self.evictions = 0

    @property
    def max_adapters(self) -> int:
        """How many adapters may be loaded at once."""
        return self._max_adapters

    @property
    def resident(self) -> list[str]:
        """Loaded adapter ids, least recently used first."""
        return list(self._loaded)

    @property
    def resident_bytes(self) -> int:
        """Bytes of the loaded adapters' weights."""
        return sum(adapter.size_bytes for adapter in self._loaded.values())

    def ensure(self, adapter: Adapter, *, keep: frozenset[str] = frozenset()) -> None:
        """Make `adapter` loaded and most recently used, evicting the least recently used ones (never `keep`)."""
        if adapter.size_bytes > self._max_bytes:
            raise AdapterRefused(f"adapter {adapter.directory} ({adapter.size_bytes} B) exceeds the cache budget")
        with self._lock:
            if adapter.adapter_id in self._loaded:
                self._loaded.move_to_end(adapter.adapter_id)
                return
            protected = keep | {adapter.adapter_id}
            while self._loaded and (
                len(self._loaded) + 1 > self._max_adapters or self.resident_bytes + adapter.size_bytes > self._max_bytes
            ):
                victim = next((name for name in self._loaded if name not in protected), None)
                if victim is None:
                    break
                self._loaded.pop(victim)
                self._host.unload_adapter(victim)
                self.evictions += 1
                logger.info("evicted adapter %s", victim)
            self._host.load_adapter(adapter)
            self._loaded[adapter.adapter_id] = adapter
            self.loads += 1

"""One base pipeline serving every user's adapter: adapters switch per request, the base is never reloaded.

A dynamic batch holds requests of several users. Requests that share the sampler settings (steps, guidance, size)
run as one pipeline call. With the `mixed` strategy that call carries every user's rows at once: PEFT's mixed-batch
LoRA forward (`adapter_names`, one name per row) applies each row's own adapter. With `grouped` the rows of one
adapter run together and adapters are switched between calls. `avatar bench serving` measures both.
"""

from __future__ import annotations

import contextlib
import logging
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from avatar.adapter_format import ADAPTER_WEIGHTS
from avatar.diffusion.base_model import resolve_base_model
from avatar.serving.adapters import Adapter, AdapterCache, open_adapter, publish_base
from avatar.serving.generation import GeneratedImage, GenerationRequest, generate_rows, personalize
from avatar.training.trainer import default_device

logger = logging.getLogger(__name__)

BatchStrategy = Literal["mixed", "grouped"]


@dataclass(frozen=True)
class AdapterRequest:
    """A generation request for one user's adapter."""

    adapter: Adapter
    request: GenerationRequest


def _sampler_settings(item: AdapterRequest) -> tuple[int, float, int | None, int | None]:
    request = item.request
    return (request.steps, request.guidance_scale, request.width, request.height)


@contextlib.contextmanager
def per_row_adapters(modules: Sequence[Any], adapter_names: list[str]) -> Iterator[None]:
    """While inside, every LoRA layer of `modules` applies row i's adapter to row i (classifier-free guidance
    doubles the rows, so the names repeat to fit each layer's batch)."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    def inject(_module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        rows = len(args[0]) if args else len(kwargs["x"])
        return args, kwargs | {"adapter_names": adapter_names * (rows // len(adapter_names))}

    handles = [
        layer.register_forward_pre_hook(inject, with_kwargs=True)
        for module in modules
        if module is not None
        for layer in module.modules()
        if isinstance(layer, BaseTunerLayer)
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


class SharedBase:
    """The shared pipeline plus its adapter cache; `generate_batch` answers a dynamic batch request by request."""

    def __init__(
        self,
        pipeline: Any,
        *,
        base_sha256: str,
        max_adapters: int = 32,
        max_adapter_bytes: int = 2 * 1024**3,
        strategy: BatchStrategy = "mixed",
    ) -> None:
        self.pipeline = pipeline
        self.base_sha256 = base_sha256
        self.strategy = strategy
        self.adapters = AdapterCache(self, max_adapters=max_adapters, max_bytes=max_adapter_bytes)

    @classmethod
    def load(cls, base_model: str, *, cache_dir: Path, **options: Any) -> SharedBase:
        """Resolve the base (tiny, a folder, s3:// or a hub id) and load it once on the best device."""
        import torch

        base = resolve_base_model(base_model, cache_dir=cache_dir)
        device = default_device()
        pipeline = base.load(dtype=torch.float16 if device == "cuda" else torch.float32, device=device)
        pipeline.set_progress_bar_config(disable=True)
        shared = cls(pipeline, base_sha256=base.sha256, **options)
        shared.warm_up()
        publish_base(cache_dir, spec=base_model, sha256=base.sha256)
        return shared

    def warm_up(self) -> None:
        """One small generation at load, so the first user does not pay for paging in weights and kernel setup."""
        generate_rows(self.pipeline, [GenerationRequest(prompt="warm-up", seed=0, steps=1, width=64, height=64)])

    def open_adapter(self, directory: Path) -> Adapter:
        """Check an adapter folder against this base (raises AdapterRefused) and load it into the cache."""
        adapter = open_adapter(directory, base_sha256=self.base_sha256)
        self.adapters.ensure(adapter)
        return adapter

    # AdapterHost
    def load_adapter(self, adapter: Adapter) -> None:
        """Load the adapter's LoRA weights next to the others (the base weights stay as they are)."""
        self.pipeline.load_lora_weights(adapter.directory, weight_name=ADAPTER_WEIGHTS, adapter_name=adapter.adapter_id)

    def unload_adapter(self, adapter_id: str) -> None:
        """Drop an adapter's LoRA weights."""
        self.pipeline.delete_adapters(adapter_id)

    def generate_batch(self, items: Sequence[AdapterRequest]) -> list[list[GeneratedImage] | Exception]:
        """Answer each item with its images or its own error; one failing group never fails the others."""
        results: list[list[GeneratedImage] | Exception] = [RuntimeError("not answered")] * len(items)
        groups: dict[tuple[Any, ...], list[int]] = defaultdict(list)
        for index, item in enumerate(items):
            groups[_sampler_settings(item)].append(index)
        for indices in groups.values():
            if self.strategy == "grouped":
                by_adapter: dict[str, list[int]] = defaultdict(list)
                for index in indices:
                    by_adapter[items[index].adapter.adapter_id].append(index)
                chunks = list(by_adapter.values())
            else:
                chunks = self._mixed_chunks(indices, items)
            for chunk in chunks:
                answers: Sequence[list[GeneratedImage] | Exception]
                try:
                    answers = self._run([items[index] for index in chunk])
                except Exception as exc:  # answered per request by the caller
                    logger.exception("generation failed for %d request(s)", len(chunk))
                    answers = [exc] * len(chunk)
                for index, answer in zip(chunk, answers, strict=True):
                    results[index] = answer
        return results

    def _mixed_chunks(self, indices: list[int], items: Sequence[AdapterRequest]) -> list[list[int]]:
        """Split so that no chunk needs more distinct adapters than the cache holds at once."""
        chunks: list[list[int]] = []
        seen: set[str] = set()
        for index in indices:
            adapter_id = items[index].adapter.adapter_id
            if not chunks or (adapter_id not in seen and len(seen) >= self.adapters.max_adapters):
                chunks.append([])
                seen = set()
            seen.add(adapter_id)
            chunks[-1].append(index)
        return chunks

    def _run(self, chunk: list[AdapterRequest]) -> list[list[GeneratedImage]]:
        adapter_ids = [item.adapter.adapter_id for item in chunk]
        keep = frozenset(adapter_ids)
        for item in chunk:
            self.adapters.ensure(item.adapter, keep=keep)
        requests = [
            item.request.model_copy(update={"prompt": personalize(item.request.prompt, item.adapter.token)})
            for item in chunk
        ]
        if len(keep) == 1:
            self.pipeline.set_adapters(adapter_ids[0])
            return generate_rows(self.pipeline, requests)
        rows = [
            adapter_id
            for adapter_id, request in zip(adapter_ids, requests, strict=True)
            for _ in range(request.num_images)
        ]
        with per_row_adapters([self.pipeline.unet, getattr(self.pipeline, "text_encoder", None)], rows):
            return generate_rows(self.pipeline, requests)

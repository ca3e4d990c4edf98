"""One base pipeline serving every user's LoRA: LoRAs switch per request, the base is never reloaded.

A dynamic batch holds requests of several users. Requests that share the sampler settings (steps, guidance, size)
run as one pipeline call. With the `mixed` strategy that call carries every user's rows at once: PEFT's mixed-batch
LoRA forward (`adapter_names`, one name per row) applies each row's own LoRA. With `grouped` the rows of one
LoRA run together and LoRAs are switched between calls. `avatar bench serving` measures both.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from avatar.contracts.generation import GeneratedImage, GenerationRequest, most_alike
from avatar.diffusion.base_checkpoints import resolve_base_model
from avatar.lora_format import LORA_WEIGHTS
from avatar.prompts import personalize
from avatar.safety.screening import SafetyPolicy, screen_images
from avatar.serving.loras import Lora, LoraCache, open_lora, publish_base
from avatar.serving.sampling import DeadlinePassed, generate_rows, load_for_inference

logger = logging.getLogger(__name__)

BatchStrategy = Literal["mixed", "grouped"]


@dataclass(frozen=True)
class LoraRequest:
    """A generation request for one user's LoRA."""

    lora: Lora
    request: GenerationRequest
    deadline: float | None = None  # Unix time after which nobody waits for the answer


@contextlib.contextmanager
def per_row_loras(modules: Sequence[Any], adapter_names: list[str]) -> Iterator[None]:
    """While inside, every LoRA layer of `modules` applies row i's LoRA to row i (classifier-free guidance
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
    """The shared pipeline plus its LoRA cache; `generate_batch` answers a dynamic batch request by request."""

    def __init__(
        self,
        pipeline: Any,
        *,
        base_sha256: str,
        max_loras: int = 32,
        max_lora_bytes: int = 2 * 1024**3,
        strategy: BatchStrategy = "mixed",
        hotswap_rank: int | None = 16,
        spare_slots: int = 1,
        safety: SafetyPolicy | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.safety = safety or SafetyPolicy()
        self.base_sha256 = base_sha256
        self.strategy = strategy
        self.loras = LoraCache(self, max_loras=max_loras, max_bytes=max_lora_bytes)
        # LoRA slots: an evicted LoRA's layers are kept and the next LoRA's weights are copied into them
        # (diffusers' hotswap, ~0.04 s at SD 2.1 on CPU) instead of building new layers (~0.2 s).
        self._slots: dict[str, str] = {}  # LoRA id -> PEFT adapter name
        self._free_slots: list[str] = []
        self._slot_count = 0
        self._hotswap_rank = hotswap_rank
        self._spare_slots = spare_slots if hotswap_rank is not None else 0
        self._blank: Path | None = None
        self._identities: dict[Path, Any] = {}  # identity.json -> Identity (or None when unreadable)
        self._lock = threading.RLock()  # generation and slot changes never overlap
        if hotswap_rank is not None:
            pipeline.enable_lora_hotswap(target_rank=hotswap_rank)  # before the first LoRA is loaded

    @classmethod
    def load(cls, base_model: str, *, cache_dir: Path, **options: Any) -> SharedBase:
        """Resolve the base (tiny, a folder, s3:// or a hub id) and load it once on the best device."""
        base = resolve_base_model(base_model, cache_dir=cache_dir)
        shared = cls(load_for_inference(base), base_sha256=base.sha256, **options)
        shared.replenish_slots()
        shared.warm_up()
        publish_base(cache_dir, spec=base_model, sha256=base.sha256)
        return shared

    def warm_up(self) -> None:
        """One small generation at load, and the face models that score likeness loaded, so the first user does not
        pay for paging in weights and kernel setup."""
        from avatar.identity.scoring import serving_face_models
        from avatar.safety.open_nsfw import serving_classifier

        generate_rows(self.pipeline, [GenerationRequest(prompt="warm-up", seed=0, steps=1, width=64, height=64)])
        serving_face_models()
        serving_classifier()

    def open_lora(self, directory: Path) -> Lora:
        """Check a LoRA folder against this base (raises LoraRefused) and load it into the cache."""
        lora = open_lora(directory, base_sha256=self.base_sha256)
        with self._lock:
            self.loras.ensure(lora)
        return lora

    @property
    def needs_slots(self) -> bool:
        """Fewer spare slots than wanted, and room for another."""
        total = len(self._slots) + len(self._free_slots)
        return len(self._free_slots) < self._spare_slots and total < self.loras.max_loras

    def replenish_slots(self) -> None:
        """Keep `spare_slots` empty LoRA slots ready, so a new user's LoRA is copied in rather than built.

        The Triton model calls it in the background after answering a batch (the pipeline lock keeps it apart from
        generation)."""
        with self._lock:
            self._replenish_slots()

    def _replenish_slots(self) -> None:
        while self.needs_slots:
            self._free_slots.append(self._new_slot(self._blank_lora()))

    def _new_slot(self, lora_dir: Path) -> str:
        """New LoRA layers, named slotN, holding the LoRA in `lora_dir`."""
        self._slot_count += 1
        slot = f"slot{self._slot_count}"
        self.pipeline.load_lora_weights(lora_dir, weight_name=LORA_WEIGHTS, adapter_name=slot)
        return slot

    def _blank_lora(self) -> Path:
        """A LoRA in the trainer's layout whose B matrices are zero (it changes nothing): the mould of a slot."""
        if self._blank is None:
            import tempfile

            from avatar.fine_tuning.trainer import save_lora, unet_lora_config

            rank = self._hotswap_rank or 16
            unet = self.pipeline.unet
            unet.add_adapter(unet_lora_config(rank, rank), adapter_name="blank")
            self._blank = Path(tempfile.mkdtemp(prefix="blank-lora-"))
            save_lora(self._blank, unet, adapter_name="blank")
            unet.delete_adapters("blank")
        return self._blank

    def slot(self, lora_id: str) -> str:
        """The PEFT adapter name a loaded LoRA runs under."""
        return self._slots[lora_id]

    # LoraHost
    def load_lora(self, lora: Lora) -> None:
        """Load the LoRA's LoRA weights into a free slot, or into new layers (the base weights stay as they are)."""
        while self._free_slots:
            slot = self._free_slots.pop()
            try:
                self.pipeline.load_lora_weights(
                    lora.directory, weight_name=LORA_WEIGHTS, adapter_name=slot, hotswap=True
                )
            except Exception:  # another rank, other target modules or a text-encoder part: not swappable here
                logger.info("LoRA %s cannot be hot-swapped into %s; loading it into new layers", lora, slot)
                self.pipeline.delete_adapters(slot)
                continue
            self._slots[lora.lora_id] = slot
            return
        self._slots[lora.lora_id] = self._new_slot(lora.directory)

    def unload_lora(self, lora_id: str) -> None:
        """Free the LoRA's slot: kept for the next LoRA when slots are hot-swapped, else deleted."""
        slot = self._slots.pop(lora_id)
        if self._hotswap_rank is not None:
            self._free_slots.append(slot)
        else:
            self.pipeline.delete_adapters(slot)

    def generate_batch(self, items: Sequence[LoraRequest]) -> list[list[GeneratedImage] | Exception]:
        """Answer each item with its images or its own error; one failing group never fails the others."""
        with self._lock:
            return self._generate_batch(items)

    def _generate_batch(self, items: Sequence[LoraRequest]) -> list[list[GeneratedImage] | Exception]:
        results: list[list[GeneratedImage] | Exception] = [RuntimeError("not answered")] * len(items)
        groups: dict[tuple[Any, ...], list[int]] = defaultdict(list)
        for index, item in enumerate(items):
            groups[item.request.sampler_settings].append(index)
        for indices in groups.values():
            if self.strategy == "grouped":
                by_lora: dict[str, list[int]] = defaultdict(list)
                for index in indices:
                    by_lora[items[index].lora.lora_id].append(index)
                chunks = list(by_lora.values())
            else:
                chunks = self._mixed_chunks(indices, items)
            for chunk in chunks:
                now = time.time()  # a chunk may wait for the ones before it: check again just before it runs
                for index in [i for i in chunk if (deadline := items[i].deadline) is not None and deadline <= now]:
                    results[index] = DeadlinePassed("the caller stopped waiting before the work started")
                    chunk.remove(index)
                if not chunk:
                    continue
                answers: Sequence[list[GeneratedImage] | Exception]
                try:
                    answers = self._run([items[index] for index in chunk])
                except Exception as exc:  # answered per request by the caller
                    logger.exception("generation failed for %d request(s)", len(chunk))
                    answers = [exc] * len(chunk)
                for index, answer in zip(chunk, answers, strict=True):
                    results[index] = answer
        return results

    def _mixed_chunks(self, indices: list[int], items: Sequence[LoraRequest]) -> list[list[int]]:
        """Split so that no chunk needs more distinct LoRAs than the cache holds at once."""
        chunks: list[list[int]] = []
        seen: set[str] = set()
        for index in indices:
            lora_id = items[index].lora.lora_id
            if not chunks or (lora_id not in seen and len(seen) >= self.loras.max_loras):
                chunks.append([])
                seen = set()
            seen.add(lora_id)
            chunks[-1].append(index)
        return chunks

    def _run(self, chunk: list[LoraRequest]) -> list[list[GeneratedImage]]:
        keep = frozenset(item.lora.lora_id for item in chunk)
        for item in chunk:
            self.loras.ensure(item.lora, keep=keep)
        lora_ids = [self.slot(item.lora.lora_id) for item in chunk]
        requests = [  # every candidate of a best_of request is generated; the most alike are kept below
            item.request.as_candidates().model_copy(
                update={"prompt": personalize(item.request.prompt, item.lora.token)}
            )
            for item in chunk
        ]
        # The work stops between steps once every caller of the chunk has given up.
        deadlines = [item.deadline for item in chunk]
        deadline = None if None in deadlines else max(d for d in deadlines if d is not None)
        if len(keep) == 1:
            self.pipeline.set_adapters(lora_ids[0])
            generated = generate_rows(self.pipeline, requests, deadline=deadline)
        else:
            rows = [lora for lora, request in zip(lora_ids, requests, strict=True) for _ in range(request.num_images)]
            with per_row_loras([self.pipeline.unet, getattr(self.pipeline, "text_encoder", None)], rows):
                generated = generate_rows(self.pipeline, requests, deadline=deadline)
        return [self._scored(item, images) for item, images in zip(chunk, generated, strict=True)]

    def _scored(self, item: LoraRequest, images: list[GeneratedImage]) -> list[GeneratedImage]:
        """The safe images scored against the LoRA's person, the most alike `num_images` of them (all when there is
        no identity to score against: then they keep their seed order). Unsafe ones are withheld first, so the
        answer may hold fewer than `num_images`: the caller tells the client how many were withheld."""
        from avatar.identity.scoring import read_identity, score_images, serving_face_models
        from avatar.safety.open_nsfw import serving_classifier

        images = screen_images(images, serving_classifier(), self.safety).kept

        path = item.lora.identity_file
        if path is not None and path not in self._identities:
            self._identities[path] = read_identity(path)
        identity = self._identities.get(path) if path is not None else None
        scored = score_images(images, identity, serving_face_models() if identity is not None else None)
        return most_alike(scored, item.request.num_images)

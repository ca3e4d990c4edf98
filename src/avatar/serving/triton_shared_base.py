"""The shared base as a Triton Python-backend model (runs inside Triton's stub, which provides
`triton_python_backend_utils`): a thin adapter around avatar.serving.shared_base.

It lives in the package, not only in `gpu/triton/avatar_base/1/model.py` (which re-exports it), so that a per-user
model can load the shared base on any server, with `avatar.serving.base_definition`, even where the base is not in the
model repository: on a SageMaker multi-model endpoint every model comes from its own TargetModel folder.

Each request names its LoRA folder (checked once, then loaded into the cache) and what to generate, or asks to forget
that folder's LoRA (its user is erased). A LoRA whose files are gone is dropped and refused. Every request gets its own
answer or its own error.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils
from pydantic import ValidationError

from avatar.contracts.generation import DEADLINE, FORGET, INPUTS, request_from_tensors
from avatar.errors import LoraRefused
from avatar.lora_format import LORA_WEIGHTS
from avatar.safety.screening import SafetyPolicy
from avatar.serving.loras import Lora
from avatar.serving.settings import get_settings
from avatar.serving.shared_base import LoraRequest, SharedBase


def _error(message: str) -> Any:
    return pb_utils.InferenceResponse(error=pb_utils.TritonError(message))


def _empty_answer() -> Any:
    return pb_utils.InferenceResponse(
        output_tensors=[
            pb_utils.Tensor("images", np.array([[]], dtype=np.object_)),
            pb_utils.Tensor("seeds", np.zeros((1, 0), dtype=np.int64)),
            pb_utils.Tensor("likeness", np.zeros((1, 0), dtype=np.float32)),
        ]
    )


class TritonPythonModel:
    """Loads the base once; LoRAs come and go through the cache."""

    def initialize(self, args: dict[str, Any]) -> None:
        settings = get_settings()
        self._base = SharedBase.load(
            settings.base_model,
            cache_dir=settings.cache_dir,
            max_loras=settings.max_loras,
            max_lora_bytes=settings.max_lora_mb * 1024 * 1024,
            strategy=settings.batch_strategy,
            hotswap_rank=settings.hotswap_rank or None,
            safety=SafetyPolicy(threshold=settings.nsfw_threshold),
        )
        self._opened: dict[Path, Lora] = {}  # checked once per folder; the cache may still evict its weights

    def _lora(self, folder: Path) -> Lora:
        if folder in self._opened and not (folder / LORA_WEIGHTS).is_file():
            self._forget(folder)  # its files are gone (an erased user, an unloaded model): never serve it again
        if folder not in self._opened:
            self._opened[folder] = self._base.open_lora(folder)  # raises LoraRefused for a folder without files
        return self._opened[folder]

    def _forget(self, folder: Path) -> None:
        """Drop the folder's LoRA from the cache (memory) and from what was checked."""
        lora = self._opened.pop(folder, None)
        if lora is not None:
            self._base.loras.drop(lora.lora_id)

    def execute(self, requests: list[Any]) -> list[Any]:
        responses: list[Any] = [None] * len(requests)
        batch: list[tuple[int, LoraRequest]] = []
        for index, request in enumerate(requests):
            try:
                folder = Path(pb_utils.get_input_tensor_by_name(request, "lora").as_numpy().reshape(-1)[0].decode())
                forget = pb_utils.get_input_tensor_by_name(request, FORGET)
                if forget is not None and bool(forget.as_numpy().reshape(-1)[0]):
                    self._forget(folder)
                    responses[index] = _empty_answer()
                    continue
                lora = self._lora(folder)
                tensors = {}
                for name in INPUTS:
                    tensor = pb_utils.get_input_tensor_by_name(request, name)
                    if tensor is not None:
                        tensors[name] = tensor.as_numpy()
                deadline = pb_utils.get_input_tensor_by_name(request, DEADLINE)
                until = int(deadline.as_numpy().reshape(-1)[0]) / 1000 if deadline is not None else None
                batch.append((index, LoraRequest(lora, request_from_tensors(tensors), deadline=until)))
            except LoraRefused as exc:
                responses[index] = _error(f"LoRA refused: {exc}")
            except ValidationError as exc:
                responses[index] = _error(f"invalid request: {exc}")
            except Exception as exc:  # one bad request must not fail the others in the batch
                responses[index] = _error(f"request failed: {exc}")
        answers = self._base.generate_batch([item for _, item in batch])
        for (index, _), answer in zip(batch, answers, strict=True):
            if isinstance(answer, Exception):
                responses[index] = _error(f"generation failed: {answer}")
                continue
            responses[index] = pb_utils.InferenceResponse(
                output_tensors=[
                    pb_utils.Tensor("images", np.array([[image.png for image in answer]], dtype=np.object_)),
                    pb_utils.Tensor("seeds", np.array([[image.seed for image in answer]], dtype=np.int64)),
                    pb_utils.Tensor(
                        "likeness", np.array([[image.likeness_value for image in answer]], dtype=np.float32)
                    ),
                ]
            )
        if self._base.needs_slots:  # after this batch is answered, not on its critical path
            threading.Thread(target=self._base.replenish_slots, name="spare-slots", daemon=True).start()
        return responses

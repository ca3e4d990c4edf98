"""The files of a trained adapter, named in one stdlib-only place (the thin per-user serving model imports it)."""

from __future__ import annotations

ADAPTER_WEIGHTS = "pytorch_lora_weights.safetensors"  # diffusers' own name, so load_lora_weights finds it
METADATA_NAME = "metadata.json"

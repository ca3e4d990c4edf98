"""The files of a trained LoRA, named in one stdlib-only place (the thin per-user serving model imports it)."""

from __future__ import annotations

LORA_WEIGHTS = "pytorch_lora_weights.safetensors"  # diffusers' own name, so load_lora_weights finds it
METADATA_NAME = "metadata.json"
# The person the model was trained on (avatar.identity.likeness.Identity): serving scores likeness from it.
IDENTITY_NAME = "identity.json"
LORA_FOLDER = "lora"  # inside a per-user Triton model: <name>/1/lora/

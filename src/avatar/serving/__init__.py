"""Serving every user's LoRA on one shared base: LoRA checks and cache, the shared pipeline, sampling, and the Triton
models' code."""

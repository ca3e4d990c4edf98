"""Stable Diffusion base models: the embedded tiny preset, the SD 2.1 architecture, and one loader for all sources."""

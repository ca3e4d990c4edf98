"""Triton Python backend: the shared base pipeline and its adapter cache (avatar.serving.triton_shared_base).

The model lives in the package so that per-user models can load it on servers whose repository lacks this folder.
"""

from avatar.serving.triton_shared_base import TritonPythonModel  # noqa: F401

"""The two SageMaker images, from the SageMaker SDK's own registry of image URIs (no network needed)."""

from __future__ import annotations

# Versions this project is built against: LMI 0.32 (DJL Serving, CUDA 12.6) and Triton 25.09, whose Python 3.12
# is the Python the conda-pack environment is built with (the stub that runs Python models is the image's own).
LMI_VERSION = "0.32.0"
TRITON_VERSION = "25.09"


def image_uris(region: str, *, instance_type: str = "ml.g5.2xlarge") -> dict[str, str]:
    """`{"LmiImageUri": ..., "TritonImageUri": ...}` for the region, as the template's parameters name them."""
    from sagemaker.core import image_uris as registry  # the deploy extra: heavy, and only the deploy tooling needs it

    return {
        "LmiImageUri": registry.retrieve("djl-lmi", region=region, version=LMI_VERSION),
        "TritonImageUri": registry.retrieve(
            "sagemaker-tritonserver", region=region, version=TRITON_VERSION, instance_type=instance_type
        ),
    }

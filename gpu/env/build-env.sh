#!/usr/bin/env bash
# The Python environment of the multi-model endpoint's models (conda-pack): torch (CUDA), diffusers, peft,
# transformers and the avatar package. Built inside the Triton image itself, with that image's Python version, so
# that the image's own Python-backend stub runs it (Triton's rule for EXECUTION_ENV_PATH).
#
#   gpu/env/build-env.sh TRITON_IMAGE_URI [OUT]     (make gpu-env TRITON_IMAGE=...; needs Docker and the internet)
set -euo pipefail
image=${1:?usage: $0 TRITON_IMAGE_URI [OUT]}
out=${2:-build/gpu/avatar_env.tar.gz}
root=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$(dirname "$out")"
out_dir=$(cd "$(dirname "$out")" && pwd)
docker run --rm --entrypoint bash -v "$root:/src:ro" -v "$out_dir:/out" "$image" -c "
  set -euo pipefail
  python=\$(python3 -c 'import sys; print(f\"{sys.version_info.major}.{sys.version_info.minor}\")')
  echo \"building the environment for the image's Python \$python\"
  curl -fsSL -o /tmp/miniforge.sh https://github.com/conda-forge/miniforge/releases/latest/download/Miniforge3-Linux-x86_64.sh
  bash /tmp/miniforge.sh -b -p /opt/miniforge
  /opt/miniforge/bin/conda install -y -q conda-pack
  /opt/miniforge/bin/conda create -y -q -p /tmp/avatar-env python=\$python
  cp -r /src /tmp/src && rm -rf /tmp/src/.venv /tmp/src/build
  export PYTHONNOUSERSITE=True
  /tmp/avatar-env/bin/pip install --no-cache-dir '/tmp/src[gpu]'
  # Never loaded (its training data excludes commercial use): not shipped.
  rm -f /tmp/avatar-env/lib/python*/site-packages/face_recognition_models/models/shape_predictor_68_face_landmarks.dat
  /opt/miniforge/bin/conda-pack -p /tmp/avatar-env -o /out/$(basename "$out") --force
"
echo "$out"

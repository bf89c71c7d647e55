#!/usr/bin/env bash
# Build the CPU test environment for tao-scaffold on a clean machine (Python 3.11, no GPU).
#
#   scripts/bootstrap-env.sh [VENV_DIR]      (default: .venv in the repo root)
#
# What it installs and why:
#   * torch 2.13.0 CPU (TAO 7.3 takes another ONNX path on torch >= 2.14)
#   * TAO's runtime dependencies, pinned to versions known to work together on CPU
#   * nvidia-tao-core / nvidia-tao-deploy 7.3.0 without their server/CUDA dependency trees
#   * nvidia-tao-pytorch 7.3.0: the wheel is cp312-only, so its pure-Python files are unpacked
#     (CUDA .so ops skipped) -- they import on 3.11
#   * torchvision 0.28 (PyPI's is CUDA-linked): its fake-kernel registrations for nms are guarded
#   * a stub for `eff` (NVIDIA's encryption lib, which does not load on 3.11)
#   * $VENV/overlays/transformers-newest: the newest transformers release (scripts/requirements-transformers-
#     newest.txt), no-deps, for the second test pass (PYTHONPATH=<overlay>); the venv itself keeps the pin
# Idempotent: a second run only checks. Nothing here is written into generated code.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${1:-$ROOT/.venv}"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3
WHEELS="${TAO_SCAFFOLD_WHEEL_CACHE:-$HOME/.cache/tao-scaffold/wheels}"
TAO_VERSION=7.3.0
STAMP="$VENV/.tao-scaffold-env-v1"
OVERLAY="$VENV/overlays/transformers-newest"

overlay() {  # idempotent; also run for a venv made before the overlay existed
  if [[ ! -f "$OVERLAY/.done" ]] || ! cmp -s "$ROOT/scripts/requirements-transformers-newest.txt" "$OVERLAY/.done"; then
    rm -rf "$OVERLAY"
    "$VENV/bin/python" -m pip --disable-pip-version-check -q install --no-deps --target "$OVERLAY" \
        -r "$ROOT/scripts/requirements-transformers-newest.txt"
    cp "$ROOT/scripts/requirements-transformers-newest.txt" "$OVERLAY/.done"
  fi
}

if [[ -f "$STAMP" ]]; then
  overlay
  echo "bootstrap-env: $VENV is ready (remove it to rebuild)"
  exit 0
fi

step() { printf '\n== %s\n' "$*"; }
step "virtualenv $VENV"
"$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
"${PIP[@]}" install -U "pip>=24" wheel

step "torch 2.13.0 (CPU) + torchvision 0.28.0"
# Installed together and then pinned for every later step: anything that pulls torchvision would
# otherwise drag in torchvision 0.29 and with it a CUDA torch 2.14.
"${PIP[@]}" install torch==2.13.0 torchvision==0.28.0
export PIP_CONSTRAINT="$ROOT/scripts/constraints-torch.txt"

step "TAO runtime dependencies"
"${PIP[@]}" install -r "$ROOT/scripts/requirements-tao-cpu.txt"

step "tao-scaffold (editable) and its dependencies"
"${PIP[@]}" install -e "$ROOT[test]"

step "TAO $TAO_VERSION wheels"
mkdir -p "$WHEELS"
"${PIP[@]}" download --no-deps -d "$WHEELS" "nvidia-tao-core==$TAO_VERSION" "nvidia-tao-deploy==$TAO_VERSION"
"${PIP[@]}" download --no-deps -d "$WHEELS" --python-version 3.12 --only-binary=:all: "nvidia-tao-pytorch==$TAO_VERSION"
"${PIP[@]}" install --no-deps "$WHEELS/nvidia_tao_core-$TAO_VERSION-py3-none-any.whl" \
                              "$WHEELS/nvidia_tao_deploy-$TAO_VERSION-py3-none-any.whl"
"$VENV/bin/python" -m scaffolder.tao_wheels \
    "$WHEELS/nvidia_tao_pytorch-$TAO_VERSION-cp312-cp312-manylinux1_x86_64.whl"

step "torchvision CPU guard"
"$VENV/bin/python" "$ROOT/scripts/patch_torchvision_cpu.py"

step "eff import stub"
"$VENV/bin/python" "$ROOT/scripts/install_eff_stub.py"

step "smoke import"
"$VENV/bin/python" - <<'PY'
import torch, torchvision, timm, transformers, pytorch_lightning, onnxruntime
import nvidia_tao_core, nvidia_tao_deploy
from nvidia_tao_pytorch.cv.backbone_v2 import BACKBONE_REGISTRY
print("torch", torch.__version__, "| backbones", len(BACKBONE_REGISTRY._obj_map))
PY
step "transformers overlay (newest release, second test pass)"
overlay
touch "$STAMP"
echo "bootstrap-env: done -> $VENV"

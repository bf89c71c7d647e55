#!/usr/bin/env bash
# Runs INSIDE the build container of scripts/build-tao-images.sh (never on the host):
#
#   tao-image-setup.sh deploy    on tao-scaffold/debian-base: Python 3.11 (Debian's), pip from the wheelhouse,
#                                requirements-tao-deploy-cpu.txt, the eff import stub
#   tao-image-setup.sh pytorch   on the deploy image: torch 2.13 CPU + torchvision, requirements-tao-cpu.txt,
#                                the torchvision CPU guard
#
# /wheels is the host's wheelhouse and /build the repo's scripts/ folder, both mounted read-only. pip never
# asks an index (PIP_NO_INDEX): every wheel comes from /wheels, so the pytorch step runs with no network.
set -euxo pipefail
export PIP_NO_INDEX=1 PIP_FIND_LINKS=/wheels PIP_CONFIG_FILE=/dev/null PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore \
  PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_CONSTRAINT=/build/constraints-torch.txt DEBIAN_FRONTEND=noninteractive
pip() { python -m pip "$@"; }

case "${1:-}" in
  deploy)
    apt-get update
    # libgomp1: OpenMP runtime of onnxruntime/scikit-learn wheels; procps: ps for humans in `docker exec`.
    apt-get install -y --no-install-recommends python3 python-is-python3 libgomp1 procps
    apt-get clean
    rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
    # TAO's images install into the system interpreter; Debian marks it externally managed.
    rm -f /usr/lib/python3*/EXTERNALLY-MANAGED
    # pip runs from its own wheel to install itself (Debian's python3-pip would be shadowed anyway).
    python "$(ls /wheels/pip-*.whl | head -n1)/pip" install pip setuptools wheel
    pip install -r /build/requirements-tao-deploy-cpu.txt
    python /build/install_eff_stub.py
    ;;
  pytorch)
    pip install torch torchvision  # versions: constraints-torch.txt; the wheelhouse holds only the CPU torch
    pip install -r /build/requirements-tao-cpu.txt
    python /build/patch_torchvision_cpu.py
    ;;
  *)
    echo "usage: $0 deploy|pytorch" >&2
    exit 2
    ;;
esac

# Like TAO's *-base images (and Phase 0 on a release image: pip uninstall nvidia-tao-*): no TAO package is
# installed, so the workspace's tao-core/tao-pytorch/tao-deploy clones are what the verify container installs
# (editable) and imports.
if pip list --format=freeze | grep -i '^nvidia[-_]tao'; then
  echo "a TAO package was pulled in by a requirement; the image must not carry one" >&2
  exit 1
fi
pip check
python - "$1" <<'EOF'
import importlib, sys
common = ["numpy", "onnx", "onnxruntime", "hydra", "omegaconf", "cv2", "PIL", "pycocotools", "sklearn", "pytest", "eff"]
extra = {"deploy": [], "pytorch": ["torch", "torchvision", "pytorch_lightning", "timm", "transformers"]}[sys.argv[1]]
for name in common + extra:
    importlib.import_module(name)
import platform
print("smoke import ok: python", platform.python_version(), "|", len(common + extra), "packages")
EOF
rm -rf /root/.cache /tmp/* || true
python -m pip list --format=freeze >"/etc/tao-scaffold-$1-pip-freeze.txt"

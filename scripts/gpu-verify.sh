#!/usr/bin/env bash
# Generate and verify the bundled ViT example on a GPU host with no network and no Docker
# (e.g. an H100 box with Python 3.12 + torch preinstalled). Missing packages travel as wheels in .whl/:
#   .whl/*.whl      hydra-core, omegaconf, fvcore, open-clip-torch, copier, libcst, black, pylint, ... (cp312)
#   .whl/tao/*.whl  nvidia-tao-core/-deploy 7.3.0 and nvidia-tao-pytorch 7.3.0 without its CUDA .so files
#   scripts/gpu-verify.sh [OUT_DIR]
set -euo pipefail
OUT="${1:-${OUT:-/tmp/gpu-verify}}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
"$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir .whl/*.whl .whl/tao/nvidia_tao_core-*.whl \
  .whl/tao/nvidia_tao_deploy-*.whl
"$PY" -m scaffolder.tao_wheels .whl/tao/nvidia_tao_pytorch-*.whl
"$PY" scripts/install_eff_stub.py
# wandb (20 MB + OpenTelemetry) is imported unconditionally by TAO but only used with WANDB_API_KEY set:
# on a host without it, an import stub stands in (never on machines that have the real package).
"$PY" - <<'PY'
import importlib.util, sysconfig, pathlib
if importlib.util.find_spec("wandb") is None:
    root = pathlib.Path(sysconfig.get_paths()["purelib"]) / "wandb"
    (root / "errors").mkdir(parents=True, exist_ok=True)
    (root / "__init__.py").write_text(
        '"""Import stub (no wandb on this host)."""\nfrom . import errors\n\n\ndef login(*a, **k):\n    return False\n\n\n'
        'def __getattr__(name):\n    if name.startswith("__"):\n        raise AttributeError(name)\n    return type(name, (), {})\n')
    (root / "errors" / "__init__.py").write_text("class UsageError(Exception):\n    pass\n")
    print("wandb import stub installed")
PY
export PYTHONPATH="$ROOT" TAO_SCAFFOLD_WHEEL_CACHE="$ROOT/.whl/tao" HF_HUB_OFFLINE=1
TS=("$PY" -m scaffolder.cli)
rm -rf /tmp/gpu-ws
"${TS[@]}" workspace init /tmp/gpu-ws --from-pypi 7.3.0
# INSPECT_FLAGS=--no-weights skips the HF->TAO weight mapping (needs key rules for the host's transformers).
"${TS[@]}" inspect examples/google-vit-base-patch16-224 --name vit_imagenet100 --num-classes 100 --out "$OUT/port.yml" \
  ${INSPECT_FLAGS:-}
"${TS[@]}" generate --plan "$OUT/port.yml" --workspace /tmp/gpu-ws
set +e
"${TS[@]}" verify --workspace /tmp/gpu-ws --name vit_imagenet100 --runner local --device gpu --report "$OUT/report"
echo "verify exit code: $?"

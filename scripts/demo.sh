#!/usr/bin/env bash
# The main job on the bundled, offline ViT example: build the environment, materialise a TAO 7.3.0
# workspace from PyPI, generate the `vit_imagenet100` port, and verify it on the CPU.
#   scripts/demo.sh [OUT_DIR]     (default: ./out/demo)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$(realpath -m "${1:-$ROOT/out/demo}")"
cd "$ROOT"
scripts/bootstrap-env.sh
export HF_HUB_OFFLINE=1
TS="$ROOT/.venv/bin/tao-scaffold"
rm -rf "$OUT" && mkdir -p "$OUT"
"$TS" workspace init "$OUT/workspace" --from-pypi 7.3.0
"$TS" inspect examples/google-vit-base-patch16-224 --name vit_imagenet100 --num-classes 100 --out "$OUT/port.yml"
"$TS" generate --plan "$OUT/port.yml" --workspace "$OUT/workspace"
"$TS" verify --workspace "$OUT/workspace" --name vit_imagenet100 --runner local --device cpu --report "$OUT/report"
echo "report: $OUT/report/report.md"

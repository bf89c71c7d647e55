#!/usr/bin/env bash
# Run the whole test suite on a fresh machine: builds the environment, starts dockerd, builds the
# local test image, then pytest. Extra arguments go to pytest (e.g. scripts/test.sh -k generate).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
scripts/bootstrap-env.sh
if [[ -x scripts/dockerd.sh ]]; then
  # Stop dockerd afterwards only if this run started it (someone else's daemon stays up).
  if ! scripts/dockerd.sh status >/dev/null 2>&1; then
    scripts/dockerd.sh start
    trap 'scripts/dockerd.sh stop' EXIT
  fi
  scripts/build-test-image.sh
fi
.venv/bin/python -m pytest -p no:cacheprovider "$@"

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
if [[ $# -eq 0 ]]; then
  # Second pass: the weight-mapping and inspect tests against the newest transformers release (an overlay over
  # the pinned venv), which renames modules in memory while checkpoints keep the old names.
  echo "== weights/inspect tests with transformers $(PYTHONPATH=.venv/overlays/transformers-newest .venv/bin/python \
        -c 'import transformers; print(transformers.__version__)')"
  PYTHONPATH=.venv/overlays/transformers-newest .venv/bin/python -m pytest -p no:cacheprovider \
      tests/test_transformers_compat.py tests/test_hf_inspect.py tests/test_convert.py \
      tests/test_any_size.py::test_size_reproduces_hf_in_process -k "not full"
fi

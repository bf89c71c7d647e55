#!/usr/bin/env bash
# Build the wheel set that scripts/gpu-verify.sh installs on the device GPU host (no network there).
#
#   scripts/gpu-wheels.sh [DEST] [PYTHON_VERSION]      (defaults: .whl in the repo root, 3.12)
#
#   DEST/*.whl       scripts/requirements-gpu-wheels.txt (pip download --no-deps, cpXY manylinux x86_64 or pure)
#                    + scripts/requirements-gpu-sdists.txt built here into py3-none-any wheels
#   DEST/tao/*.whl   nvidia-tao-core / nvidia-tao-deploy 7.3.0 (pure) and nvidia-tao-pytorch 7.3.0 without its
#                    compiled CUDA ops (scaffolder.tao_wheels --strip: 75 MB -> ~4 MB; the .so files are built
#                    for TAO's container torch, and verify's shim runs TAO's pure-PyTorch deformable attention)
#   DEST/git/*.deb   this machine's git package (apt-get download git, ~7 MB): gpu-verify.sh unpacks it only where
#                    the host has no git (its binary needs libc, zlib and libpcre2-8 alone)
#
# Everything under DEST travels with the working tree (64 MiB in all): the script prints the total. DEST must
# be ignored by git (for .whl: `echo /.whl/ >> .git/info/exclude`). It starts from an empty DEST so no stale
# version stays beside a new one (pip refuses two versions of one package). The original TAO wheels are cached
# in $TAO_SCAFFOLD_WHEEL_CACHE (default ~/.cache/tao-scaffold/wheels), as bootstrap-env.sh does. Ends with
# scripts/gpu_wheels_check.py: every carried wheel's requirements are carried or on the host
# (scripts/gpu-host-packages.txt), one version of each, all installable on cpXY manylinux x86_64.
# PYTHON_VERSION=3.11 builds the same set for this machine's Python (a CPU rehearsal of the host install).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="$(realpath -m "${1:-$ROOT/.whl}")"
PYV="${2:-3.12}"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
[[ -x "$PY" ]] || PY=python3
TAO_VERSION=7.3.0
CACHE="${TAO_SCAFFOLD_WHEEL_CACHE:-$HOME/.cache/tao-scaffold/wheels}"
PLATFORMS=()
for n in 28 27 17; do PLATFORMS+=(--platform "manylinux_2_${n}_x86_64"); done
PLATFORMS+=(--platform manylinux2014_x86_64 --platform manylinux1_x86_64)
pip_() {  # this machine's pip config names local mirror folders that may not hold a package: drop those warnings
  "$PY" -m pip --disable-pip-version-check "$@" 2> >(grep -v "^WARNING: Location 'file:" >&2)
}
PIP=(pip_)
export PIP_CONSTRAINT=  # the machine's pip constraints do not apply to another interpreter's wheels
export SOURCE_DATE_EPOCH=315532800  # built wheels: fixed timestamps

rm -rf "$DEST"
mkdir -p "$DEST/tao" "$CACHE"
echo "== wheels for cp${PYV/./} manylinux x86_64 -> $DEST"
"${PIP[@]}" download -q --no-deps --only-binary=:all: --python-version "$PYV" --implementation cp "${PLATFORMS[@]}" \
  -d "$DEST" -r "$ROOT/scripts/requirements-gpu-wheels.txt"
echo "== pure-Python sdists built into wheels"
BUILD="$(mktemp -d)"
trap 'rm -rf "$BUILD"' EXIT
"${PIP[@]}" download -q --no-deps --no-binary=:all: -d "$BUILD/src" -r "$ROOT/scripts/requirements-gpu-sdists.txt"
"${PIP[@]}" wheel -q --no-deps -w "$BUILD/built" "$BUILD"/src/*
for w in "$BUILD"/built/*.whl; do
  case "$(basename "$w")" in
    *-py3-none-any.whl|*-py2.py3-none-any.whl) cp "$w" "$DEST/" ;;
    *) echo "gpu-wheels: $(basename "$w") is not pure Python; it cannot be built here for another interpreter" >&2
       exit 1 ;;
  esac
done
echo "== TAO $TAO_VERSION"
"${PIP[@]}" download -q --no-deps -d "$CACHE" "nvidia-tao-core==$TAO_VERSION" "nvidia-tao-deploy==$TAO_VERSION"
"${PIP[@]}" download -q --no-deps -d "$CACHE" --python-version 3.12 --only-binary=:all: "nvidia-tao-pytorch==$TAO_VERSION"
cp "$CACHE/nvidia_tao_core-$TAO_VERSION-py3-none-any.whl" "$CACHE/nvidia_tao_deploy-$TAO_VERSION-py3-none-any.whl" "$DEST/tao/"
PYTHONPATH="$ROOT" "$PY" -m scaffolder.tao_wheels --strip \
  "$CACHE/nvidia_tao_pytorch-$TAO_VERSION-cp312-cp312-manylinux1_x86_64.whl" "$DEST/tao"
echo "== git (only used where the host has none: workspace init and generate need it)"
mkdir -p "$DEST/git"
if ! (cd "$DEST/git" && apt-get download -q git >/dev/null 2>&1); then
  apt-get update -qq >/dev/null 2>&1 || true
  (cd "$DEST/git" && apt-get download -q git >/dev/null 2>&1) || echo "gpu-wheels: no git .deb (apt-get download git failed); the host must have git" >&2
fi
ls "$DEST/git"
echo "== closure check"
"$PY" "$ROOT/scripts/gpu_wheels_check.py" --wheels "$DEST" --python-version "$PYV"
echo "== size"
echo "$(find "$DEST" -name '*.whl' | wc -l) wheels, $(du -sb "$DEST" | cut -f1 | awk '{printf "%.1f MiB", $1/1048576}') in $DEST"
if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
  tracked=$(git -C "$ROOT" ls-files -z | (cd "$ROOT" && xargs -0 stat -c %s 2>/dev/null) | awk '{s+=$1} END {print s+0}')
  echo "tracked files of $ROOT: $(awk -v b="$tracked" 'BEGIN {printf "%.1f MiB", b/1048576}') (the device's limit: 64 MiB for the tree that travels, carried paths included)"
fi

#!/usr/bin/env bash
# Build TAO-like CPU images for `tao-scaffold verify --runner docker --device cpu`, locally and without a
# registry (no NGC access needed):
#
#   tao-scaffold/tao-deploy-cpu:7.3.0   Debian bookworm + Python 3.11 + tao-deploy's CPU runtime dependencies
#                                       (scripts/requirements-tao-deploy-cpu.txt; no TensorRT: it needs a GPU)
#   tao-scaffold/tao-pytorch-cpu:7.3.0  that image (shared base layer) + torch 2.13 CPU, torchvision 0.28 and
#                                       tao-pytorch's runtime dependencies (scripts/requirements-tao-cpu.txt)
#
# Neither carries an nvidia-tao-* package, like TAO's tao-pytorch-base/tao-deploy-base images (Phase 0 of
# NVIDIA's workflow strips them from a release image), so the verify container installs the mounted
# workspace clones and imports those. Both also get the test-environment shims of bootstrap-env.sh (eff import
# stub; torchvision CPU guard in the pytorch image).
#
#   scripts/build-tao-images.sh            build what is missing or stale, else return at once
#   scripts/build-tao-images.sh --force    rebuild both images (the wheelhouse and the Debian base are reused)
#
# Prints `tao-pytorch=TAG` and `tao-deploy=TAG` on stdout (progress goes to stderr), e.g. for
#   tao-scaffold verify ... --runner docker --device cpu \
#     --pytorch-image tao-scaffold/tao-pytorch-cpu:7.3.0 --deploy-image tao-scaffold/tao-deploy-cpu:7.3.0
#
# Steps: (1) scripts/debian-base.sh: debootstrap'd Debian, imported (cached); (2) a wheelhouse made on the host
# with `pip wheel` (the host's indexes, find-links such as /opt/wheels for the CPU torch, and pip cache), cached
# under $CACHE/tao-images/ by the hash of the requirement files; (3) per image one `docker run` of
# scripts/tao-image-setup.sh with the wheelhouse mounted read-only (pip offline; the pytorch step even has no
# network), then `docker commit`. Mounting instead of `docker build` keeps the ~0.5 GB of wheels out of the
# build context and out of the image layers, and needs no buildx.
#
# Cached: both images carry the label org.tao-scaffold.inputs-sha256, a hash of every file that shapes them
# (this script, tao-image-setup.sh, the requirement/constraint files, the two shims; comment lines excluded)
# and the wheelhouse is keyed by the requirement files alone; when both tags exist
# with the current hash nothing is done. Needs a running Docker engine (scripts/dockerd.sh start), apt access
# to a Debian mirror for the first build, and root for debootstrap (first build only).
#
# Environment: PYTHON (host interpreter for `pip wheel`, must be CPython 3.11; default python3.11),
# TAO_SCAFFOLD_CACHE (default ~/.cache/tao-scaffold), and scripts/debian-base.sh's variables.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
S="$ROOT/scripts"
FORCE=""
if [[ "${1:-}" == --force ]]; then FORCE=1; shift; fi
[[ $# == 0 ]] || { echo "usage: $0 [--force]" >&2; exit 2; }
TAO_VERSION=7.3.0
DEPLOY_TAG="tao-scaffold/tao-deploy-cpu:$TAO_VERSION"
PYTORCH_TAG="tao-scaffold/tao-pytorch-cpu:$TAO_VERSION"
TORCH_REQ="torch==2.13.0+cpu"  # the CPU build: PyPI's plain 2.13.0 is the CUDA one
PY="${PYTHON:-python3.11}"
CACHE="${TAO_SCAFFOLD_CACHE:-$HOME/.cache/tao-scaffold}"
WORK="$CACHE/tao-images"
LABEL=org.tao-scaffold.inputs-sha256
BUILD_LABEL=org.tao-scaffold.image-build  # on the short-lived build containers
MAX_GLIBC_MINOR=36                         # bookworm's glibc 2.36: newer manylinux wheels would not load
START=$SECONDS

say() { printf 'build-tao-images: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

# Ctrl-C / SIGTERM / failure: stop the running step, remove its build container and half-made wheelhouse.
# Long steps run in the background and are waited for, so a signal is handled at once, not when they end.
CHILD="" BUILDER="" PARTIAL=""
kill_tree() {  # by PID: the step and what it started (pyenv's shims run python as a child)
  local p
  for p in $(pgrep -P "$1" 2>/dev/null); do kill_tree "$p"; done
  kill -TERM "$1" 2>/dev/null || true
}
cleanup() {
  [[ -z "$CHILD" ]] || kill_tree "$CHILD"
  [[ -z "$BUILDER" ]] || docker rm -f "$BUILDER" >/dev/null 2>&1 || true
  [[ -z "$PARTIAL" ]] || rm -rf "$PARTIAL"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
step() { "$@" & CHILD=$!; local rc=0; wait "$CHILD" || rc=$?; CHILD=""; return "$rc"; }

command -v docker >/dev/null || die "no docker CLI on PATH; run scripts/dockerd.sh start first"
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 ||
  die "no Docker engine answers; run scripts/dockerd.sh start first"

REQS=("$S/requirements-tao-deploy-cpu.txt" "$S/requirements-tao-cpu.txt" "$S/constraints-torch.txt")
# Comment lines do not count: a documentation edit rebuilds nothing.
hash_files() { cat "$@" | grep -v '^[[:space:]]*#' | sha256sum | cut -c1-64; }
WHEEL_SHA="$( (cat "${REQS[@]}"; echo "$TORCH_REQ") | grep -v '^[[:space:]]*#' | sha256sum | cut -c1-16)"
INPUTS_SHA="$(hash_files "$S/build-tao-images.sh" "$S/tao-image-setup.sh" "${REQS[@]}" "$S/install_eff_stub.py" "$S/patch_torchvision_cpu.py")"

# The one machine-readable output (stdout; everything else goes to stderr): repo=tag per line.
print_tags() { printf 'tao-pytorch=%s\ntao-deploy=%s\n' "$PYTORCH_TAG" "$DEPLOY_TAG"; }
label_of() { docker image inspect -f "{{index .Config.Labels \"$LABEL\"}}" "$1" 2>/dev/null || true; }
up_to_date() { [[ "$(label_of "$1")" == "$INPUTS_SHA" ]]; }

mkdir -p "$WORK"
# One build at a time per machine (CI jobs or engineers sharing a cache); the check below reruns after.
exec 9>"$WORK/build.lock"
flock -w 3600 9 || die "another build-tao-images.sh held $WORK/build.lock for an hour"
if [[ -z "$FORCE" ]] && up_to_date "$DEPLOY_TAG" && up_to_date "$PYTORCH_TAG"; then
  say "$DEPLOY_TAG and $PYTORCH_TAG are up to date (inputs ${INPUTS_SHA:0:12}); nothing to do ($((SECONDS - START))s)"
  print_tags
  exit 0
fi

# -- wheelhouse (host side) ------------------------------------------------------------------------------
WHEELS="$WORK/wheelhouse-$WHEEL_SHA"
make_wheelhouse() {
  command -v "$PY" >/dev/null || die "no $PY on PATH; set PYTHON to a CPython 3.11 interpreter (the images' Python)"
  local v
  v="$("$PY" -c 'import sys, platform; print("%d.%d-%s-%s" % (*sys.version_info[:2], platform.python_implementation(), platform.machine()))')"
  [[ "$v" == 3.11-CPython-x86_64 ]] || die "$PY is $v; the wheelhouse needs CPython 3.11 on x86_64 (set PYTHON)"
  local tmp="$WHEELS.tmp.$$" t0=$SECONDS log="$WORK/wheelhouse.log"
  rm -rf "$tmp"
  PARTIAL="$tmp"
  say "pip wheel -> $WHEELS (the host's indexes, find-links and pip cache; log $log)"
  # Everything the two images install, resolved together so they agree on every version.
  PIP_CONSTRAINT="$S/constraints-torch.txt" step "$PY" -m pip wheel --disable-pip-version-check -q -w "$tmp" \
      "$TORCH_REQ" torchvision pip setuptools wheel -r "$S/requirements-tao-cpu.txt" >"$log" 2>&1 ||
    { tail -n 25 "$log" >&2
      die "pip wheel failed (log: $log); the CPU torch wheel must be reachable (e.g. PIP_FIND_LINKS=/opt/wheels)"; }
  local too_new
  too_new="$("$PY" - "$tmp" "$MAX_GLIBC_MINOR" <<'EOF'
import os, re, sys
legacy = {"manylinux2014": 17, "manylinux2010": 12, "manylinux1": 5}
for name in sorted(os.listdir(sys.argv[1])):
    minors = [int(m) for m in re.findall(r"manylinux_2_(\d+)", name)]
    minors += [m for tag, m in legacy.items() if tag + "_" in name]
    if minors and min(minors) > int(sys.argv[2]):
        print(name)
EOF
)"
  [[ -z "$too_new" ]] || die "wheels for a glibc newer than Debian bookworm's 2.$MAX_GLIBC_MINOR: $too_new"
  rm -rf "$WHEELS"
  mv "$tmp" "$WHEELS"
  PARTIAL=""
  say "wheelhouse: $(ls "$WHEELS" | wc -l) wheels, $(du -sh "$WHEELS" | cut -f1), $((SECONDS - t0))s"
}
[[ -d "$WHEELS" ]] || make_wheelhouse
for old in "$WORK"/wheelhouse-*; do  # older requirement sets
  [[ "$old" == "$WHEELS" || ! -d "$old" ]] || rm -rf "$old"
done

# -- images ------------------------------------------------------------------------------------------------
# build FROM TAG STEP NETWORK DESCRIPTION: run tao-image-setup.sh STEP in a container of FROM, commit it as TAG.
build() {
  local from="$1" tag="$2" step="$3" network="$4" description="$5" t0=$SECONDS log="$WORK/build-$3.log" old
  old="$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)"
  BUILDER="tao-scaffold-image-build-$step-$$"
  say "$tag: tao-image-setup.sh $step in a container of $from (log $log)"
  step docker run --name "$BUILDER" --label "$BUILD_LABEL=1" --network "$network" \
      -v "$WHEELS:/wheels:ro" -v "$S:/build:ro" "$from" bash /build/tao-image-setup.sh "$step" >"$log" 2>&1 ||
    { tail -n 30 "$log" >&2; die "tao-image-setup.sh $step failed (log: $log)"; }
  docker commit \
      --change "LABEL $LABEL=$INPUTS_SHA" \
      --change "LABEL org.tao-scaffold.image=$step org.opencontainers.image.description=\"$description\"" \
      --change 'ENV LANG=C.UTF-8 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_ROOT_USER_ACTION=ignore' \
      --change 'WORKDIR /workspace' --change 'CMD ["/bin/bash"]' \
      "$BUILDER" "$tag" >/dev/null
  docker rm -f "$BUILDER" >/dev/null
  BUILDER=""
  local new
  new="$(docker image inspect -f '{{.Id}}' "$tag")"
  if [[ -n "$old" && "$old" != "$new" ]]; then
    docker image rm "$old" >/dev/null 2>&1 || true  # the stale build; kept if a container still uses it
  fi
  say "$tag: built in $((SECONDS - t0))s ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.1f GB", $1 / 1e9}'))"
}

BASE_TAG="$("$S/debian-base.sh")"
# The pytorch image starts from the deploy one, so a stale deploy image rebuilds both.
if [[ -n "$FORCE" ]] || ! up_to_date "$DEPLOY_TAG"; then
  # apt needs the Debian mirror (host network, as build-test-image.sh); pip stays offline (PIP_NO_INDEX).
  build "$BASE_TAG" "$DEPLOY_TAG" deploy host \
    "TAO $TAO_VERSION deploy CPU stand-in: Python 3.11, tao-deploy runtime deps, no TensorRT, no nvidia-tao-* package"
  FORCE=1
fi
if [[ -n "$FORCE" ]] || ! up_to_date "$PYTORCH_TAG"; then
  build "$DEPLOY_TAG" "$PYTORCH_TAG" pytorch none \
    "TAO $TAO_VERSION pytorch CPU stand-in: Python 3.11, torch 2.13 CPU, tao-pytorch runtime deps, no nvidia-tao-* package"
fi
say "ready: $DEPLOY_TAG, $PYTORCH_TAG (inputs ${INPUTS_SHA:0:12}) in $((SECONDS - START))s"
print_tags

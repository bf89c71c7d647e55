#!/usr/bin/env bash
# Build the local Docker image that tests/test_docker_runner.py runs the docker runner against.
# No registry is needed (none is reachable in CI): scripts/debian-base.sh makes the Debian base
# (debootstrap + docker import, cached), then tests/docker/Dockerfile.runner-test adds python3, pip and
# setuptools on top -> TAG.
#
#   scripts/build-test-image.sh [TAG]     (default TAG: tao-scaffold/runner-test:bookworm)
#   scripts/build-test-image.sh --force [TAG]   rebuild TAG (and re-debootstrap the base) even if present
#
# Cached: TAG is skipped when it exists and was built from the current Dockerfile (label
# org.tao-scaffold.dockerfile-sha256). Needs a running Docker engine (scripts/dockerd.sh start), and root
# when the base must be debootstrapped. Environment: see scripts/debian-base.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
FORCE=""
if [[ "${1:-}" == --force ]]; then FORCE=1; shift; fi
TAG="${1:-tao-scaffold/runner-test:bookworm}"
CACHE="${TAO_SCAFFOLD_CACHE:-$HOME/.cache/tao-scaffold}"
DOCKERFILE="$ROOT/tests/docker/Dockerfile.runner-test"
START=$SECONDS

say() { printf 'build-test-image: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

command -v docker >/dev/null || die "no docker CLI on PATH; run scripts/dockerd.sh start first"
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 ||
  die "no Docker engine answers; run scripts/dockerd.sh start first"

SHA="$(sha256sum "$DOCKERFILE" | cut -c1-64)"
# One build at a time per machine (CI jobs or engineers sharing a cache); the check below reruns after.
mkdir -p "$CACHE"
exec 9>"$CACHE/build-test-image.lock"
flock -w 1800 9 || die "another build-test-image.sh held $CACHE/build-test-image.lock for 30 minutes"
if [[ -z "$FORCE" ]] &&
   [[ "$(docker image inspect -f '{{index .Config.Labels "org.tao-scaffold.dockerfile-sha256"}}' "$TAG" 2>/dev/null)" == "$SHA" ]]; then
  say "$TAG is up to date (cached); nothing to do"
  exit 0
fi

BASE_TAG="$("$ROOT/scripts/debian-base.sh" ${FORCE:+--force})"

say "docker build $TAG"
# Legacy builder: no buildx plugin is needed; host network: apt inside the build does not depend on
# the bridge's NAT rules.
mkdir -p "$CACHE"
BUILD_LOG="$CACHE/build-test-image.log"
DOCKER_BUILDKIT=0 docker build --network host \
  --build-arg "BASE=$BASE_TAG" \
  --label "org.tao-scaffold.dockerfile-sha256=$SHA" \
  -t "$TAG" -f "$DOCKERFILE" "$ROOT/tests/docker" >"$BUILD_LOG" 2>&1 ||
  { tail -n 30 "$BUILD_LOG" >&2; die "docker build failed (log: $BUILD_LOG)"; }
say "built $TAG in $((SECONDS - START))s"

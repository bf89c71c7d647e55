#!/usr/bin/env bash
# Build the local Docker image that tests/test_docker_runner.py runs the docker runner against.
# No registry is needed (none is reachable in CI):
#
#   1. debootstrap --variant=minbase bookworm  -> rootfs tarball, cached under ~/.cache/tao-scaffold/
#   2. docker import                           -> tao-scaffold/debian-base:bookworm
#   3. docker build tests/docker/Dockerfile.runner-test on top (python3, pip, setuptools) -> TAG
#
#   scripts/build-test-image.sh [TAG]     (default TAG: tao-scaffold/runner-test:bookworm)
#   scripts/build-test-image.sh --force [TAG]   rebuild TAG (and re-import the base) even if present
#
# Cached: TAG is skipped when it exists and was built from the current Dockerfile (label
# org.tao-scaffold.dockerfile-sha256); the base is imported from the cached tarball when missing.
# Needs a running Docker engine (scripts/dockerd.sh start) and root for debootstrap.
#
# Environment: TAO_SCAFFOLD_DEBIAN_MIRROR (default: the first debian URI in /etc/apt/sources.list*,
# else http://deb.debian.org/debian), TAO_SCAFFOLD_CACHE (default ~/.cache/tao-scaffold).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
FORCE=""
if [[ "${1:-}" == --force ]]; then FORCE=1; shift; fi
TAG="${1:-tao-scaffold/runner-test:bookworm}"
BASE_TAG="tao-scaffold/debian-base:bookworm"
SUITE=bookworm
CACHE="${TAO_SCAFFOLD_CACHE:-$HOME/.cache/tao-scaffold}"
TARBALL="$CACHE/debian-$SUITE-minbase-rootfs.tar"
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

mirror() {
  if [[ -n "${TAO_SCAFFOLD_DEBIAN_MIRROR:-}" ]]; then echo "$TAO_SCAFFOLD_DEBIAN_MIRROR"; return; fi
  local m
  # deb822 (.sources: "URIs: ...") and one-line ("deb URI suite ...") formats; skip security/backports.
  m="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
        awk '/^URIs:/ {for (i = 2; i <= NF; i++) print $i} /^deb / {print ($2 ~ /^\[/ ? $3 : $2)}' |
        grep -E '/debian/?$' | head -n1 || true)"
  echo "${m:-http://deb.debian.org/debian}"
}

make_tarball() {
  command -v debootstrap >/dev/null || die "debootstrap missing; run scripts/dockerd.sh start (installs it)"
  [[ "$(id -u)" == 0 ]] || die "debootstrap needs root"
  mkdir -p "$CACHE"
  local dir m t0=$SECONDS
  m="$(mirror)"
  dir="$(mktemp -d "${TMPDIR:-/tmp}/tao-scaffold-rootfs.XXXXXX")"
  trap 'rm -rf "$dir"' EXIT
  say "debootstrap --variant=minbase $SUITE from $m (takes a minute or two)"
  debootstrap --variant=minbase "$SUITE" "$dir" "$m" >"$CACHE/debootstrap.log" 2>&1 ||
    { tail -n 20 "$CACHE/debootstrap.log" >&2; die "debootstrap failed (log: $CACHE/debootstrap.log)"; }
  # Keep the image small and reproducible-ish: no apt lists/caches in the rootfs.
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
  tar --numeric-owner -C "$dir" -cf "$TARBALL.tmp.$$" .
  mv -f "$TARBALL.tmp.$$" "$TARBALL"
  rm -rf "$dir"
  trap - EXIT
  say "rootfs cached at $TARBALL ($(du -h "$TARBALL" | cut -f1), $((SECONDS - t0))s)"
}

if [[ -n "$FORCE" ]] || ! docker image inspect "$BASE_TAG" >/dev/null 2>&1; then
  [[ -s "$TARBALL" && -z "$FORCE" ]] || make_tarball
  say "docker import $TARBALL -> $BASE_TAG"
  docker import --change 'CMD ["/bin/bash"]' "$TARBALL" "$BASE_TAG" >/dev/null
fi

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

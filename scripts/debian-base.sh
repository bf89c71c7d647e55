#!/usr/bin/env bash
# The local Debian base image every tao-scaffold test image starts from: no registry is needed (none is
# reachable in CI).
#
#   1. debootstrap --variant=minbase bookworm  -> rootfs tarball, cached under ~/.cache/tao-scaffold/
#   2. docker import                           -> tao-scaffold/debian-base:bookworm
#
#   scripts/debian-base.sh           import the base when the engine lacks it (from the cached tarball if present)
#   scripts/debian-base.sh --force   debootstrap a fresh tarball and re-import it
#
# Prints the base tag on stdout. Used by build-test-image.sh and build-tao-images.sh.
# Needs a running Docker engine (scripts/dockerd.sh start) and root for debootstrap.
#
# Environment: TAO_SCAFFOLD_DEBIAN_MIRROR (default: the first debian URI in /etc/apt/sources.list*,
# else http://deb.debian.org/debian), TAO_SCAFFOLD_CACHE (default ~/.cache/tao-scaffold).
set -euo pipefail
FORCE=""
if [[ "${1:-}" == --force ]]; then FORCE=1; shift; fi
SUITE=bookworm
BASE_TAG="tao-scaffold/debian-base:$SUITE"
CACHE="${TAO_SCAFFOLD_CACHE:-$HOME/.cache/tao-scaffold}"
TARBALL="$CACHE/debian-$SUITE-minbase-rootfs.tar"

say() { printf 'debian-base: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

command -v docker >/dev/null || die "no docker CLI on PATH; run scripts/dockerd.sh start first"
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 ||
  die "no Docker engine answers; run scripts/dockerd.sh start first"

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

# One import at a time per machine (parallel CI jobs, engineers sharing a cache); the check reruns after.
mkdir -p "$CACHE"
exec 8>"$CACHE/debian-base.lock"
flock -w 1800 8 || die "another debian-base.sh held $CACHE/debian-base.lock for 30 minutes"
if [[ -n "$FORCE" ]] || ! docker image inspect "$BASE_TAG" >/dev/null 2>&1; then
  [[ -s "$TARBALL" && -z "$FORCE" ]] || make_tarball
  say "docker import $TARBALL -> $BASE_TAG"
  docker import --change 'CMD ["/bin/bash"]' "$TARBALL" "$BASE_TAG" >/dev/null
fi
echo "$BASE_TAG"

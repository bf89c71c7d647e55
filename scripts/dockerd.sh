#!/usr/bin/env bash
# Run a Docker engine on a machine without systemd (CI, dev sandboxes) for the docker runner tests.
#
#   scripts/dockerd.sh start    install docker.io (+ debootstrap) if missing, start dockerd, wait for it
#   scripts/dockerd.sh stop     stop the dockerd this script started (by PID) and wait for it to exit
#   scripts/dockerd.sh status   exit 0 when a daemon answers on the socket, 3 when none does
#
# Idempotent: `start` returns at once when a daemon already answers on the socket (ours or not);
# `stop` only ever stops the daemon whose PID is in our pidfile.
#
# Environment (all optional):
#   TAO_SCAFFOLD_DOCKERD_DIR      state dir: pidfile, log, driver in use   (/tmp/tao-scaffold-dockerd)
#   TAO_SCAFFOLD_DOCKERD_SOCKET   unix socket path                         (/var/run/docker.sock)
#   TAO_SCAFFOLD_DOCKERD_DRIVER   storage driver to try first              (overlay2; vfs as fallback)
#   TAO_SCAFFOLD_DOCKERD_WAIT     seconds to wait for the socket to answer (90)
#   TAO_SCAFFOLD_APT_LOCK_WAIT    seconds apt waits for the dpkg lock      (300)
set -euo pipefail

STATE="${TAO_SCAFFOLD_DOCKERD_DIR:-/tmp/tao-scaffold-dockerd}"
SOCK="${TAO_SCAFFOLD_DOCKERD_SOCKET:-/var/run/docker.sock}"
DRIVER="${TAO_SCAFFOLD_DOCKERD_DRIVER:-overlay2}"
WAIT="${TAO_SCAFFOLD_DOCKERD_WAIT:-90}"
APT_LOCK_WAIT="${TAO_SCAFFOLD_APT_LOCK_WAIT:-300}"
PIDFILE="$STATE/dockerd.pid"
LOG="$STATE/dockerd.log"

say() { printf 'dockerd.sh: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

need_root() { [[ "$(id -u)" == 0 ]] || die "must run as root (dockerd and apt-get need it)"; }

# A docker CLI: /usr/local/bin/docker may exist without the engine; docker.io brings /usr/bin/docker.
docker_cli() { command -v docker 2>/dev/null || true; }

answers() {
  local cli
  cli="$(docker_cli)"
  [[ -S "$SOCK" ]] || return 1
  if [[ -n "$cli" ]]; then
    DOCKER_HOST="unix://$SOCK" timeout 10 "$cli" version --format '{{.Server.Version}}' >/dev/null 2>&1
  else
    # No CLI: ask the API directly (curl is on Debian images; python3 as a fallback).
    if command -v curl >/dev/null; then
      timeout 10 curl -fsS --unix-socket "$SOCK" http://localhost/_ping >/dev/null 2>&1
    else
      timeout 10 python3 - "$SOCK" <<'EOF' >/dev/null 2>&1
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(b"GET /_ping HTTP/1.0\r\nHost: x\r\n\r\n")
sys.exit(0 if b" 200 " in s.recv(100) else 1)
EOF
    fi
  fi
}

our_pid() {
  [[ -f "$PIDFILE" ]] || return 1
  local pid
  pid="$(cat "$PIDFILE" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  # Make sure the PID was not recycled by something else.
  [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == dockerd ]] || return 1
  echo "$pid"
}

install_packages() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  ((${#missing[@]})) || return 0
  need_root
  say "installing ${missing[*]} via apt-get"
  # Keep the package's init script from starting its own dockerd (no systemd here): we start ours.
  local made_policy=""
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  local rc=0
  {
    apt-get -o DPkg::Lock::Timeout="$APT_LOCK_WAIT" update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout="$APT_LOCK_WAIT" install -y -qq \
        --no-install-recommends "${missing[@]}" ca-certificates iptables >/dev/null
  } || rc=$?
  [[ -z "$made_policy" ]] || rm -f /usr/sbin/policy-rc.d
  ((rc == 0)) || die "apt-get install ${missing[*]} failed (rc=$rc)"
  command -v dockerd >/dev/null || die "docker.io installed but dockerd is not on PATH"
}

launch() {
  local driver="$1"
  printf "\n==== dockerd.sh start %s (driver %s)\n" "$(date -u +%FT%TZ)" "$driver" >>"$LOG"
  say "starting dockerd (storage driver $driver, log $LOG)"
  # setsid: own session, so the daemon outlives this shell and a Ctrl-C in the caller's terminal.
  setsid dockerd \
    --host "unix://$SOCK" \
    --pidfile "$PIDFILE" \
    --storage-driver "$driver" \
    >>"$LOG" 2>&1 </dev/null &
  local launcher=$!
  local deadline=$((SECONDS + WAIT))
  while ((SECONDS < deadline)); do
    if answers; then
      echo "$driver" >"$STATE/driver"
      say "dockerd is up (pid $(cat "$PIDFILE" 2>/dev/null || echo "$launcher"), driver $driver)"
      return 0
    fi
    if ! kill -0 "$launcher" 2>/dev/null; then
      say "dockerd exited during start; last log lines:"
      tail -n 15 "$LOG" >&2 || true
      return 1
    fi
    sleep 1
  done
  say "dockerd did not answer on $SOCK within ${WAIT}s; stopping it. Last log lines:"
  tail -n 15 "$LOG" >&2 || true
  kill -TERM "$launcher" 2>/dev/null || true
  local i
  for i in $(seq 1 30); do kill -0 "$launcher" 2>/dev/null || break; sleep 1; done
  kill -KILL "$launcher" 2>/dev/null || true
  return 1
}

cmd_start() {
  mkdir -p "$STATE"
  if answers; then
    if pid="$(our_pid)"; then
      say "already running (pid $pid, driver $(cat "$STATE/driver" 2>/dev/null || echo '?'))"
    else
      say "a Docker engine already answers on $SOCK (not started by this script); using it"
    fi
    install_packages   # still make sure debootstrap is there for build-test-image.sh
    return 0
  fi
  need_root
  install_packages
  if pid="$(our_pid)"; then
    die "dockerd pid $pid is running but does not answer on $SOCK; run '$0 stop' and retry (log: $LOG)"
  fi
  rm -f "$PIDFILE"
  if launch "$DRIVER"; then return 0; fi
  if [[ "$DRIVER" != vfs ]]; then
    say "WARNING: storage driver $DRIVER did not work here; falling back to vfs (slower, uses more disk)"
    rm -f "$PIDFILE"
    launch vfs && return 0
  fi
  die "could not start dockerd (log: $LOG)"
}

cmd_stop() {
  local pid
  if ! pid="$(our_pid)"; then
    say "no dockerd started by this script is running"
    rm -f "$PIDFILE"
    return 0
  fi
  say "stopping dockerd pid $pid"
  kill -TERM "$pid"
  local i
  for i in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || { say "stopped"; rm -f "$PIDFILE"; return 0; }
    sleep 1
  done
  say "dockerd pid $pid ignored SIGTERM for 60s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for i in $(seq 1 10); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  rm -f "$PIDFILE"
}

cmd_status() {
  local pid
  if answers; then
    if pid="$(our_pid)"; then
      echo "running (pid $pid, socket $SOCK, driver $(cat "$STATE/driver" 2>/dev/null || echo '?'), log $LOG)"
    else
      echo "running (socket $SOCK; not started by this script)"
    fi
    return 0
  fi
  if pid="$(our_pid)"; then
    echo "dockerd pid $pid is running but not answering on $SOCK (log $LOG)"
  else
    echo "not running"
  fi
  return 3
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac

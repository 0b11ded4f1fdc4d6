#!/usr/bin/env bash
# Makes sure a Docker engine answers. If none does and we are root on Debian/Ubuntu, installs
# docker.io from the distribution's packages (no registry needed) and starts dockerd in a
# session of its own. Waits at most 120 s for `docker info`. Used by `npm run demo` and .ci/run.
set -euo pipefail

log() { printf 'ensure-docker: %s\n' "$*" >&2; }

engine_up() { docker info >/dev/null 2>&1; }

if command -v docker >/dev/null 2>&1 && engine_up; then
  log "Docker engine is running ($(docker version --format '{{.Server.Version}}' 2>/dev/null))"
  exit 0
fi

if [ "$(id -u)" != "0" ]; then
  log "no Docker engine answers and this is not root: start Docker (or set DOCKER_HOST) and retry"
  exit 1
fi

if ! command -v dockerd >/dev/null 2>&1; then
  if ! command -v apt-get >/dev/null 2>&1; then
    log "dockerd is not installed and apt-get is not available: install Docker and retry"
    exit 1
  fi
  log "installing docker.io from the distribution's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq docker.io >/dev/null
fi

if ! pgrep -x dockerd >/dev/null 2>&1; then
  log "starting dockerd in a session of its own (log: /var/log/gauntlet-dockerd.log)"
  # Its own session and process group (setsid -f): it must outlive the shell, job or CI step
  # that started it (a dockerd in the caller's group died with it, in the middle of a later run).
  setsid -f dockerd >/var/log/gauntlet-dockerd.log 2>&1 </dev/null
fi

for _ in $(seq 1 120); do
  if engine_up; then
    log "Docker engine is running ($(docker version --format '{{.Server.Version}}' 2>/dev/null))"
    exit 0
  fi
  sleep 1
done
log "dockerd did not answer within 120 s; see /var/log/gauntlet-dockerd.log"
tail -n 20 /var/log/gauntlet-dockerd.log >&2 || true
exit 1

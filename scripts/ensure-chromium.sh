#!/usr/bin/env bash
# Makes sure Debian's chromium is there for the live page's browser test (test/e2e/live-page):
# installs it from the distribution's packages when missing and we are root. Used by .ci/run.
set -euo pipefail

log() { printf 'ensure-chromium: %s\n' "$*" >&2; }

for bin in chromium chromium-browser; do
  if command -v "$bin" >/dev/null 2>&1; then
    log "$("$bin" --version 2>/dev/null || echo "$bin") is installed"
    exit 0
  fi
done

if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  log "chromium is missing and cannot be installed here (needs root and apt-get): apt-get install -y chromium"
  exit 1
fi

log "installing chromium from the distribution's packages"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium >/dev/null
log "$(chromium --version) installed"

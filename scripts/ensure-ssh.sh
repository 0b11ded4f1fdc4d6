#!/usr/bin/env bash
# Makes sure OpenSSH's server and client are there for the test that runs k6 instances on a
# "remote" host over SSH (test/integration/k6-ssh.test.ts starts an sshd of its own on
# 127.0.0.1): installs them from the distribution's packages when missing and we are root.
# Used by .ci/run. The machine's own sshd is not started or configured.
set -euo pipefail

log() { printf 'ensure-ssh: %s\n' "$*" >&2; }

if [ -x /usr/sbin/sshd ] && command -v ssh >/dev/null 2>&1 && command -v ssh-keygen >/dev/null 2>&1; then
  log "$(ssh -V 2>&1) is installed"
  exit 0
fi

if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  log "sshd is missing and cannot be installed here (needs root and apt-get): apt-get install -y openssh-server openssh-client"
  exit 1
fi

log "installing openssh-server and openssh-client from the distribution's packages"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# (the package's own service is not wanted: the test runs an sshd of its own)
apt-get install -y -qq --no-install-recommends openssh-server openssh-client >/dev/null
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now ssh >/dev/null 2>&1 || true; fi
log "$(ssh -V 2>&1) installed"

#!/usr/bin/env bash
# Bring up what envbuild needs on a bare Debian machine, idempotently:
#   Docker engine (no bridge: containers get no private-range address) and a
#   registry on 127.0.0.1:5000. On a machine where the engine already runs
#   (a user's laptop) it changes nothing but may start the loopback registry.
set -euo pipefail

REGISTRY_ADDR="${ENVBUILD_REGISTRY_ADDR:-127.0.0.1:5000}"
STATE_DIR="${ENVBUILD_STATE_DIR:-/var/lib/envbuild}"
LOG_DIR="${ENVBUILD_LOG_DIR:-/var/log/envbuild}"

say() { printf 'docker-up: %s\n' "$*"; }

engine_up() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }
registry_up() { curl -fsS -o /dev/null "http://${REGISTRY_ADDR}/v2/" 2>/dev/null; }

wait_for() { # wait_for NAME CHECK_FN SECONDS
  local name=$1 check=$2 secs=$3 i
  for ((i = 0; i < secs * 10; i++)); do
    if "$check"; then return 0; fi
    sleep 0.1
  done
  say "$name did not come up within ${secs}s; see ${LOG_DIR}/$name.log" >&2
  return 1
}

install_missing() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v docker-registry >/dev/null || missing+=(docker-registry)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v curl >/dev/null || missing+=(curl)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    say "missing ${missing[*]}; install them (Debian: apt-get install ${missing[*]}) and run again" >&2
    exit 1
  fi
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
}

start_engine() {
  engine_up && { say "engine already running"; return 0; }
  mkdir -p "$LOG_DIR"
  say "starting dockerd"
  setsid dockerd --bridge=none --iptables=false --ip-forward=false \
    >"$LOG_DIR/dockerd.log" 2>&1 </dev/null &
  wait_for dockerd engine_up 60
}

start_registry() {
  registry_up && { say "registry already running on ${REGISTRY_ADDR}"; return 0; }
  mkdir -p "$STATE_DIR/registry" "$LOG_DIR"
  cat >"$STATE_DIR/registry.yml" <<YML
version: 0.1
storage:
  filesystem:
    rootdirectory: $STATE_DIR/registry
  delete:
    enabled: true
http:
  addr: ${REGISTRY_ADDR}
YML
  say "starting registry on ${REGISTRY_ADDR}"
  setsid docker-registry serve "$STATE_DIR/registry.yml" \
    >"$LOG_DIR/registry.log" 2>&1 </dev/null &
  wait_for registry registry_up 30
}

engine_up || install_missing
command -v docker-registry >/dev/null || install_missing
command -v debootstrap >/dev/null || install_missing
start_engine
start_registry
say "ready: engine $(docker version --format '{{.Server.Version}}'), registry http://${REGISTRY_ADDR}"

#!/usr/bin/env bash
# Bring up what envbuild needs on a bare Debian machine, idempotently:
#   a Docker engine (no bridge: containers get no private-range address) and a
#   registry on 127.0.0.1:5000, plus debootstrap (for `envbuild base bootstrap`).
# Where the engine already runs (a user's laptop) nothing is installed or restarted;
# only a missing loopback registry is started, when its binary is there.
# Under 10 s when everything is up already.
set -euo pipefail

REGISTRY_ADDR="${ENVBUILD_REGISTRY_ADDR:-127.0.0.1:5000}"
if [ "$(id -u)" = 0 ]; then
  STATE_DIR="${ENVBUILD_STATE_DIR:-/var/lib/envbuild}"
  LOG_DIR="${ENVBUILD_LOG_DIR:-/var/log/envbuild}"
else
  STATE_DIR="${ENVBUILD_STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/envbuild}"
  LOG_DIR="${ENVBUILD_LOG_DIR:-$STATE_DIR/log}"
fi

say() { printf 'docker-up: %s\n' "$*"; }
die() { say "$*" >&2; exit 1; }

engine_up() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }
registry_up() {
  if command -v curl >/dev/null; then
    curl -fsS -m 2 -o /dev/null "http://${REGISTRY_ADDR}/v2/" 2>/dev/null
  else
    python3 -c "import urllib.request as u; u.urlopen('http://${REGISTRY_ADDR}/v2/', timeout=2)" 2>/dev/null
  fi
}

wait_for() { # wait_for NAME CHECK_FN SECONDS
  local name=$1 check=$2 secs=$3 i
  for ((i = 0; i < secs * 10; i++)); do
    if "$check"; then return 0; fi
    sleep 0.1
  done
  die "$name did not come up within ${secs}s; see ${LOG_DIR}/$name.log"
}

# Debian packages for a bare machine: only as root, only when something is missing.
install_missing() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v docker-registry >/dev/null || missing+=(docker-registry)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v curl >/dev/null || missing+=(curl)
  command -v git >/dev/null || missing+=(git)
  # OCI tools that read `envbuild build --oci` output (tests run the layout with runc, inspect it with both)
  command -v umoci >/dev/null || missing+=(umoci)
  command -v skopeo >/dev/null || missing+=(skopeo)
  command -v runc >/dev/null || missing+=(runc)
  # arm64 programs on an amd64 machine: bootstrapping an arm64 base, running arm64 images (tests)
  [ -e /usr/libexec/qemu-binfmt/aarch64-binfmt-P ] || [ "$(uname -m)" = aarch64 ] || missing+=(qemu-user-static)
  command -v update-binfmts >/dev/null || missing+=(binfmt-support)
  # `make install` needs a venv with pip: Debian's python3 has it only with python3-venv
  python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    die "missing ${missing[*]}; install them (Debian, as root: apt-get install ${missing[*]}) and run again"
  fi
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

start_engine() {
  if engine_up; then say "engine already running"; return 0; fi
  [ "$(id -u)" = 0 ] || die "the Docker engine is not running; start it (sudo make docker-up, or Docker Desktop)"
  mkdir -p "$LOG_DIR"
  say "starting dockerd"
  setsid dockerd --bridge=none --iptables=false --ip-forward=false \
    >"$LOG_DIR/dockerd.log" 2>&1 </dev/null &
  wait_for dockerd engine_up 60
}

start_registry() {
  if registry_up; then say "registry already running on ${REGISTRY_ADDR}"; return 0; fi
  command -v docker-registry >/dev/null ||
    die "no registry on ${REGISTRY_ADDR}; install docker-registry (Debian) or run one on that address"
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

# Emulation for foreign architectures (idempotent; only as root, only where the handler is installed).
enable_emulation() {
  [ "$(id -u)" = 0 ] && command -v update-binfmts >/dev/null || return 0
  [ -e /usr/libexec/qemu-binfmt/aarch64-binfmt-P ] || return 0
  [ -e /proc/sys/fs/binfmt_misc/status ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || true
  grep -q enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null || update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
}

# A running engine means someone else manages this machine: install nothing then.
engine_up || install_missing
enable_emulation
start_engine
start_registry
say "ready: engine $(docker version --format '{{.Server.Version}}'), registry http://${REGISTRY_ADDR}"

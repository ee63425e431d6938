# envbuild: the quick starts are `make demo` and `make test`.
PYTHON   ?= python3
VENV     ?= .venv
BIN       = $(VENV)/bin
REGISTRY ?= 127.0.0.1:5000
BASE     ?= $(REGISTRY)/envbuild/base:bookworm

.PHONY: install test-tools test test-all test-fast demo docker-up slurm-up base bench bench-smoke clean

$(BIN)/envbuild: pyproject.toml
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || { \
	  echo "make install: $(PYTHON) cannot make a virtualenv; install python3-venv (Debian: sudo make docker-up)" >&2; \
	  exit 2; }
	$(PYTHON) -m venv $(VENV)
	# compat: a .pth line instead of an import hook, which alone costs every envbuild start ~15 ms
	$(BIN)/pip install -q -e '.[test]' --config-settings editable_mode=compat
	@touch $@

install: $(BIN)/envbuild  ## virtualenv + editable install with test extras

docker-up:  ## install (Debian, root) and start the Docker engine and the loopback registry
	bash scripts/docker-up.sh

slurm-up:  ## install (Debian, root) and start a one-node Slurm cluster that runs OCI bundles (envbuild run --on slurm)
	bash scripts/slurm-up.sh

base: install docker-up  ## bootstrap the base image into the loopback registry (skips when present)
	$(BIN)/envbuild base bootstrap --push $(BASE)

TOOLS    ?= .tools

test-tools:  ## what the terminal and editor tests drive: tmux (Debian) and @devcontainers/cli (npm, into .tools/)
	@command -v tmux >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tmux >/dev/null; }
	@test -x $(TOOLS)/node_modules/.bin/devcontainer || { \
	  command -v npm >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; }; \
	  npm install --silent --no-audit --no-fund --prefix $(TOOLS) @devcontainers/cli@0.89.0; }

test: install test-tools ssh-tools base slurm-up  ## the test suite CI runs (brings up the engine, registry, base and Slurm first) (Docker tests included; not the heavy public-torch test)
	$(BIN)/python -m pytest -m "not heavy"

test-all: install  ## every test, also the heavy one (locks and builds the public CUDA torch: 3.2 GB of wheels)
	$(BIN)/python -m pytest

test-fast: install  ## tests that need no Docker engine
	$(BIN)/python -m pytest -m "not docker"

demo: base  ## set everything up on a fresh machine and run the torch example end to end
	@echo "base image: $$($(BIN)/envbuild base bootstrap --push $(BASE) --quiet)"
	ENVBUILD=$(abspath $(BIN))/envbuild bash scripts/demo.sh

bench: install  ## every benchmark (median of 5 runs, about 30 min; 3 runs took 20 min): one table, written to BENCHMARKS.md
	ENVBUILD_BENCH_TARGET=bench $(BIN)/python bench/run_all.py

bench-smoke: install  ## every benchmark at tiny sizes, one run: checks they work (no BENCHMARKS.md)
	ENVBUILD_BENCH_TARGET=bench-smoke $(BIN)/python bench/run_all.py --smoke

.PHONY: ssh-tools
ssh-tools:  ## Debian's sshd (openssh-server, as root) for the ssh target's test; installed, never started as a service
	@command -v sshd >/dev/null || test -x /usr/sbin/sshd || { \
	  [ "$$(id -u)" = 0 ] || { echo "make ssh-tools: run as root (sudo make ssh-tools) to apt-get install openssh-server" >&2; exit 2; }; \
	  rc=/usr/sbin/policy-rc.d; made=; [ -e $$rc ] || { printf '#!/bin/sh\nexit 101\n' > $$rc; chmod +x $$rc; made=1; }; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 \
	    --no-install-recommends openssh-server; st=$$?; [ -z "$$made" ] || rm -f $$rc; exit $$st; }

.PHONY: browser
test test-all: browser  # the report's browser test needs it (tests/test_report.py)

browser:  ## headless Chromium (Debian's chromium, as root) for the report's browser test; nothing when present
	@command -v chromium >/dev/null || { \
	  [ "$$(id -u)" = 0 ] || { echo "make browser: run as root (sudo make browser) to apt-get install chromium" >&2; exit 2; }; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 \
	    --no-install-recommends chromium; }

clean:
	rm -rf $(VENV) .pytest_cache

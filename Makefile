# envbuild: the quick starts are `make demo` and `make test`.
PYTHON   ?= python3
VENV     ?= .venv
BIN       = $(VENV)/bin
REGISTRY ?= 127.0.0.1:5000
BASE     ?= $(REGISTRY)/envbuild/base:bookworm

.PHONY: install test test-all test-fast demo docker-up slurm-up base bench bench-smoke clean

$(BIN)/envbuild: pyproject.toml
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || { \
	  echo "make install: $(PYTHON) cannot make a virtualenv; install python3-venv (Debian: sudo make docker-up)" >&2; \
	  exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

install: $(BIN)/envbuild  ## virtualenv + editable install with test extras

docker-up:  ## install (Debian, root) and start the Docker engine and the loopback registry
	bash scripts/docker-up.sh

slurm-up:  ## install (Debian, root) and start a one-node Slurm cluster that runs OCI bundles (envbuild run --on slurm)
	bash scripts/slurm-up.sh

base: install docker-up  ## bootstrap the base image into the loopback registry (skips when present)
	$(BIN)/envbuild base bootstrap --push $(BASE)

test: install  ## the test suite CI runs (Docker tests included; not the heavy public-torch test)
	$(BIN)/python -m pytest -m "not heavy"

test-all: install  ## every test, also the heavy one (locks and builds the public CUDA torch: 3.2 GB of wheels)
	$(BIN)/python -m pytest

test-fast: install  ## tests that need no Docker engine
	$(BIN)/python -m pytest -m "not docker"

demo: base  ## set everything up on a fresh machine and run the torch example end to end
	@echo "base image: $$($(BIN)/envbuild base bootstrap --push $(BASE) --quiet)"
	ENVBUILD=$(abspath $(BIN))/envbuild bash scripts/demo.sh

bench: install  ## every benchmark (median of 5 runs, about 15 min): one table, written to BENCHMARKS.md
	ENVBUILD_BENCH_TARGET=bench $(BIN)/python bench/run_all.py

bench-smoke: install  ## every benchmark at tiny sizes, one run: checks they work (no BENCHMARKS.md)
	ENVBUILD_BENCH_TARGET=bench-smoke $(BIN)/python bench/run_all.py --smoke

clean:
	rm -rf $(VENV) .pytest_cache

"""Shared fixtures. Docker tests fail instead of skipping when ENVBUILD_REQUIRE_DOCKER=1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REGISTRY = os.environ.get("ENVBUILD_TEST_REGISTRY", "127.0.0.1:5000")
BASE_IMAGE = os.environ.get("ENVBUILD_TEST_BASE", f"{REGISTRY}/envbuild/base:bookworm")
REPO_ROOT = Path(__file__).resolve().parent.parent


def _engine_ok() -> bool:
    try:
        return subprocess.run(["docker", "version"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """Require a Docker engine: skip locally without one, fail under ENVBUILD_REQUIRE_DOCKER=1."""
    if not _engine_ok():
        missing("Docker engine not reachable (run `make docker-up`)")


def missing(msg: str) -> None:
    """A service a test needs is not there: fail under ENVBUILD_REQUIRE_DOCKER=1 (CI), else skip."""
    if os.environ.get("ENVBUILD_REQUIRE_DOCKER") == "1":
        pytest.fail(msg + " and ENVBUILD_REQUIRE_DOCKER=1 forbids skipping")
    pytest.skip(msg)


def _slurm_ok() -> bool:
    try:
        proc = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0 and any(s.strip("*~") in ("idle", "mix", "alloc") for s in proc.stdout.split())


@pytest.fixture(scope="session")
def slurm_cluster(docker_engine: None) -> None:
    """Require a Slurm cluster with a node up (make slurm-up): skip without one, fail under
    ENVBUILD_REQUIRE_DOCKER=1 (CI brings it up)."""
    if not _slurm_ok():
        missing("no Slurm cluster with a node up (sinfo; run `sudo make slurm-up`)")


@pytest.fixture(scope="session")
def base_image(docker_engine: None) -> str:
    """The bootstrapped base image (make base), as a tag in the loopback registry."""
    from envbuild.registry import manifest_digest

    try:
        digest = manifest_digest(BASE_IMAGE)
    except Exception as e:  # registry down
        digest = None
        reason = str(e)
    else:
        reason = "tag missing"
    if digest is None:
        missing(f"base image {BASE_IMAGE} not in the registry ({reason}); run `make base`")
    return BASE_IMAGE


def run_cli(*args: str, cwd: Path | str | None = None, env: dict | None = None,
            input: str | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """The real CLI, as a user runs it: `python -m envbuild ARGS` in a subprocess."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "COLUMNS": "200", **(env or {})}
    return subprocess.run([sys.executable, "-m", "envbuild", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, input=input, timeout=timeout)


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def images():
    """Tags a test creates, removed afterwards (only ours: other helpers share the engine)."""
    refs: list[str] = []
    yield refs
    if refs:
        subprocess.run(["docker", "rmi", *refs], capture_output=True, timeout=300)

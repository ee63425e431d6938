"""scripts/docker-up.sh where engine and registry already run: it only says so."""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import REPO_ROOT


@pytest.mark.docker
def test_docker_up_is_idempotent_when_up(docker_engine) -> None:
    proc = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "docker-up.sh")], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "engine already running" in proc.stdout and "registry already running" in proc.stdout
    assert "installing" not in proc.stdout and "starting" not in proc.stdout

"""engine.py: the docker CLI wrapper, with a stand-in CLI and with the real engine."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from envbuild import engine
from envbuild.errors import EngineError
from envbuild.registry import manifest_digest, parse_reference


@pytest.fixture
def broken_docker(tmp_path: Path, monkeypatch) -> None:
    """A docker CLI whose engine is down."""
    fake = tmp_path / "docker"
    fake.write_text("#!/bin/sh\necho 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock.' >&2\n"
                    "exit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("ENVBUILD_DOCKER", str(fake))


def test_no_docker_cli(monkeypatch) -> None:
    monkeypatch.setenv("ENVBUILD_DOCKER", "no-such-docker-cli")
    with pytest.raises(EngineError, match="docker CLI not found on PATH"):
        engine.docker_bin()
    assert engine.server_version() is None


def test_engine_down(broken_docker: None) -> None:
    assert engine.server_version() is None
    with pytest.raises(EngineError, match="not reachable; start it with `make docker-up`") as e:
        engine.require_engine()
    assert e.value.exit_code == 1
    with pytest.raises(EngineError, match="docker ps failed: Cannot connect to the Docker daemon"):
        engine.docker("ps")
    assert engine.docker("ps", check=False).returncode == 1
    assert engine.inspect_image("anything") is None


def test_run_args() -> None:
    assert engine.run_args("img", ["python3", "-V"]) == ["run", "--rm", "--network", "none", "img", "python3", "-V"]
    assert engine.run_args("img", ["true"], network="host", rm=False) == ["run", "--network", "host", "img", "true"]


@pytest.mark.docker
def test_real_engine(base_image: str) -> None:
    assert re.match(r"^\d+\.\d+", engine.require_engine())
    assert engine.inspect_image("127.0.0.1:5000/envbuild-test/never-made:x") is None
    engine.docker("pull", "-q", base_image)  # from the loopback registry
    info = engine.inspect_image(base_image)
    assert info and engine.image_exists(base_image)
    pinned = parse_reference(base_image).pinned(manifest_digest(base_image))
    assert pinned in info["RepoDigests"]  # the digest another machine can pull
    out = engine.docker(*engine.run_args(pinned, ["python3", "-c", "print(6 * 7)"]))
    assert out.stdout.decode().strip() == "42"

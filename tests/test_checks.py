"""envbuild doctor: each check with fakes, then the real command on this host."""

from __future__ import annotations

from pathlib import Path

import pytest

from envbuild import checks


@pytest.fixture
def host(monkeypatch):
    """A fake host: `tools` are on PATH, `answers` maps a probe's argv[0:2] to (rc, stdout)."""
    tools: dict[str, str] = {}
    answers: dict[tuple[str, ...], tuple[int, str]] = {}
    monkeypatch.setattr(checks.shutil, "which", lambda name: tools.get(name))
    monkeypatch.setattr(checks, "_run", lambda args, timeout=20: answers.get(tuple(args[:2]), (127, "")))

    class Host:
        def tool(self, name: str, answer: tuple[int, str] | None = None, arg: str = "--version") -> None:
            tools[name] = f"/usr/bin/{name}"
            if answer:
                answers[(f"/usr/bin/{name}", arg)] = answer

    return Host()


def test_docker_missing_reachable_and_down(host) -> None:
    c = checks.check_docker()
    assert (c.status, c.detail) == ("missing", "docker CLI not on PATH") and "docker-up" in c.fix
    host.tool("docker", (1, ""), arg="version")
    c = checks.check_docker()
    assert c.status == "missing" and c.detail == "not reachable" and "make docker-up" in c.fix
    host.tool("docker", (0, "20.10.24 28.2.2"), arg="version")
    c = checks.check_docker()
    assert c.ok and c.detail == "engine 20.10.24, CLI 28.2.2, reachable"


def test_gpus_from_one_nvidia_smi_query(tmp_path: Path, monkeypatch) -> None:
    from envbuild import nvidia
    from tests.helpers.nvidia import H200, fake_nvidia

    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert nvidia.gpus() == []
    c = checks.check_gpus([])
    assert c.status == "warn" and not c.required and "nvidia-smi not found" in c.detail
    fake_nvidia(tmp_path / "bin", H200, "1, NVIDIA H100 80GB HBM3, 550.54.15, 81559 MiB, GPU-def, 9.0", toolkit=False)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    found = nvidia.gpus()
    assert found[1] == {"index": "1", "name": "NVIDIA H100 80GB HBM3", "driver": "550.54.15", "memory": "81559 MiB",
                        "uuid": "GPU-def", "compute_capability": "9.0", "cuda": "12.4"}
    c = checks.check_gpus(found)
    assert c.status == "warn" and "nvidia-container-toolkit missing" in c.detail
    fake_nvidia(tmp_path / "bin", H200)
    c = checks.check_gpus(found)
    assert c.ok and c.detail.startswith("2 (0: NVIDIA H200 143771 MiB (sm 9.0); 1: NVIDIA H100") and "driver 580" in c.detail
    assert found[0]["uuid"] == "GPU-07a466ee-866c-ad45-6157-a8affb1feafe"


def test_tools(host) -> None:
    c = checks.check_tool("git", True, "provenance", "install git")
    assert c.status == "missing" and c.fix == "install git"
    host.tool("git", (0, "git version 2.39.5\n"))
    assert checks.check_tool("git", True, "provenance", "x").detail == "git version 2.39.5 (provenance)"
    c = checks.check_debootstrap()
    assert c.status == "warn" and not c.required


def test_disk(tmp_path: Path, monkeypatch) -> None:
    assert checks.check_disk(tmp_path / "not" / "yet").detail.endswith(f"free at {tmp_path}")
    monkeypatch.setattr(checks.shutil, "disk_usage", lambda p: type("U", (), {"free": 2**30})())
    c = checks.check_disk(tmp_path)
    assert c.status == "missing" and "1.0 GiB" in c.detail
    monkeypatch.setattr(checks.shutil, "disk_usage", lambda p: type("U", (), {"free": 5 * 2**30})())
    assert checks.check_disk(tmp_path).status == "warn"


def test_registry_unreachable_is_missing() -> None:
    c = checks.check_registry("127.0.0.1:9", "default base")
    assert c.status == "missing" and "unreachable" in c.detail and "docker-up" in c.fix

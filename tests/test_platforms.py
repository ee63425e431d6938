"""Two platforms in one lock; a linux/arm64 image of a pip project built on amd64 without emulation."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.conftest import REGISTRY, run_cli

MULTI_BASE = f"{REGISTRY}/envbuild-test/base-multi:bookworm"


@pytest.fixture(scope="module")
def multi_base(base_image: str) -> str:
    """An amd64 + arm64 base (an OCI index). The arm64 rootfs is bootstrapped under qemu once and
    cached in envbuild's own cache, like `make base`'s."""
    env = {k: v for k, v in os.environ.items() if k != "ENVBUILD_CACHE_DIR"}
    proc = run_cli("base", "bootstrap", "--platform", "linux/amd64,linux/arm64", "--push", MULTI_BASE, "--quiet",
                   env=env, timeout=3000)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return MULTI_BASE


def _inspect(ref: str) -> dict:
    return json.loads(subprocess.run(["docker", "image", "inspect", ref], capture_output=True, text=True,
                                     check=True).stdout)[0]


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.timeout(3600)  # the first arm64 debootstrap runs under emulation: many minutes on 2 cores
def test_two_platform_lock_builds_both_and_arm64_needs_no_emulation(
        multi_base: str, tmp_path: Path, images: list[str]) -> None:
    env = {"ENVBUILD_CACHE_DIR": str(tmp_path / "cache")}
    root = tmp_path / "proj"
    root.mkdir()
    name = f"ebt-plat-{uuid.uuid4().hex[:8]}"
    (root / "envbuild.toml").write_text(f'name = "{name}"\nbase = "{multi_base}"\n'
                                        'platforms = ["linux/amd64", "linux/arm64"]\n')
    (root / "requirements.in").write_text("numpy\npandas\n")
    locked = run_cli("lock", cwd=root, env=env)
    assert locked.returncode == 0, locked.stderr

    amd = run_cli("build", "--json", "--platform", "linux/amd64", cwd=root, env=env)
    assert amd.returncode == 0, amd.stderr
    amd_ref = json.loads(amd.stdout)["ref"]
    images.append(amd_ref)
    out = subprocess.run(["docker", "run", "--rm", "--network", "none", amd_ref, "python", "-c",
                          "import numpy, pandas, platform; print(platform.machine())"], capture_output=True, text=True)
    assert out.stdout.strip() == "x86_64", out.stderr

    arm = run_cli("build", "--json", "--platform", "linux/arm64", cwd=root, env=env)
    assert arm.returncode == 0, arm.stderr
    assert "no .pyc in the image" in arm.stderr  # nothing ran inside the arm64 target
    arm_ref = json.loads(arm.stdout)["ref"]
    images.append(arm_ref)
    assert arm_ref == amd_ref + "-arm64"  # the engine's own platform keeps the plain tag
    facts = _inspect(arm_ref)
    assert facts["Architecture"] == "arm64" and facts["Id"] == json.loads(arm.stdout)["id"]
    wheels = list((tmp_path / "cache" / "wheels").glob("*/numpy-*aarch64*.whl"))
    assert wheels, "the arm64 layer was made from aarch64 wheels"
    out = subprocess.run(["docker", "run", "--rm", "--network", "none", arm_ref, "python", "-c",
                          "import numpy, platform; print(platform.machine())"], capture_output=True, text=True,
                         timeout=300)
    assert out.stdout.strip() == "aarch64", out.stderr  # under qemu (binfmt), as a Mac's engine would run it natively

"""`envbuild build`, `envbuild push`, `envbuild base build` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

from envbuild import wheelhouse
from tests.conftest import REGISTRY, run_cli
from tests.helpers.locking import make_locked_project, write_project


def _docker(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=300)


def _id(ref: str) -> str | None:
    proc = _docker("image", "inspect", "--format", "{{.Id}}", ref)
    return proc.stdout.strip() if proc.returncode == 0 else None


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"ENVBUILD_CACHE_DIR": str(tmp_path / "cache")}


def test_build_without_lock_says_run_envbuild_lock(tmp_path: Path, env: dict[str, str]) -> None:
    write_project(tmp_path, "nolock", ["six"], base="127.0.0.1:5000/envbuild/base:bookworm")
    proc = run_cli("build", cwd=tmp_path, env=env)
    assert proc.returncode == 2 and "run envbuild lock" in proc.stderr


@pytest.mark.docker
def test_stale_lock_and_dockerfile_only(base_image: str, tmp_path: Path, env: dict[str, str]) -> None:
    lock = make_locked_project(tmp_path, "ebt-df", ["six==1.16.0"], base=base_image)
    proc = run_cli("build", "--dockerfile-only", cwd=tmp_path, env=env)
    assert proc.returncode == 0 and proc.stdout.startswith("# Rendered by envbuild")
    assert f"FROM {lock.base.pinned} AS builder" in proc.stdout
    assert run_cli("build", "--dockerfile-only", "-o", "Dockerfile", cwd=tmp_path, env=env).returncode == 0
    assert (tmp_path / "Dockerfile").read_text() == proc.stdout
    with open(tmp_path / "requirements.lock", "a") as f:
        f.write("# edited by hand\n")
    proc = run_cli("build", cwd=tmp_path, env=env)
    assert proc.returncode == 2 and "stale" in proc.stderr and "run envbuild lock" in proc.stderr


@pytest.mark.docker
def test_tampered_cached_wheel_is_refused_before_any_build(
        base_image: str, tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "proj"
    make_locked_project(root, f"ebt-tamper-{uuid.uuid4().hex[:8]}", ["six==1.16.0"], base=base_image)
    monkeypatch.setenv("ENVBUILD_CACHE_DIR", env["ENVBUILD_CACHE_DIR"])
    (wheel,) = wheelhouse.ensure(root / "requirements.lock", wheelhouse.Target("linux/amd64", "3.11")).wheels
    wheel.path.write_bytes(b"not the wheel the lock names")
    proc = run_cli("build", "--json", cwd=root, env=env)
    assert proc.returncode == 1 and proc.stdout == ""
    assert str(wheel.path) in proc.stderr.replace("\n", "") and wheel.sha256 in proc.stderr.replace("\n", "")
    tag = run_cli("build", "--dockerfile-only", cwd=root, env=env).stdout.split("-t ", 1)[1].split()[0]
    assert _id(tag) is None  # nothing was built


@pytest.mark.docker
def test_build_noop_push_and_pull_by_digest(base_image: str, tmp_path: Path, env: dict[str, str], images) -> None:
    name = f"ebt-cli-{uuid.uuid4().hex[:8]}"
    repo = f"{REGISTRY}/envbuild-test/{name}"
    lock = make_locked_project(tmp_path, name, ["six==1.16.0", "idna==3.7"], base=base_image, image=repo)
    ref = f"envbuild/{name}:{lock.lock_hash[:12]}"
    images.append(ref)
    proc = run_cli("build", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "installing 2 wheels into /opt/venv" in proc.stderr and f"built {ref}" in proc.stderr
    assert "digest sha256:" in proc.stderr
    proc = run_cli("build", "--json", cwd=tmp_path, env=env)
    result = json.loads(proc.stdout)
    assert result["up_to_date"] and result["ref"] == ref and "up to date" not in proc.stdout

    proc = run_cli("push", "--json", cwd=tmp_path, env=env)  # default repo: `image` from the spec
    assert proc.returncode == 0, proc.stderr
    entry = json.loads(proc.stdout)
    digest = entry["repo_digest"]
    assert digest.startswith(f"{repo}@sha256:") and entry["pushed"] == f"{repo}:{lock.lock_hash[:12]}"
    recorded = json.loads((tmp_path / ".envbuild" / "images.json").read_text())
    assert recorded[lock.lock_hash]["repo_digest"] == digest

    from envbuild.image import pushed_digest

    assert pushed_digest(tmp_path, lock.lock_hash) == digest
    local_id = _id(ref)
    assert entry["digest"] == result["digest"] and digest.endswith(result["digest"])  # the digest the build printed
    assert _docker("rmi", ref).returncode == 0 and _id(local_id) is None  # pushed over the API: no local tag
    assert _docker("pull", digest).returncode == 0
    images[:] = [digest]
    assert _id(digest) == local_id

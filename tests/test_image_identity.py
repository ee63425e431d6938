"""The image is a pure function of the lock: the same digests from any cache, engine state or push."""

from __future__ import annotations

import json
import os
import shutil
import sys
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.conftest import REGISTRY, run_cli
from tests.helpers.engines import private_engine  # noqa: F401 - a fixture
from tests.helpers.locking import make_locked_project


def _docker(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=300)


def _build(root: Path, cache: Path, *args: str) -> dict:
    proc = run_cli("build", "--json", *args, cwd=root, env={"ENVBUILD_CACHE_DIR": str(cache)})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.docker
def test_rebuild_from_empty_cache_and_engine_gives_the_same_image_and_push_says_so(
        base_image: str, tmp_path: Path, images: list[str]) -> None:
    name = f"ebt-id-{uuid.uuid4().hex[:8]}"
    repo = f"{REGISTRY}/envbuild-test/{name}"
    root = tmp_path / "proj"
    lock = make_locked_project(root, name, ["idna==3.7", "six==1.16.0"], base=base_image)
    ref = f"envbuild/{name}:{lock.lock_hash[:12]}"
    images.append(ref)
    first = _build(root, tmp_path / "cache1")
    assert first["id"].startswith("sha256:") and first["digest"].startswith("sha256:")
    assert _docker("image", "inspect", "-f", "{{.Id}}", ref).stdout.strip() == first["id"]
    assert _docker("rmi", ref).returncode == 0
    shutil.rmtree(tmp_path / "cache1")
    second = _build(root, tmp_path / "cache2")
    assert (second["id"], second["digest"], second["up_to_date"]) == (first["id"], first["digest"], False)

    check = run_cli("build", "--check", "--json", cwd=root, env={"ENVBUILD_CACHE_DIR": str(tmp_path / "cache2")})
    assert check.returncode == 0, check.stderr
    assert json.loads(check.stdout)["identical"] is True and "bit-identical" in check.stderr

    pushed = run_cli("push", repo, cwd=root, env={"ENVBUILD_CACHE_DIR": str(tmp_path / "cache2")})
    assert pushed.returncode == 0, pushed.stderr
    assert pushed.stdout.strip() == f"{repo}@{first['digest']}"
    by_digest = f"{repo}@{first['digest']}"
    assert _docker("rmi", ref).returncode == 0  # no local copy: the pull must bring the same image
    images.remove(ref)
    assert _docker("pull", "-q", by_digest).returncode == 0
    images.append(by_digest)
    assert _docker("image", "inspect", "-f", "{{.Id}}", by_digest).stdout.strip() == first["id"]
    out = _docker("run", "--rm", "--network", "none", by_digest, "python", "-c", "import idna, six; print('ok')")
    assert out.stdout.strip() == "ok", out.stderr


@pytest.mark.docker
def test_another_engine_with_a_cache_of_its_own_gets_the_same_image(
        private_engine, base_image: str, tmp_path: Path, images: list[str]) -> None:
    """"Any machine": a second dockerd (its own data-root, nothing pulled or loaded) and an empty cache
    build the image with the same id and manifest digest the shared engine got."""
    host, _ = private_engine
    name = f"ebt-2nd-{uuid.uuid4().hex[:8]}"
    root = tmp_path / "proj"
    lock = make_locked_project(root, name, ["six==1.16.0"], base=base_image)
    ref = f"envbuild/{name}:{lock.lock_hash[:12]}"
    images.append(ref)
    first = _build(root, tmp_path / "cache1")
    proc = run_cli("build", "--json", cwd=root, env={"ENVBUILD_CACHE_DIR": str(tmp_path / "cache2"),
                                                       "DOCKER_HOST": host})
    assert proc.returncode == 0, proc.stderr
    second = json.loads(proc.stdout)
    assert (second["id"], second["digest"], second["up_to_date"]) == (first["id"], first["digest"], False)
    there = subprocess.run(["docker", "-H", host, "image", "inspect", "-f", "{{.Id}}", ref], capture_output=True,
                           text=True, timeout=60)
    assert there.stdout.strip() == first["id"]


@pytest.mark.docker
def test_oci_layout_is_read_by_skopeo_and_umoci_and_runs_with_runc(
        base_image: str, tmp_path: Path, images: list[str]) -> None:
    name = f"ebt-oci-{uuid.uuid4().hex[:8]}"
    root = tmp_path / "proj"
    lock = make_locked_project(root, name, ["six==1.16.0"], base=base_image)
    images.append(f"envbuild/{name}:{lock.lock_hash[:12]}")
    layout = tmp_path / "oci"
    built = _build(root, tmp_path / "cache", "--oci", str(layout))
    tag = lock.lock_hash[:12]
    inspected = json.loads(subprocess.run(["skopeo", "inspect", f"oci:{layout}:{tag}"], capture_output=True,
                                          text=True, check=True).stdout)
    assert inspected["Digest"] == built["digest"]
    config = json.loads(subprocess.run(["skopeo", "inspect", "--config", f"oci:{layout}:{tag}"],
                                       capture_output=True, text=True, check=True).stdout)
    assert config["architecture"] == "amd64" and config["config"]["WorkingDir"] == "/workspace"
    bundle = tmp_path / "bundle"
    subprocess.run(["umoci", "unpack", "--image", f"{layout}:{tag}", str(bundle)], capture_output=True, check=True)
    spec = json.loads((bundle / "config.json").read_text())
    spec["process"]["args"] = ["python", "-c", "import six, sys; print(six.__version__, sys.prefix)"]
    spec["process"]["terminal"] = False
    (bundle / "config.json").write_text(json.dumps(spec))
    out = subprocess.run(["runc", "run", f"envbuild-test-{uuid.uuid4().hex[:8]}"], cwd=bundle,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.split() == ["1.16.0", "/opt/venv"], out.stderr


@pytest.mark.docker
@pytest.mark.slow
def test_a_second_way_that_shares_nothing_gives_the_same_digests(
        base_image: str, tmp_path: Path, images: list[str]) -> None:
    """Another Python build (Debian's /usr/bin/python3, not this venv's), another envbuild install,
    another cache, the image gone from the engine: the same id and manifest digest."""
    debian_python = Path("/usr/bin/python3")
    if not debian_python.exists():
        pytest.fail("this test needs Debian's /usr/bin/python3 (python3-venv): run make docker-up")
    name = f"ebt-way2-{uuid.uuid4().hex[:8]}"
    root = tmp_path / "proj"
    lock = make_locked_project(root, name, ["six==1.16.0"], base=base_image)
    ref = f"envbuild/{name}:{lock.lock_hash[:12]}"
    images.append(ref)
    first = _build(root, tmp_path / "cache1")

    venv = tmp_path / "other-python"
    subprocess.run([str(debian_python), "-m", "venv", str(venv)], check=True, capture_output=True)
    from tests.conftest import REPO_ROOT

    source = tmp_path / "envbuild-src"  # a copy: building a wheel writes build/ and *.egg-info beside the source
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    shutil.copytree(REPO_ROOT / "envbuild", source / "envbuild", ignore=shutil.ignore_patterns("__pycache__"))
    install = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(source)], capture_output=True,
                             text=True, timeout=1200)
    assert install.returncode == 0, install.stderr[-2000:]
    other = subprocess.run([str(venv / "bin" / "python"), "-c", "import sys; print(sys.version)"],
                           capture_output=True, text=True).stdout.strip()
    assert _docker("rmi", ref).returncode == 0
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, "ENVBUILD_CACHE_DIR": str(tmp_path / "cache2")}
    proc = subprocess.run([str(venv / "bin" / "envbuild"), "build", "--json"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-2000:]
    second = json.loads(proc.stdout)
    assert (second["id"], second["digest"]) == (first["id"], first["digest"]), f"{other} vs {sys.version}"


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.timeout(2400)  # torch twice from scratch: install, compile, write, compress
def test_torch_example_rebuilds_bit_identical_with_torch_in_a_layer_of_its_own(
        base_image: str, tmp_path: Path, images: list[str]) -> None:
    from tests.conftest import REPO_ROOT

    root = Path(shutil.copytree(REPO_ROOT / "examples" / "torch-mnistlike", tmp_path / "torch"))
    env = {"ENVBUILD_CACHE_DIR": str(tmp_path / "cache")}
    locked = run_cli("lock", cwd=root, env=env, timeout=1800)
    assert locked.returncode == 0, locked.stderr
    check = run_cli("build", "--check", "--json", cwd=root, env=env, timeout=1800)
    assert check.returncode == 0, check.stderr[-3000:]
    result = json.loads(check.stdout)
    images.append(result["ref"])
    assert result["identical"] and result["rebuilt_digest"] == result["digest"]
    layers = json.loads(_docker("image", "inspect", "-f", "{{json .RootFS.Layers}}", result["ref"]).stdout)
    assert len(layers) >= 4, layers  # base, torch alone, the other packages, the runtime
    torch_layer = subprocess.run(["docker", "history", "--no-trunc", "--format", "{{.CreatedBy}}", result["ref"]],
                                 capture_output=True, text=True).stdout
    assert "pip: torch==" in torch_layer, torch_layer

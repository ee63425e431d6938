"""The image is a pure function of the lock: the same digests from any cache, engine state or push."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.conftest import REGISTRY, run_cli
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

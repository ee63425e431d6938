"""The image: rendering and names (units), and the real build through the engine."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

from envbuild import image
from envbuild.errors import EnvbuildError
from envbuild.fsutil import sha256_file
from envbuild.lockfile import Base, EnvLock, inputs_hash, lock_inputs, write_lock
from envbuild.spec import load_spec
from tests.helpers.locking import lock_project, make_locked_project

DIGEST = "sha256:" + "d" * 64
SIX_LOCK = "six==1.16.0 --hash=sha256:8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254\n"


def _fake_project(root: Path, name: str = "demo") -> EnvLock:
    """A project and an envbuild.lock written by hand (no resolver, no registry)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(f'[tool.envbuild]\nname = "{name}"\n')
    (root / "requirements.in").write_text("six\n")
    (root / "requirements.lock").write_text(SIX_LOCK)
    (root / "train.py").write_text("print(1)\n")
    inputs = lock_inputs(load_spec(root))
    lock = EnvLock(envbuild="0.1.0", python="3.11", platforms=["linux/amd64"], inputs_hash=inputs_hash(inputs),
                   inputs=inputs, base=Base("127.0.0.1:5000/envbuild/base:bookworm", DIGEST),
                   lockfiles={"requirements.lock": sha256_file(root / "requirements.lock")})
    write_lock(root, lock)
    return lock


def test_render_pins_the_base_and_labels_the_lock(tmp_path: Path) -> None:
    lock = _fake_project(tmp_path)
    text = image.render(load_spec(tmp_path), lock)
    pinned = f"127.0.0.1:5000/envbuild/base@{DIGEST}"
    assert text.count(f"FROM {pinned}") == 2
    assert "--require-hashes --no-deps" in text and "--no-index" in text
    assert "COPY --from=builder /opt/venv /opt/venv" in text and "COPY site/ /opt/envbuild/site/" in text
    assert "CUBLAS_WORKSPACE_CONFIG=:4096:8" in text and "NVIDIA_TF32_OVERRIDE=0" in text
    assert "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE" not in text and "USER envbuild" in text
    assert f'dev.envbuild.lock-hash="{lock.lock_hash}"' in text and f'dev.envbuild.base-digest="{DIGEST}"' in text
    assert "COPY --chown" not in text  # code is mounted at run time unless baked


def test_render_variants(tmp_path: Path) -> None:
    lock = _fake_project(tmp_path)
    spec = load_spec(tmp_path)
    assert "COPY --chown=envbuild:envbuild code/ /workspace/" in image.render(spec, lock, bake_code=True)
    assert "ENV TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=0" in image.render(
        spec, lock, base_env={"TORCH_ALLOW_TF32_CUBLAS_OVERRIDE": "1"})
    team = image.render(spec, lock, team_base=True)
    assert "venv --without-pip /opt/envbuild/base-venv" in team and "VIRTUAL_ENV=/opt/envbuild/base-venv" in team
    assert image.pth_text("3.11", team_base=False).splitlines() == [
        "/opt/envbuild/site", "/opt/envbuild/base-venv/lib/python3.11/site-packages", "import envbuild_hook"]


def test_tag_follows_the_lock_not_the_code(tmp_path: Path) -> None:
    lock = _fake_project(tmp_path)
    ref = image.image_ref(load_spec(tmp_path), lock)
    assert ref == f"envbuild/demo:{lock.lock_hash[:12]}"
    baked = image.image_ref(load_spec(tmp_path), lock, bake_code=True)
    (tmp_path / "train.py").write_text("print(2)\n")
    (tmp_path / "outputs").mkdir()
    (tmp_path / "outputs" / "model.bin").write_text("x")
    assert image.image_ref(load_spec(tmp_path), lock) == ref
    baked2 = image.image_ref(load_spec(tmp_path), lock, bake_code=True)
    assert baked.startswith(ref + "-code-") and baked2 != baked
    (tmp_path / "outputs" / "model.bin").write_text("y")  # outputs are not code
    assert image.image_ref(load_spec(tmp_path), lock, bake_code=True) == baked2


def test_missing_or_stale_lock_is_refused(tmp_path: Path) -> None:
    lock = _fake_project(tmp_path)
    assert image.require_fresh_lock(load_spec(tmp_path)) == lock
    (tmp_path / "requirements.lock").write_text(SIX_LOCK + "# edited\n")
    with pytest.raises(EnvbuildError, match="requirements.lock was edited by hand.*run envbuild lock") as e:
        image.require_fresh_lock(load_spec(tmp_path))
    assert e.value.exit_code == 2
    (tmp_path / "envbuild.lock").unlink()
    with pytest.raises(EnvbuildError, match="run envbuild lock"):
        image.require_fresh_lock(load_spec(tmp_path))


def test_empty_locks_are_refused_clearly(tmp_path: Path) -> None:
    lock = _fake_project(tmp_path)
    lock.lockfiles.pop("requirements.lock")
    with pytest.raises(EnvbuildError, match="governs neither requirements.lock nor conda-lock.yml; run envbuild lock"):
        image.refuse_unsupported(load_spec(tmp_path), lock)


def test_push_record_and_remote_names(tmp_path: Path) -> None:
    assert image.remote_ref("envbuild/demo:abc123abc123", "127.0.0.1:5000/t/demo") == "127.0.0.1:5000/t/demo:abc123abc123"
    assert image.remote_ref("envbuild/demo:abc123abc123", "127.0.0.1:5000/t/demo:v1") == "127.0.0.1:5000/t/demo:v1"
    assert image.pushed_digest(tmp_path, "f" * 64) is None
    (tmp_path / ".envbuild").mkdir()
    (tmp_path / ".envbuild" / "images.json").write_text(json.dumps({"f" * 64: {"repo_digest": "r@sha256:1"}}))
    assert image.pushed_digest(tmp_path, "f" * 64) == "r@sha256:1"


# --- through the engine ------------------------------------------------------------------


def _run(ref: str, code: str) -> str:
    proc = subprocess.run(["docker", "run", "--rm", "--network", "none", ref, "python", "-c", code],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.mark.docker
def test_build_imports_locked_versions_and_rebuilds_only_on_dependency_change(
        base_image: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVBUILD_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "proj"
    lock = make_locked_project(root, f"ebt-img-{uuid.uuid4().hex[:8]}", ["six==1.16.0", "idna==3.7"], base=base_image)
    refs = []
    try:
        first = image.build(load_spec(root), lock)
        refs.append(first.ref)
        assert not first.up_to_date and sorted(first.downloaded) == ["idna==3.7", "six==1.16.0"]
        check = ("import importlib, importlib.metadata as m;"
                 "print(*[m.version(p) for p in ('six', 'idna') if importlib.import_module(p)])")
        assert _run(first.ref, check) == "1.16.0 3.7"
        facts = image.inspect(first.ref)
        assert facts.labels[image.LABEL_LOCK_HASH] == lock.lock_hash
        assert facts.labels[image.LABEL_BASE_DIGEST] == lock.base.digest

        assert image.build(load_spec(root), lock).up_to_date  # the second build is a no-op
        assert image.ensure_image(load_spec(root), lock) == first.ref
        (root / "train.py").write_text("print('edited')\n")  # code does not rebuild
        again = image.build(load_spec(root), image.require_fresh_lock(load_spec(root)))
        assert again.up_to_date and again.id == first.id

        (root / "requirements.in").write_text("six==1.16.0\nidna==3.7\niniconfig==2.0.0\n")
        lock2 = lock_project(root, base=base_image)
        second = image.build(load_spec(root), lock2)
        refs.append(second.ref)
        assert not second.up_to_date and second.ref != first.ref
        assert second.downloaded == ["iniconfig==2.0.0"] and sorted(second.cached) == ["idna==3.7", "six==1.16.0"]
        assert _run(second.ref, "import iniconfig, six; print('ok')") == "ok"
    finally:
        subprocess.run(["docker", "rmi", *refs], capture_output=True)


@pytest.mark.docker
def test_a_failed_sandbox_step_is_named_with_its_last_lines(base_image: str) -> None:
    from envbuild import sandbox
    from envbuild.registry import resolve

    pinned = resolve(base_image).pinned
    with pytest.raises(EnvbuildError) as e:
        sandbox.run(pinned, ["sh", "-c", "for i in $(seq 1 30); do echo line$i; done; exit 3"], what="the step")
    msg = str(e.value)
    assert "the step failed in a container of" in msg and "(exit 3)" in msg and "line30" in msg and "line16" in msg
    assert "line15\n" not in msg and e.value.exit_code == 1
    leftover = subprocess.run(["docker", "ps", "-a", "--filter", "name=envbuild-sandbox-", "--format", "{{.Status}}"],
                              capture_output=True, text=True).stdout
    assert "Exited (3)" not in leftover  # the failed sandbox was removed

"""Conda packages: host-side cache by sha256, refusals, the staged prefix, and real builds."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from envbuild import condapkgs, image
from envbuild.errors import EnvbuildError
from envbuild.fsutil import sha256_file
from envbuild.lockfile import require_lock
from envbuild.spec import load_spec
from envbuild.wheelhouse import Pin
from tests.conftest import BASE_IMAGE, run_cli
from tests.helpers.engines import sh_in as _sh
from tests.helpers.projects import make_build_channel, write, write_conda_project

SIX = "8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254"
PLATFORM = "linux/amd64"


@pytest.fixture(scope="session")
def _locked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A conda project (environment.yml with a pip: section), locked once by the real `envbuild lock`."""
    tmp = tmp_path_factory.mktemp("conda")
    make_build_channel(tmp / "channel")
    proj = write_conda_project(tmp / "proj", tmp / "channel", f"ebt-conda-{uuid.uuid4().hex[:8]}", BASE_IMAGE)
    r = run_cli("lock", cwd=proj, env={"ENVBUILD_CACHE_DIR": str(tmp / "lock-cache")})
    assert r.returncode == 0, r.stderr
    return proj


@pytest.fixture
def project(_locked: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh copy of the locked project, with its own empty cache."""
    monkeypatch.setenv("ENVBUILD_CACHE_DIR", str(tmp_path / "cache"))
    return Path(shutil.copytree(_locked, tmp_path / "proj"))


def _edit_lock(root: Path, old: str, new: str) -> None:
    path = root / "conda-lock.yml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_read_splits_conda_packages_and_pip_entries(project: Path) -> None:
    lock = condapkgs.read(project, PLATFORM)
    assert lock.subdir == "linux-64" and lock.python == "3.11"
    assert [condapkgs.describe(p) for p in lock.packages] == ["greet=1.0=0", "greetlib=2.0=py_0", "python=3.11.9=0"]
    assert lock.pip == [Pin("six", "1.16.0", frozenset({SIX}))]


def test_read_refuses_an_entry_without_sha256(project: Path) -> None:
    greet = next(p for p in condapkgs.read(project, PLATFORM).packages if p.name == "greet")
    _edit_lock(project, f"sha256: {greet.sha256}", "")
    with pytest.raises(EnvbuildError, match="greet 1.0 has no sha256 hash; run envbuild lock"):
        condapkgs.read(project, PLATFORM)


def test_cache_by_sha256_downloads_once_and_refuses_a_changed_file(project: Path, tmp_path: Path) -> None:
    first = condapkgs.ensure(project, PLATFORM)
    assert sorted(first.downloaded) == ["greet=1.0=0", "greetlib=2.0=py_0", "python=3.11.9=0", "six==1.16.0"]
    greet = next(f for f in first.files if f.package.name == "greet")
    assert greet.path == tmp_path / "cache" / "conda" / str(greet.package.sha256) / "greet-1.0-0.tar.bz2"
    assert sha256_file(greet.path) == greet.package.sha256

    again = condapkgs.ensure(project, PLATFORM)
    assert again.downloaded == [] and len(again.cached) == 4

    with greet.path.open("ab") as f:
        f.write(b"\0")
    with pytest.raises(EnvbuildError) as e:
        condapkgs.ensure(project, PLATFORM)
    msg = str(e.value)
    assert str(greet.path) in msg and sha256_file(greet.path) in msg and str(greet.package.sha256) in msg
    assert "conda-lock.yml expects" in msg and "greet=1.0=0" in msg and e.value.exit_code == 1


def test_a_substituted_download_is_refused(project: Path) -> None:
    greet = next(p for p in condapkgs.read(project, PLATFORM).packages if p.name == "greet")
    _edit_lock(project, f"md5: {greet.md5}", "md5: " + "f" * 32)
    with pytest.raises(EnvbuildError, match=f"downloaded md5 is {greet.md5} but conda-lock.yml expects f{{32}} "
                                            "for greet=1.0=0; the channel served a substituted file"):
        condapkgs.ensure(project, PLATFORM)
    assert not (Path(condapkgs.conda_dir()) / str(greet.sha256)).exists()  # nothing half-cached


def test_stage_builds_the_prefix_for_opt_conda(project: Path, tmp_path: Path) -> None:
    cset = condapkgs.ensure(project, PLATFORM)
    ctx = tmp_path / "ctx"
    condapkgs.stage(cset, ctx, pth="/opt/envbuild/site\nimport envbuild_hook\n")
    prefix = ctx / "conda"
    assert "greet prefix=/opt/conda\n" in (prefix / "bin" / "greet").read_text()  # placeholder patched
    assert (prefix / "share" / "greet" / "hello.txt").read_text() == "hello from greet 1.0\n"
    site = prefix / "lib" / "python3.11" / "site-packages"
    assert (site / "greetlib" / "__init__.py").is_file() and (site / "zz-envbuild.pth").is_file()
    meta = prefix / "conda-meta" / "greet-1.0-0.json"
    record = json.loads(meta.read_text())
    greet = next(p for p in cset.lock.packages if p.name == "greet")
    assert record["url"] == greet.url and record["sha256"] == greet.sha256
    assert meta.stat().st_mode & 0o777 == 0o644
    for m in (prefix / "conda-meta").glob("*.json"):  # no host paths in the image
        assert str(tmp_path) not in m.read_text()
    assert f"six==1.16.0 --hash=sha256:{SIX}" in (ctx / condapkgs.PIP_LOCK).read_text()
    assert [p.name for p in (ctx / condapkgs.WHEELS_DIR).iterdir()] == ["six-1.16.0-py2.py3-none-any.whl"]


def test_render_installs_conda_into_opt_conda_and_puts_it_on_path(project: Path) -> None:
    text = image.render(load_spec(project), require_lock(project))
    assert "COPY conda/ /opt/conda/" in text and "--python /opt/conda/bin/python install --no-index" in text
    assert "--require-hashes --no-deps -r /envbuild/conda-requirements.lock" in text
    assert "COPY --from=builder /opt/conda /opt/conda" in text and "CONDA_PREFIX=/opt/conda" in text
    assert "ENV PATH=/opt/conda/bin:/opt/envbuild/base-venv/bin:" in text
    assert "/opt/venv" not in text and "COPY requirements.lock" not in text  # no pip dependencies


# --- through the engine ------------------------------------------------------------------


@pytest.mark.docker
def test_conda_project_builds_offline_from_verified_packages(base_image: str, project: Path, tmp_path: Path) -> None:
    assert base_image == BASE_IMAGE
    refs: list[str] = []
    try:
        # A changed byte in the cache is refused before any image is built.
        greet = next(f for f in condapkgs.ensure(project, PLATFORM).files if f.package.name == "greet")
        greet.path.write_bytes(greet.path.read_bytes() + b"\0")
        r = run_cli("build", cwd=project)
        assert r.returncode == 1 and str(greet.path) in r.stderr and str(greet.package.sha256) in r.stderr, r.stderr
        ref = image.image_ref(load_spec(project), require_lock(project))
        assert image.inspect(ref) is None
        shutil.rmtree(greet.path.parent)  # what the message tells the user to do

        r = run_cli("build", "--json", cwd=project)
        assert r.returncode == 0, r.stderr
        first = json.loads(r.stdout)
        refs.append(first["ref"])
        assert first["ref"] == ref and first["downloaded"] == ["greet=1.0=0"]
        out = _sh(ref, "test -f /opt/conda/conda-meta/greet-1.0-0.json; test -f /opt/conda/conda-meta/python-3.11.9-0.json;"
                       "cat /opt/conda/conda-meta/greetlib-2.0-py_0.json >/dev/null; cat /opt/conda/share/greet/hello.txt;"
                       "greet; command -v python; id -un;"
                       "python -c 'import greetlib, six, envbuild.track; print(greetlib.VERSION, six.__version__)'")
        assert out.split("\n")[:6] == ["hello from greet 1.0", "greet prefix=/opt/conda", "/opt/conda/bin/python",
                                       "envbuild", "2.0 1.16.0", ""]
        assert "is up to date" in run_cli("build", cwd=project).stderr  # the second build is a no-op
        check = run_cli("build", "--check", "--json", cwd=project)  # from scratch: bit-identical
        assert check.returncode == 0 and json.loads(check.stdout)["identical"], check.stderr

        # pip dependencies too: a venv beside /opt/conda, first on PATH; only the new pin is fetched.
        write(project / "requirements.in", "idna==3.7\n")
        assert run_cli("lock", cwd=project).returncode == 0
        r = run_cli("build", "--json", cwd=project)
        assert r.returncode == 0, r.stderr
        second = json.loads(r.stdout)
        refs.append(second["ref"])
        assert second["ref"] != ref and second["downloaded"] == ["idna==3.7"]
        out = _sh(second["ref"], "python -c 'import idna; print(idna.__version__)'; greet;"
                                 "/opt/conda/bin/python -c 'import greetlib, six; print(\"conda ok\")'")
        assert out.split("\n") == ["3.7", "greet prefix=/opt/conda", "conda ok", ""]
    finally:
        if refs:
            subprocess.run(["docker", "rmi", *refs], capture_output=True)

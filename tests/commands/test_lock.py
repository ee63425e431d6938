"""`envbuild lock` through the real CLI: no-op, --check per input, atomic failure, base digests."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.conftest import REGISTRY
from tests.helpers.projects import make_channel, write

LOCKFILES = ("requirements.lock", "conda-lock.yml", "envbuild.lock")


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVBUILD_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "envbuild-cache"))


def _snapshot(proj: Path) -> dict[str, bytes]:
    return {n: (proj / n).read_bytes() for n in LOCKFILES if (proj / n).exists()}


@pytest.fixture(scope="session")
def _locked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A locked project with every kind of input: requirements file, a group, environment.yml."""
    from tests.conftest import run_cli as cli

    tmp_path = tmp_path_factory.mktemp("locked")
    make_channel(tmp_path / "channel")
    proj = tmp_path / "proj"
    write(proj / "pyproject.toml", '[project]\nname = "full"\n[project.optional-dependencies]\n'
                                   'extra = ["idna"]\nmore = ["packaging"]\n'
                                   '[tool.envbuild]\nrequirements = "requirements.in"\ngroups = ["extra"]\n'
                                   'conda = "environment.yml"\n')
    write(proj / "requirements.in", "six\n")
    write(proj / "environment.yml", f"channels: [{(tmp_path / 'channel').as_uri()}]\ndependencies: [libb]\n")
    r = cli("lock", cwd=proj)
    assert r.returncode == 0, r.stderr
    assert set(_snapshot(proj)) == set(LOCKFILES)
    return proj


@pytest.fixture
def project(_locked: Path, tmp_path: Path) -> Path:
    """A fresh copy of the locked project (locking once per session keeps the suite quick)."""
    return Path(shutil.copytree(_locked, tmp_path / "proj"))


def test_noop_lock_says_up_to_date_and_resolves_nothing(project: Path, cli) -> None:
    before = {n: (project / n).stat().st_mtime_ns for n in LOCKFILES}
    r = cli("lock", cwd=project)
    assert r.returncode == 0 and "up to date" in r.stdout
    assert before == {n: (project / n).stat().st_mtime_ns for n in LOCKFILES}
    r = cli("lock", "--check", cwd=project)
    assert r.returncode == 0 and "up to date" in r.stdout
    r = cli("lock", "--check", "--json", cwd=project)
    assert json.loads(r.stdout) == {"fresh": True, "reasons": []}


def _edit(path: Path, old: str, new: str) -> str:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return text


@pytest.mark.parametrize("file,old,new,named", [
    ("requirements.in", "six\n", "six\nattrs\n", "requirements file requirements.in changed"),
    ("pyproject.toml", 'groups = ["extra"]', 'groups = ["extra", "more"]', "groups changed"),
    ("pyproject.toml", 'extra = ["idna"]', 'extra = ["idna>=3"]', "dependency list changed"),
    ("environment.yml", "[libb]", "[libb, liba]", "environment.yml changed"),
    ("pyproject.toml", "[tool.envbuild]\n", '[tool.envbuild]\nbase = "example.org/other:1"\n', "base tag changed"),
    ("pyproject.toml", "[tool.envbuild]\n", '[tool.envbuild]\npython = "3.12"\n', "python changed"),
    ("pyproject.toml", "[tool.envbuild]\n", '[tool.envbuild]\nplatforms = ["linux/amd64", "linux/arm64"]\n',
     "platforms changed"),
    ("pyproject.toml", "[tool.envbuild]\n", '[tool.envbuild]\nresolver = "pip-tools"\n', "resolver changed"),
    ("requirements.lock", "six==", "six ==", "requirements.lock was edited by hand"),
    ("conda-lock.yml", "manager: conda", "manager:  conda", "conda-lock.yml was edited by hand"),
    ("envbuild.lock", '"python": "', '"python ": "', "envbuild.lock was edited by hand"),
])
def test_check_names_the_changed_input(project: Path, cli, file: str, old: str, new: str, named: str) -> None:
    original = _edit(project / file, old, new)
    r = cli("lock", "--check", cwd=project)
    assert r.returncode == 1, r.stdout + r.stderr
    assert named in r.stderr, r.stderr
    (project / file).write_text(original)
    assert cli("lock", "--check", cwd=project).returncode == 0


def test_hand_edited_base_digest_is_stale(project: Path, cli) -> None:
    data = json.loads((project / "envbuild.lock").read_text())
    data["inputs"]["base tag"] = "0" * 64
    (project / "envbuild.lock").write_text(json.dumps(data))
    r = cli("lock", "--check", cwd=project)
    assert r.returncode == 1 and "envbuild.lock was edited by hand" in r.stderr


@pytest.mark.parametrize("file,old,new,named", [
    ("requirements.in", "six\n", "six\nnosuchpkg-envbuild-zz\n", "nosuchpkg-envbuild-zz"),
    ("requirements.in", "six\n", "six==1.17.0\nsix<1\n", "six"),
    ("environment.yml", "[libb]", "[libb, liba >=2]", "liba"),
])
def test_failing_resolution_leaves_lockfiles_byte_identical(project: Path, cli, file: str, old: str, new: str,
                                                           named: str) -> None:
    before = _snapshot(project)
    _edit(project / file, old, new)
    r = cli("lock", cwd=project)
    assert r.returncode == 2, r.stdout + r.stderr
    assert named in r.stderr and "Traceback" not in r.stderr
    assert _snapshot(project) == before
    assert not list(project.glob(".envbuild-lock-*")) and not list(project.glob(".envbuild/lock-*"))  # no temp leftovers


def test_upgrade_package_relocks_and_keeps_base(project: Path, cli) -> None:
    base = json.loads((project / "envbuild.lock").read_text())["base"]
    r = cli("lock", "--upgrade-package", "six", "--json", cwd=project)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["status"] == "locked" and out["lock"]["base"] == base


def test_unreachable_index_is_a_clear_error(tmp_path: Path, cli) -> None:
    proj = tmp_path / "proj"
    write(proj / "envbuild.toml", 'resolver = "uv"\n')
    write(proj / "requirements.in", "six\n")
    r = cli("lock", cwd=proj, env={"UV_INDEX_URL": "http://127.0.0.1:9/simple"})
    assert r.returncode == 2 and "unreachable" in r.stderr, r.stderr
    write(proj / "envbuild.toml", 'resolver = "pip-tools"\n')
    r = cli("lock", cwd=proj, env={"PIP_CONFIG_FILE": "/dev/null", "PIP_FIND_LINKS": "", "PIP_RETRIES": "0",
                                   "PIP_INDEX_URL": "http://127.0.0.1:9/simple"})
    assert r.returncode == 2 and "unreachable" in r.stderr, r.stderr


def test_unreachable_registry_is_a_clear_error(tmp_path: Path, cli) -> None:
    proj = tmp_path / "proj"
    write(proj / "envbuild.toml", 'base = "127.0.0.1:9/envbuild/nothing:v1"\n')
    write(proj / "requirements.in", "six\n")
    r = cli("lock", cwd=proj)
    assert r.returncode == 2 and "registry 127.0.0.1:9 unreachable" in r.stderr, r.stderr
    assert not (proj / "envbuild.lock").exists()


# --- base digest against the loopback registry -------------------------------------------


def _registry_digest(ref: str) -> str:
    """Docker-Content-Digest as the registry answers it."""
    name, tag = ref.split("/", 1)[1].rsplit(":", 1)
    accept = ("application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, "
              "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json")
    req = urllib.request.Request(f"http://{REGISTRY}/v2/{name}/manifests/{tag}", method="HEAD",
                                 headers={"Accept": accept})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.headers["Docker-Content-Digest"]


def _tiny_image(ref: str) -> None:
    """A one-file image (docker import), so re-pushing it moves the tag to new content."""
    from envbuild.engine import docker

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = uuid.uuid4().hex.encode()
        info = tarfile.TarInfo("stamp")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    docker("import", "-", ref, input=buf.getvalue())


@pytest.fixture
def test_tag(base_image: str):
    from envbuild.engine import docker

    ref = f"{REGISTRY}/envbuild-test/lock-{uuid.uuid4().hex[:10]}:v1"
    docker("tag", base_image, ref)
    docker("push", ref)
    pushed = f"{ref.rsplit(':', 1)[0]}@{_registry_digest(ref)}"
    yield ref
    docker("rmi", ref, check=False)
    docker("rmi", pushed, check=False)  # only the reference the push added; the base image stays


@pytest.mark.docker
def test_base_digest_pins_and_moves(tmp_path: Path, cli, test_tag: str) -> None:
    from envbuild.engine import docker

    proj = tmp_path / "proj"
    write(proj / "envbuild.toml", f'base = "{test_tag}"\n')
    write(proj / "requirements.in", "six\n")
    assert cli("lock", cwd=proj).returncode == 0
    old = _registry_digest(test_tag)
    lock = json.loads((proj / "envbuild.lock").read_text())
    assert lock["base"]["digest"] == old and lock["base"]["source"] == "registry"
    assert lock["base"]["platforms"] == {"linux/amd64": old}

    _tiny_image(test_tag)  # re-push the tag with new content
    docker("push", test_tag)
    new = _registry_digest(test_tag)
    assert new != old
    r = cli("lock", cwd=proj)
    assert r.returncode == 0 and "up to date" in r.stdout
    assert json.loads((proj / "envbuild.lock").read_text())["base"]["digest"] == old  # pinned
    assert cli("lock", "--check", cwd=proj).returncode == 0  # offline and green
    r = cli("lock", "--check", "--remote", cwd=proj)
    assert r.returncode == 1 and "has moved" in r.stderr and new in r.stderr, r.stderr
    r = cli("lock", "--upgrade", cwd=proj)
    assert r.returncode == 0, r.stderr
    assert json.loads((proj / "envbuild.lock").read_text())["base"]["digest"] == new
    assert cli("lock", "--check", "--remote", cwd=proj).returncode == 0


@pytest.mark.docker
def test_registry_unreachable_falls_back_to_engine(tmp_path: Path, cli, test_tag: str) -> None:
    proj = tmp_path / "proj"
    write(proj / "envbuild.toml", f'base = "{test_tag}"\n')
    write(proj / "requirements.in", "six\n")
    # A dead HTTP proxy makes the registry unreachable for envbuild; the engine (unix socket) still answers.
    dead = {"http_proxy": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "no_proxy": "", "NO_PROXY": ""}
    r = cli("lock", cwd=proj, env=dead)
    assert r.returncode == 0, r.stderr
    assert "taken from the local engine" in r.stderr
    lock = json.loads((proj / "envbuild.lock").read_text())
    assert lock["base"]["source"] == "engine" and lock["base"]["digest"] == _registry_digest(test_tag)


@pytest.mark.docker
def test_python_the_base_lacks_is_refused_before_resolving(tmp_path: Path, cli, base_image: str) -> None:
    proj = tmp_path / "proj"
    write(proj / "pyproject.toml", f'[tool.envbuild]\nbase = "{base_image}"\npython = "3.12"\n')
    write(proj / "requirements.in", "six\n")
    cache = tmp_path / "cache"  # its own: the base is asked, not a cached answer
    r = cli("lock", cwd=proj, env={"ENVBUILD_CACHE_DIR": str(cache)})
    assert r.returncode == 2, r.stderr
    err = r.stderr.replace("\n", "")
    assert f"{proj / 'pyproject.toml'}: tool.envbuild.python: \"3.12\" but the base" in err
    assert "has Python 3.11" in err and 'set python = "3.11"' in err and "Traceback" not in err
    assert sorted(p.name for p in proj.iterdir()) == ["pyproject.toml", "requirements.in"]  # nothing resolved
    (answer,) = (cache / "base-python").iterdir()  # asked once, remembered by the base's digest
    assert json.loads(answer.read_text())["pythons"] == ["3.11"]
    write(proj / "pyproject.toml", f'[tool.envbuild]\nbase = "{base_image}"\npython = "3.11"\n')
    r = cli("lock", cwd=proj, env={"ENVBUILD_CACHE_DIR": str(cache)})
    assert r.returncode == 0 and (proj / "requirements.lock").is_file(), r.stderr

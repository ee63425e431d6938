"""Resolvers through the real tools: pip-tools, uv, py-rattler + conda_lock's writer and parser."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from envbuild.lockfile import read_conda_lock, read_pip_lock
from envbuild.resolvers import failure, leaks, scrub
from envbuild.resolvers.indexes import LOCAL, public_url
from tests.helpers.projects import make_channel, write

SMALL = '[project]\nname = "small"\ndependencies = ["six", "idna", "packaging"]\n[tool.envbuild]\n'


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- unit: output hygiene and messages ----------------------------------------------------


def test_scrub_replaces_paths_and_credentials() -> None:
    raw = ("#    pip-compile -o /tmp/envbuild-pip-x/requirements.lock\n"
           "six==1.17.0 \\\n    --hash=sha256:abc\n    # via -r /tmp/envbuild-pip-x/envbuild-dependencies.in\n"
           "    #   -c /etc/xdg/pip/constraints.txt\n# see https://user:secret@example.org/simple\n")
    text = scrub(raw, {"/tmp/envbuild-pip-x/envbuild-dependencies.in": "pyproject.toml", "/tmp/envbuild-pip-x/": ""})
    assert "/tmp" not in text and "/etc" not in text and "secret" not in text
    assert "# via -r pyproject.toml" in text and "-c constraints.txt" in text
    assert leaks(text) == []
    assert leaks("--find-links /opt/wheels\n") and leaks("x @ file:///home/u/x.whl\n")


def test_public_url_strips_credentials_and_local_paths() -> None:
    assert public_url("https://user:tok@pkgs.example.org:8443/simple/") == "https://pkgs.example.org:8443/simple"
    assert public_url("file:///opt/pypi/simple") == LOCAL
    assert public_url("/opt/wheels") == LOCAL


def test_failure_names_requirement_and_conflict() -> None:
    msg = str(failure("uv pip compile", "  × No solution found\n  ╰─▶ Because you require a==1 and a<1, we can "
                                        "conclude that your requirements are unsatisfiable.\n"))
    assert "a==1 and a<1" in msg
    assert "unreachable" in str(failure("pip-compile", "Failed to establish a new connection: refused"))


# --- pip-tools, the real tool ---------------------------------------------------------------


def test_piptools_lock_is_hashed_installable_and_clean(tmp_path: Path, cli) -> None:
    proj = tmp_path / "proj"
    write(proj / "pyproject.toml", SMALL)
    r = cli("lock", "--json", cwd=proj)
    assert r.returncode == 0, r.stderr
    lock_text = (proj / "requirements.lock").read_text()
    pins = read_pip_lock(proj)
    assert {p.name for p in pins} >= {"six", "idna", "packaging"}
    assert all(p.version and p.hashes for p in pins)
    assert all(line.strip().startswith(("#", "--hash")) or "==" in line
               for line in lock_text.splitlines() if line.strip() and not line.strip().endswith("\\") or "==" in line)
    # the sha256 of each artifact pip downloads is among the locked hashes
    dl = tmp_path / "dl"
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--require-hashes",
                    "-r", str(proj / "requirements.lock"), "-d", str(dl)], check=True)
    by_name = {p.name: p for p in pins}
    for f in dl.iterdir():
        name = f.name.split("-")[0].lower().replace("_", "-")
        assert f"sha256:{_sha256(f)}" in by_name[name].hashes, f.name
    # installs with --require-hashes into a fresh venv
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
                    "--require-hashes", "--no-deps", "-r", str(proj / "requirements.lock")], check=True)
    # nothing machine-specific
    assert "file://" not in lock_text and "/opt/" not in lock_text and str(tmp_path) not in lock_text
    assert "@" not in lock_text and "password" not in lock_text.lower() and "--index-url" not in lock_text
    assert leaks(lock_text) == []
    assert "envbuild lock" in lock_text  # the header names our command, not the temp paths


@pytest.fixture
def python312_base(base_image: str):
    """A one-file image whose config says PYTHON_VERSION=3.12.7, as the official python images do:
    the lock reads it from the registry (it is never run)."""
    import io
    import tarfile
    import uuid

    from envbuild.engine import docker

    ref = f"{base_image.split('/', 1)[0]}/envbuild-test/py312-{uuid.uuid4().hex[:10]}:v1"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.addfile(tarfile.TarInfo("stamp"), io.BytesIO(b""))
    docker("import", "--change", "ENV PYTHON_VERSION=3.12.7", "-", ref, input=buf.getvalue())
    docker("push", ref)
    yield ref
    docker("rmi", ref, check=False)


@pytest.mark.docker
def test_other_python_resolves_with_uv_and_says_so(tmp_path: Path, cli, python312_base: str) -> None:
    proj = tmp_path / "proj"
    write(proj / "pyproject.toml", SMALL.replace("[tool.envbuild]\n", f'[tool.envbuild]\npython = "3.12"\n'
                                                 f'resolver = "pip-tools"\nbase = "{python312_base}"\n'))
    r = cli("lock", cwd=proj, env={"ENVBUILD_CACHE_DIR": str(tmp_path / "cache")})
    assert r.returncode == 0, r.stderr
    assert "pip-tools can only resolve for the Python it runs on" in r.stderr
    assert "could not tell which Python" not in r.stderr  # the base's config said 3.12
    import json

    lock = json.loads((proj / "envbuild.lock").read_text())
    assert lock["resolver"]["name"] == "uv" and lock["python"] == "3.12"
    assert all(p.hashes for p in read_pip_lock(proj))
    assert leaks((proj / "requirements.lock").read_text()) == []


# --- conda: py-rattler + conda-lock's format ---------------------------------------------------


def test_rattler_lock_is_conda_lock_format_with_matching_hashes(tmp_path: Path, cli) -> None:
    files = make_channel(tmp_path / "channel")
    proj = tmp_path / "proj"
    write(proj / "envbuild.toml", 'conda = "environment.yml"\n')
    write(proj / "environment.yml", f"channels:\n  - {(tmp_path / 'channel').as_uri()}\ndependencies:\n"
                                    "  - libc-tools\n  - python=3.11\n  - pip:\n    - six==1.17.0\n")
    r = cli("lock", cwd=proj)
    assert r.returncode == 0, r.stderr
    from conda_lock.lockfile import parse_conda_lock_file

    parsed = parse_conda_lock_file(proj / "conda-lock.yml")  # conda-lock's own parser
    conda = {p.name: p for p in parsed.package if p.manager == "conda"}
    assert set(conda) == {"liba", "libb", "libc-tools", "python"}
    assert conda["liba"].version == "1.0"  # libb needs liba <2
    assert conda["libb"].dependencies == {"liba": "<2"}
    by_file = {f.name: f for f in files.values()}
    for p in conda.values():
        f = by_file[p.url.rsplit("/", 1)[-1]]
        assert p.hash.sha256 == _sha256(f)
        assert p.hash.md5 == hashlib.md5(f.read_bytes()).hexdigest()
        assert p.platform == "linux-64"
    pip = [p for p in parsed.package if p.manager == "pip"]
    assert [(p.name, p.version) for p in pip] == [("six", "1.17.0")]
    assert pip[0].url.endswith(".whl") and len(pip[0].hash.sha256 or "") == 64
    assert parsed.metadata.platforms == ["linux-64"] and parsed.metadata.sources == ["environment.yml"]
    # envbuild's own reader sees the same entries
    assert {p.name for p in read_conda_lock(proj, "linux/amd64")} == {"liba", "libb", "libc-tools", "python", "six"}


def test_rattler_unsatisfiable_names_the_conflict(tmp_path: Path, cli) -> None:
    make_channel(tmp_path / "channel")
    proj = tmp_path / "proj"
    write(proj / "envbuild.toml", 'conda = "environment.yml"\n')
    write(proj / "environment.yml", f"channels: [{(tmp_path / 'channel').as_uri()}]\n"
                                    "dependencies: [libb, liba >=2]\n")
    r = cli("lock", cwd=proj)
    assert r.returncode == 2
    assert "libb" in r.stderr and "liba" in r.stderr and "Traceback" not in r.stderr
    assert not (proj / "conda-lock.yml").exists() and not (proj / "envbuild.lock").exists()


# --- uv (the default) and pip-tools agree ---------------------------------------------------


def _pins(proj: Path) -> dict[str, str]:
    return {p.name: p.version for p in read_pip_lock(proj)}


@pytest.mark.parametrize("example", ["numpy-linreg", "torch-mnistlike"])
def test_uv_and_piptools_lock_the_same_pins(tmp_path: Path, cli, example: str) -> None:
    """Both resolvers are given the same sources (pip's configuration: indexes, find-links), so the
    default (uv) locks exactly what pip-compile would, local builds such as torch's +cpu included."""
    src = Path(__file__).parents[2] / "examples" / example / "pyproject.toml"
    pins = {}
    for resolver in ("uv", "pip-tools"):
        proj = tmp_path / resolver
        write(proj / "pyproject.toml", src.read_text().replace(
            "[tool.envbuild]\n", f'[tool.envbuild]\nresolver = "{resolver}"\n', 1))
        (proj / "data").mkdir()
        r = cli("lock", "--json", cwd=proj)
        assert r.returncode == 0, r.stderr
        pins[resolver] = _pins(proj)
    assert pins["uv"] == pins["pip-tools"]
    assert "numpy" in pins["uv"]

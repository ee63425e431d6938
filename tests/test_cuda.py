"""The torch build a lock picks (`cuda`), what it needs from the driver, and the sources lock and fetch share.

Stand-in torch wheels (+cpu, +cu128, and an unsuffixed CUDA 13 build as the public index has) live in
find-links directories made per test; pip's configuration points at an empty index, so nothing here
reaches the network.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from envbuild import cuda
from envbuild.errors import SpecError
from envbuild.spec import load_spec
from tests.helpers.wheels import torch_builds
from tests.lockhelp import write


@pytest.fixture
def offline_pip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """pip configured as a user's machine might be: an (empty) index, the public CUDA 13 build in
    find-links, and a constraint file capping torch that lock and fetch must both ignore."""
    builds = torch_builds(tmp_path / "wheels")
    (tmp_path / "empty").mkdir()
    write(tmp_path / "constraints.txt", "torch<=2.14.1\n")
    conf = write(tmp_path / "pip.conf", f"[global]\nindex-url = {(tmp_path / 'empty').as_uri()}\n"
                                        f"find-links = {builds['default']}\nconstraint = {tmp_path / 'constraints.txt'}\n")
    for name in ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_CONSTRAINT", "PIP_NO_INDEX"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    monkeypatch.setenv("ENVBUILD_CACHE_DIR", str(tmp_path / "cache"))
    return {"PIP_CONFIG_FILE": str(conf), **{k: str(v) for k, v in builds.items()}}


def _project(root: Path, cuda_line: str = "", sources: str = "") -> Path:
    write(root / "pyproject.toml", f'[project]\nname = "gpu"\ndependencies = ["torch"]\n[tool.envbuild]\n{cuda_line}\n'
                                   + (f"[tool.envbuild.torch-sources]\n{sources}\n" if sources else ""))
    return root


def _pins(root: Path) -> dict[str, str]:
    from envbuild.lockfile import read_pip_lock

    return {p.name: p.version for p in read_pip_lock(root)}


# --- the driver table and the facts -----------------------------------------------------------


@pytest.mark.parametrize("version, floor", [("13.0", "580"), ("13.2", "580"), ("12.8", "525.60.13"),
                                            ("12.0", "525.60.13"), ("11.8", "450.80.02"), ("11.1", "450.80.02"),
                                            ("10.2", None)])
def test_driver_floors_follow_minor_version_compatibility(version: str, floor: str | None) -> None:
    assert cuda.min_driver(version) == floor


def test_facts_from_the_local_version_or_the_nvidia_packages() -> None:
    cu128 = cuda.lock_facts("12.8", {"torch": "2.15.0+cu128", "nvidia-cudnn-cu12": "9.10.2.21",
                                     "nvidia-nccl-cu12": "2.27.3"})
    assert cu128 == {"setting": "12.8", "torch": "2.15.0+cu128", "build": "cu128", "cuda": "12.8",
                     "cudnn": "9.10.2.21", "nccl": "2.27.3", "min_driver": "525.60.13"}
    public = cuda.lock_facts("auto", {"torch": "2.15.0", "nvidia-cuda-runtime": "13.0.96", "nvidia-cudnn-cu13": "9.13.0.50"})
    assert (public["cuda"], public["min_driver"]) == ("13.0", "580")
    assert cuda.summary(public) == "torch 2.15.0 (CUDA 13.0, cuDNN 9.13): needs NVIDIA driver >= 580 on the GPU host"
    assert cuda.lock_facts("cpu", {"torch": "2.15.0+cpu"})["build"] == "cpu"
    assert cuda.lock_facts("auto", {"numpy": "2.0"}) == {}


def test_too_old_driver_is_named_with_the_fix() -> None:
    facts = cuda.lock_facts("auto", {"torch": "2.15.0", "nvidia-cuda-runtime": "13.0.96"})
    msg = cuda.driver_problem(facts, "550.54.15")
    assert "550.54.15" in msg and ">= 580" in msg and 'cuda = "12.8"' in msg
    assert cuda.driver_problem(facts, "580.65.06") is None and cuda.driver_problem(facts, None) is None


def test_spec_refuses_bad_cuda_values(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"tool\.envbuild\.cuda: invalid value '12'.*\"12\.8\""):
        load_spec(_project(tmp_path, 'cuda = "12"'))
    with pytest.raises(SpecError, match=r"torch-sources\.cu128: is not a torch build"):
        load_spec(_project(tmp_path, 'cuda = "12.8"', 'cu128 = "x"'))


# --- lock: the build asked for, or a refusal ----------------------------------------------------


def test_cuda_version_without_a_source_is_refused_naming_what_to_configure(tmp_path: Path, offline_pip, cli) -> None:
    proj = _project(tmp_path / "p", 'cuda = "12.8"')
    r = cli("lock", cwd=proj, env=offline_pip)
    assert r.returncode == 2
    assert "tool.envbuild.cuda: '12.8' has no source" in r.stderr and '[tool.envbuild.torch-sources] "12.8"' in r.stderr
    assert not (proj / "envbuild.lock").exists()


def test_cpu_locks_no_nvidia_package(tmp_path: Path, offline_pip, cli) -> None:
    proj = _project(tmp_path / "p", 'cuda = "cpu"', f'cpu = "{offline_pip["cpu"]}"')
    r = cli("lock", cwd=proj, env=offline_pip)
    assert r.returncode == 0, r.stderr
    pins = _pins(proj)
    assert pins["torch"] == "2.15.0+cpu" and not [n for n in pins if n.startswith("nvidia")]
    assert "torch 2.15.0+cpu (CPU build)" in r.stdout
    lock = json.loads((proj / "envbuild.lock").read_text())
    assert lock["cuda"]["build"] == "cpu" and "min_driver" not in lock["cuda"]
    assert "local" in lock["indexes"] and not any(str(tmp_path) in i for i in lock["indexes"])


def test_cuda_12_8_locks_the_cu128_build_and_names_the_driver_floor(tmp_path: Path, offline_pip, cli) -> None:
    proj = _project(tmp_path / "p", 'cuda = "12.8"', f'"12.8" = "{offline_pip["cu128"]}"')
    r = cli("lock", "--json", cwd=proj, env=offline_pip)
    assert r.returncode == 0, r.stderr
    assert _pins(proj)["torch"] == "2.15.0+cu128" and _pins(proj)["nvidia-cudnn-cu12"] == "9.10.2.21"
    lock = json.loads(r.stdout)["lock"]  # stdout is only JSON; the line goes to stderr
    assert lock["cuda"] == {"setting": "12.8", "torch": "2.15.0+cu128", "build": "cu128", "cuda": "12.8",
                            "cudnn": "9.10.2.21", "nccl": "2.27.3", "min_driver": "525.60.13"}
    assert "torch 2.15.0+cu128 (CUDA 12.8, cuDNN 9.10): needs NVIDIA driver >= 525.60.13 on the GPU host" in r.stderr
    # the setting is a lock input: changing it makes the lock stale
    text = (proj / "pyproject.toml").read_text().replace('cuda = "12.8"', 'cuda = "auto"')
    (proj / "pyproject.toml").write_text(text)
    r = cli("lock", "--check", cwd=proj, env=offline_pip)
    assert r.returncode == 1 and "cuda is no longer an input" in r.stderr


def test_auto_takes_the_default_build_and_says_what_driver_it_needs(tmp_path: Path, offline_pip, cli) -> None:
    proj = _project(tmp_path / "p")
    r = cli("lock", cwd=proj, env=offline_pip)
    assert r.returncode == 0, r.stderr
    # the host's constraint file (torch<=2.14.1) was not applied: the lock follows the spec only
    assert _pins(proj)["torch"] == "2.15.0" and "nvidia-cublas" in _pins(proj)
    assert "torch 2.15.0 (CUDA 13.0, cuDNN 9.13): needs NVIDIA driver >= 580 on the GPU host" in r.stdout


def test_a_build_from_another_index_is_refused(tmp_path: Path, offline_pip, cli) -> None:
    # the cu128 source carries 2.15.0 only; the requirement asks for what only the default build has
    from tests.helpers.wheels import make_wheel

    make_wheel(Path(offline_pip["default"]), "torch", "2.16.0")
    proj = _project(tmp_path / "p", 'cuda = "12.8"', f'"12.8" = "{offline_pip["cu128"]}"')
    (proj / "pyproject.toml").write_text((proj / "pyproject.toml").read_text().replace('["torch"]', '["torch>=2.16"]'))
    r = cli("lock", cwd=proj, env=offline_pip)
    assert r.returncode == 2
    assert "asks for cu128 builds, but the resolver picked torch==2.16.0" in r.stderr
    assert not (proj / "envbuild.lock").exists()


# --- fetch: the same sources, none of the host's constraints ------------------------------------


def test_wheelhouse_ignores_the_host_constraint_and_uses_the_lock_sources(tmp_path: Path, offline_pip) -> None:
    from envbuild.locker import lock_project
    from envbuild.wheelhouse import Target, ensure

    proj = _project(tmp_path / "p", 'cuda = "12.8"', f'"12.8" = "{offline_pip["cu128"]}"')
    lock_project(load_spec(proj))
    house = ensure(proj / "requirements.lock", Target("linux/amd64", "3.11"))
    assert sorted(w.filename for w in house.wheels)[-1] == "torch-2.15.0+cu128-py3-none-any.whl"


def test_a_wheel_that_cannot_be_fetched_names_itself(tmp_path: Path, offline_pip) -> None:
    from envbuild.errors import EnvbuildError
    from envbuild.wheelhouse import Target, ensure

    lock = write(tmp_path / "requirements.lock", "torch==2.15.0+cu999 --hash=sha256:" + "1" * 64 + "\n")
    with pytest.raises(EnvbuildError, match=r"torch==2\.15\.0\+cu999 has no wheel"):
        ensure(lock, Target("linux/amd64", "3.11"))

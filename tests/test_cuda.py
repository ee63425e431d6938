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
from tests.helpers.projects import write


def _offline_pip_env(tmp: Path) -> dict[str, str]:
    """pip configured as a user's machine might be: an (empty) index, the public CUDA 13 build in
    find-links, and a constraint file capping torch that lock and fetch must both ignore."""
    builds = torch_builds(tmp / "wheels")
    (tmp / "empty").mkdir()
    write(tmp / "constraints.txt", "torch<=2.14.1\n")
    conf = write(tmp / "pip.conf", f"[global]\nindex-url = {(tmp / 'empty').as_uri()}\n"
                                   f"find-links = {builds['default']}\nconstraint = {tmp / 'constraints.txt'}\n")
    # a PIP_* variable of this host would win over the file (a blank one too): repeat the file's values
    return {"PIP_CONFIG_FILE": str(conf), "PIP_FIND_LINKS": str(builds["default"]), "PIP_INDEX_URL": (tmp / "empty").as_uri(),
            "UV_INDEX_URL": (tmp / "empty").as_uri(),  # uv reads no pip configuration
            "ENVBUILD_CACHE_DIR": str(tmp / "cache"), **{k: str(v) for k, v in builds.items()}}


@pytest.fixture
def offline_pip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = _offline_pip_env(tmp_path)
    for name in ("PIP_CONFIG_FILE", "PIP_FIND_LINKS", "PIP_INDEX_URL", "UV_INDEX_URL", "ENVBUILD_CACHE_DIR"):
        monkeypatch.setenv(name, env[name])
    return env


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
    problem, fix = cuda.driver_problem(facts, "550.54.15")
    assert "550.54.15 is older than 580" in problem and 'cuda = "12.8"' in fix and ">= 580" in fix
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


@pytest.mark.parametrize("resolver", ["pip-tools", "uv"])
def test_cuda_12_8_locks_the_cu128_build_and_names_the_driver_floor(tmp_path: Path, offline_pip, cli,
                                                                     resolver: str) -> None:
    proj = _project(tmp_path / "p", f'cuda = "12.8"\nresolver = "{resolver}"', f'"12.8" = "{offline_pip["cu128"]}"')
    r = cli("lock", "--json", cwd=proj, env=offline_pip)
    assert r.returncode == 0, r.stderr
    assert _pins(proj)["torch"] == "2.15.0+cu128" and _pins(proj)["nvidia-cudnn-cu12"] == "9.10.2.21"
    lock = json.loads(r.stdout)["lock"]  # stdout is only JSON; the line goes to stderr
    assert lock["cuda"] == {"setting": "12.8", "torch": "2.15.0+cu128", "build": "cu128", "cuda": "12.8",
                            "cudnn": "9.10.2.21", "nccl": "2.27.3", "min_driver": "525.60.13"}
    assert "torch 2.15.0+cu128 (CUDA 12.8, cuDNN 9.10): needs NVIDIA driver >= 525.60.13 on the GPU host" in r.stderr
    # the setting is a lock input: changing it makes the lock stale
    text = (proj / "pyproject.toml").read_text().replace('cuda = "12.8"\n', '')
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


# --- the host driver, checked before anything runs ---------------------------------------------


@pytest.fixture(scope="module")
def gpu_project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A project locked (once) with the public-index stand-in: torch 2.15.0 for CUDA 13, driver >= 580."""
    from tests.conftest import run_cli

    tmp = tmp_path_factory.mktemp("gpu")
    env = _offline_pip_env(tmp)
    proj = _project(tmp / "proj")
    write(proj / "train.py", "import torch\nprint('torch', torch.__version__)\n")
    r = run_cli("lock", cwd=proj, env=env)
    assert r.returncode == 0, r.stderr
    return proj, env


def test_driver_is_read_from_the_override_the_module_files_then_nvidia_smi(tmp_path: Path, monkeypatch) -> None:
    from envbuild import nvidia
    from tests.helpers.nvidia import H200, fake_nvidia

    monkeypatch.setattr(nvidia, "SYS_VERSION", tmp_path / "sys-version")
    monkeypatch.setattr(nvidia, "PROC_VERSION", tmp_path / "proc-version")
    monkeypatch.delenv(nvidia.DRIVER_ENV, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "none"))
    assert nvidia.driver_version()[0] is None
    monkeypatch.setenv("PATH", str(fake_nvidia(tmp_path / "bin", H200, driver="570.86.15")))
    assert nvidia.driver_version() == ("570.86.15", "nvidia-smi")
    write(tmp_path / "proc-version", "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  575.57.08  Release Build\n"
                                     "GCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n")
    assert nvidia.driver_version() == ("575.57.08", str(tmp_path / "proc-version"))
    write(tmp_path / "sys-version", "580.65.06\n")
    assert nvidia.driver_version()[0] == "580.65.06"
    monkeypatch.setenv(nvidia.DRIVER_ENV, "535.230.02")
    assert nvidia.driver_version() == ("535.230.02", nvidia.DRIVER_ENV)


def test_doctor_fails_the_driver_check_with_the_fix(gpu_project, cli) -> None:
    proj, env = gpu_project
    r = cli("doctor", "--json", cwd=proj, env={**env, "ENVBUILD_CUDA_DRIVER_VERSION": "550.54.15"})
    assert r.returncode == 1
    (check,) = [c for c in json.loads(r.stdout)["checks"] if c["name"] == "nvidia driver"]
    assert check["status"] == "missing" and "550.54.15" in check["detail"] and "older than 580" in check["detail"]
    assert 'cuda = "12.8"' in check["fix"] and ">= 580" in check["fix"]
    r = cli("doctor", "--json", cwd=proj, env={**env, "ENVBUILD_CUDA_DRIVER_VERSION": "580.65.06"})
    (check,) = [c for c in json.loads(r.stdout)["checks"] if c["name"] == "nvidia driver"]
    assert check["status"] == "ok" and ">= 580" in check["detail"]


def test_verify_reports_a_driver_too_old(gpu_project, cli) -> None:
    proj, env = gpu_project
    r = cli("verify", "--json", cwd=proj, env={**env, "ENVBUILD_CUDA_DRIVER_VERSION": "470.256.02"})
    assert r.returncode == 1
    (check,) = [c for c in json.loads(r.stdout)["checks"] if c["name"] == "nvidia driver"]
    assert not check["ok"] and "older than 580" in check["detail"] and 'cuda = "11.8"' in check["detail"]


@pytest.mark.docker
def test_run_with_gpus_refuses_an_old_driver_before_anything_runs(gpu_project, docker_engine, cli, tmp_path) -> None:
    import os

    from tests.helpers.nvidia import H200, fake_nvidia

    proj, env = gpu_project
    bin_dir = fake_nvidia(tmp_path / "bin", H200, driver="550.54.15")
    r = cli("run", "--gpus", "all", "train.py", cwd=proj, env={**env, "PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert r.returncode == 2, r.stderr
    assert "NVIDIA driver 550.54.15 is older than 580" in r.stderr and "upgrade the driver to >= 580" in r.stderr
    assert "torch" not in r.stdout  # the script never ran, nothing was built
    (record,) = [json.loads(p.read_text()) for p in (proj / ".envbuild" / "runs").glob("*/record.json")]
    assert record["status"] == "failed" and "older than 580" in record["reason"]


@pytest.mark.docker
def test_build_under_a_constraining_pip_config_and_the_record_gpu_story(gpu_project, base_image, images, cli,
                                                                          tmp_path) -> None:
    """The host's pip config caps torch below the lock (torch<=2.14.1): the build still fetches the locked
    2.15.0. Runs on a stand-in GPU host record its GPUs; a driver change is named by diff."""
    import os
    import shutil

    from tests.helpers.nvidia import H200, fake_nvidia

    src, env = gpu_project
    proj = Path(shutil.copytree(src, tmp_path / "proj", ignore=shutil.ignore_patterns(".envbuild")))
    r = cli("build", "--json", cwd=proj, env=env)
    assert r.returncode == 0, r.stderr
    images.append(json.loads(r.stdout)["ref"])
    runs = []
    for driver in ("580.65.06", "580.95.05"):
        bin_dir = fake_nvidia(tmp_path / "bin", H200, driver=driver)
        r = cli("run", "--json", "train.py", cwd=proj, env={**env, "PATH": f"{bin_dir}:{os.environ['PATH']}"})
        assert r.returncode == 0, r.stderr
        assert "torch 2.15.0" in r.stderr  # the script's stdout goes to stderr with --json
        runs.append(json.loads(r.stdout))
    (gpu,) = runs[0]["host"]["gpus"]
    assert gpu == {"index": "0", "name": "NVIDIA H200", "driver": "580.65.06", "memory": "143771 MiB",
                   "uuid": "GPU-07a466ee-866c-ad45-6157-a8affb1feafe", "compute_capability": "9.0", "cuda": "13.0"}
    assert runs[0]["cuda"]["lock"]["min_driver"] == "580"
    assert runs[0]["cuda"]["torch"]["torch"] == "2.15.0"  # as torch saw it, inside the container
    assert runs[0]["determinism"]["env"]["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    r = cli("diff", runs[0]["id"], runs[1]["id"], "--json", cwd=proj, env=env)
    d = json.loads(r.stdout)
    assert d["differs"] == ["environment"]
    (change,) = d["sections"]["environment"]["changes"]
    assert (change["what"], change["a"], change["b"]) == ("nvidia driver", "580.65.06", "580.95.05")

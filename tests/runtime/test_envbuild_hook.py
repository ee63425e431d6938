"""The in-image seeding hook, run in a fresh interpreter against fake numpy/torch packages.

The real torch is exercised by the slow docker test and scripts/gpu_determinism.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SITE = Path(__file__).resolve().parents[2] / "envbuild" / "runtime" / "site"

FAKE_NUMPY = """
import types
calls = []
random = types.SimpleNamespace(seed=lambda s: calls.append(("np.seed", s)))
"""

FAKE_TORCH = """
import sys, types
calls = []
def manual_seed(s): calls.append(("manual_seed", s))
def use_deterministic_algorithms(v): calls.append(("deterministic", v))
cuda = types.SimpleNamespace(manual_seed_all=lambda s: calls.append(("cuda_seed", s)))
class _Prec:
    def __setattr__(self, k, v):
        calls.append((k, v)); object.__setattr__(self, k, v)
matmul = _Prec()
if NEW_API:
    object.__setattr__(matmul, "fp32_precision", "none")
class _Cudnn(_Prec):
    pass
cudnn = _Cudnn()
if NEW_API:
    object.__setattr__(cudnn, "conv", _Prec()); object.__setattr__(cudnn.conv, "fp32_precision", "tf32")
backends = types.SimpleNamespace(cuda=types.SimpleNamespace(matmul=matmul), cudnn=cudnn)
class Generator:
    def manual_seed(self, s):
        self.seed = s; return self
def initial_seed(): return 77
import torch.utils.data
"""

FAKE_DATA = """
class DataLoader:
    def __init__(self, dataset, batch_size=1, shuffle=None, worker_init_fn=None, generator=None):
        self.args = (dataset, batch_size, shuffle, worker_init_fn, generator)
"""


def _fakes(tmp: Path, new_api: bool) -> Path:
    lib = tmp / "lib"
    (lib / "numpy").mkdir(parents=True)
    (lib / "numpy" / "__init__.py").write_text(FAKE_NUMPY)
    (lib / "torch" / "utils" / "data").mkdir(parents=True)
    (lib / "torch" / "__init__.py").write_text(f"NEW_API = {new_api}\n" + FAKE_TORCH)
    (lib / "torch" / "utils" / "__init__.py").write_text("")
    (lib / "torch" / "utils" / "data" / "__init__.py").write_text(FAKE_DATA)
    return lib


def _run(tmp: Path, code: str, new_api: bool = True, seed: str | None = "42", deterministic: str = "1") -> str:
    lib = _fakes(tmp, new_api)
    run_dir = tmp / "run"
    run_dir.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENVBUILD_")}
    env.update(PYTHONPATH=f"{SITE}{os.pathsep}{lib}", ENVBUILD_RUN_DIR=str(run_dir), ENVBUILD_DETERMINISTIC=deterministic)
    if seed is not None:
        env["ENVBUILD_SEED"] = seed
    prog = "import envbuild_hook\n" + textwrap.dedent(code)
    proc = subprocess.run([sys.executable, "-c", prog], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _settings(tmp: Path) -> list[str]:
    path = tmp / "run" / "determinism.jsonl"
    return [s for line in path.read_text().splitlines() for s in json.loads(line)["settings"]] if path.exists() else []


def test_noop_without_seed(tmp_path: Path) -> None:
    out = _run(tmp_path, "import sys, random; print(len(sys.meta_path), random.random() != random.random())", seed=None)
    assert not (tmp_path / "run" / "determinism.jsonl").exists()
    assert "True" in out


def test_seeds_random_at_start_and_never_imports_numpy_or_torch(tmp_path: Path) -> None:
    out = _run(tmp_path, """
        import random, sys
        print(random.random(), 'numpy' in sys.modules, 'torch' in sys.modules)
    """)
    import random

    random.seed(42)
    assert out.split() == [str(random.random()), "False", "False"]
    assert _settings(tmp_path) == ["random.seed(42)"]


def test_numpy_seeded_on_import(tmp_path: Path) -> None:
    out = _run(tmp_path, "import numpy; print(numpy.calls)")
    assert "('np.seed', 42)" in out
    assert "numpy.random.seed(42)" in _settings(tmp_path)


@pytest.mark.parametrize("new_api", [True, False])
def test_torch_settings_one_tf32_api_only(tmp_path: Path, new_api: bool) -> None:
    out = _run(tmp_path, """
        import torch
        print(repr(torch.calls))
    """, new_api=new_api)
    calls = eval(out)
    assert ("manual_seed", 42) in calls and ("cuda_seed", 42) in calls and ("deterministic", True) in calls
    assert ("benchmark", False) in calls and ("deterministic", True) in calls
    names = {c[0] for c in calls}
    if new_api:
        assert ("fp32_precision", "ieee") in calls and "allow_tf32" not in names
    else:
        assert ("allow_tf32", False) in calls and "fp32_precision" not in names
    settings = _settings(tmp_path)
    assert "torch.use_deterministic_algorithms(True)" in settings
    assert any("DataLoader" in s for s in settings)


def test_not_deterministic_still_seeds(tmp_path: Path) -> None:
    out = _run(tmp_path, "import torch; print(repr(torch.calls))", deterministic="0")
    calls = eval(out)
    assert ("manual_seed", 42) in calls and ("deterministic", True) not in calls


def test_dataloader_defaults_and_user_choices_kept(tmp_path: Path) -> None:
    out = _run(tmp_path, """
        import envbuild_hook
        from torch.utils.data import DataLoader
        a = DataLoader([1, 2], 2, True)
        _, _, _, init, gen = a.args
        print(init is envbuild_hook.seed_worker, gen.seed)
        mine = lambda wid: None
        class G: pass
        b = DataLoader([1], worker_init_fn=mine, generator=G())
        _, _, _, init, gen = b.args
        print(type(init).__name__, init.user_fn is mine, type(gen).__name__)
    """)
    assert out.split() == ["True", "42", "_ChainedInit", "True", "G"]


def _gpu_run(tmp: Path, arch_flags: str, capabilities: str) -> subprocess.CompletedProcess:
    """`import torch` then user code, in a fresh interpreter, on a stand-in GPU run."""
    lib = _fakes(tmp, new_api=True)
    init = lib / "torch" / "__init__.py"
    init.write_text(init.read_text() + f"__version__ = '2.15.0+cu130'\n_C = types.SimpleNamespace("
                                       f"_cuda_getArchFlags=lambda: {arch_flags!r})\n"
                                       "version = types.SimpleNamespace(cuda='13.0')\n")
    (tmp / "run").mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENVBUILD_")}
    env.update(PYTHONPATH=f"{SITE}{os.pathsep}{lib}", ENVBUILD_RUN_DIR=str(tmp / "run"), ENVBUILD_SEED="1",
               ENVBUILD_GPU_CAPABILITIES=capabilities)
    prog = "import envbuild_hook\nimport torch\nprint('user code ran')\n"
    return subprocess.run([sys.executable, "-c", prog], env=env, capture_output=True, text=True, timeout=60)


def test_a_gpu_the_torch_build_has_no_code_for_stops_before_user_code(tmp_path: Path) -> None:
    proc = _gpu_run(tmp_path, "sm_75 sm_80 sm_90 sm_100 sm_120", "9.0,6.0")
    assert proc.returncode == 1 and "user code ran" not in proc.stdout
    assert "envbuild: torch 2.15.0+cu130: this torch build has GPU code for sm_75 sm_80 sm_90 sm_100 sm_120 only; " \
           "GPU 1 has compute capability 6.0 (sm_60)" in proc.stderr
    assert "Lock a torch build that supports it" in proc.stderr
    seen = json.loads((tmp_path / "run" / "cuda.json").read_text())
    assert seen["torch"] == "2.15.0+cu130" and seen["cuda"] == "13.0" and "sm_90" in seen["arch_list"]


@pytest.mark.parametrize("flags, caps", [("sm_80 sm_90", "8.6,9.0"),  # same major, newer minor: the sm_80 cubin runs
                                         ("sm_80 compute_80", "12.0"),  # PTX is compiled by the driver for newer GPUs
                                         ("", "6.0")])  # a CPU build: nothing to check
def test_gpus_the_build_runs_on_pass(tmp_path: Path, flags: str, caps: str) -> None:
    proc = _gpu_run(tmp_path, flags, caps)
    assert proc.returncode == 0 and "user code ran" in proc.stdout, proc.stderr

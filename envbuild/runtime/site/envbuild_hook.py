"""Seeding and determinism settings, applied at interpreter start inside envbuild images.

Loaded by `zz-envbuild.pth` (`import envbuild_hook`) before any user code. Stdlib only, and a no-op
unless ENVBUILD_SEED is set. `random` is seeded at once; numpy and torch are never imported here:
an import hook applies their settings right after the user's code imports them (DESIGN section 7).
Every setting applied is appended as one JSON line to $ENVBUILD_RUN_DIR/determinism.jsonl, so the
run record can list what was really done.

The `apply_*` functions are public so scripts/gpu_determinism.py tests exactly this code.

On a GPU run (`envbuild run` sets ENVBUILD_GPU_CAPABILITIES, one compute capability per GPU, from
the host's nvidia-smi), importing torch also checks that the build has code for every GPU: a build
without it would fail at the first kernel ("no kernel image is available"), so the program stops
there with the fix instead. What torch sees (its CUDA runtime, cuDNN, architectures) goes into
$ENVBUILD_RUN_DIR/cuda.json for the run record. None of this initializes CUDA: a forked worker
can still use the GPU.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import inspect
import json
import os
import random
import sys
from types import ModuleType
from typing import Any, Callable, List, Optional

SETTINGS_FILE = "determinism.jsonl"
CUDA_FILE = "cuda.json"
CAPABILITIES_ENV = "ENVBUILD_GPU_CAPABILITIES"


def _record(settings: List[str]) -> None:
    run_dir = os.environ.get("ENVBUILD_RUN_DIR")
    if not run_dir or not settings:
        return
    try:  # one small O_APPEND write per module: safe with DataLoader workers appending too
        with open(os.path.join(run_dir, SETTINGS_FILE), "a") as f:
            f.write(json.dumps({"pid": os.getpid(), "settings": settings}) + "\n")
    except OSError:
        pass  # a read-only run dir must never break the user's program


def seed_random(seed: int) -> List[str]:
    random.seed(seed)
    return [f"random.seed({seed})"]


def apply_numpy(np: ModuleType, seed: int) -> List[str]:
    np.random.seed(seed)
    return [f"numpy.random.seed({seed})"]


def _tf32_off(torch: ModuleType) -> List[str]:
    """TF32 off with the API this torch has: fp32_precision (>= 2.9) or allow_tf32, never both."""
    backends = torch.backends
    if hasattr(backends.cuda.matmul, "fp32_precision"):
        done = []
        for name, obj in (("torch.backends.cuda.matmul", backends.cuda.matmul),
                          ("torch.backends.cudnn.conv", getattr(backends.cudnn, "conv", None)),
                          ("torch.backends.cudnn.rnn", getattr(backends.cudnn, "rnn", None))):
            if obj is not None and hasattr(obj, "fp32_precision"):
                obj.fp32_precision = "ieee"
                done.append(f"{name}.fp32_precision='ieee'")
        return done
    backends.cuda.matmul.allow_tf32 = False
    backends.cudnn.allow_tf32 = False
    return ["torch.backends.cuda.matmul.allow_tf32=False", "torch.backends.cudnn.allow_tf32=False"]


def apply_torch(torch: ModuleType, seed: int, deterministic: bool = True) -> List[str]:
    """Seed torch (CPU and every CUDA device, lazily) and, when deterministic, pin the kernels."""
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)  # lazy: queued until CUDA initializes, a no-op without CUDA
    done = [f"torch.manual_seed({seed})", f"torch.cuda.manual_seed_all({seed})"]
    if deterministic:
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        done += ["torch.use_deterministic_algorithms(True)", "torch.backends.cudnn.benchmark=False",
                 "torch.backends.cudnn.deterministic=True", *_tf32_off(torch)]
    return done


def seed_worker(worker_id: int) -> None:
    """DataLoader worker_init_fn: numpy and random from torch's per-worker seed."""
    import torch

    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np = sys.modules.get("numpy")
    if np is not None:
        np.random.seed(seed)


class _ChainedInit:
    """envbuild's worker seeding, then the user's own worker_init_fn (picklable for spawn)."""

    def __init__(self, user_fn: Callable[[int], Any]) -> None:
        self.user_fn = user_fn

    def __call__(self, worker_id: int) -> None:
        seed_worker(worker_id)
        self.user_fn(worker_id)


def patch_dataloader(torch: ModuleType, seed: int) -> List[str]:
    """Default DataLoader's worker_init_fn and generator; what the user passes is kept."""
    loader_cls = sys.modules["torch.utils.data"].DataLoader
    original = loader_cls.__init__
    if getattr(original, "_envbuild", False):
        return []
    signature = inspect.signature(original)

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        try:
            bound = signature.bind(self, *args, **kwargs)
        except TypeError:  # let the real __init__ raise its own error
            return original(self, *args, **kwargs)
        arguments = bound.arguments
        user_fn = arguments.get("worker_init_fn")
        arguments["worker_init_fn"] = seed_worker if user_fn is None else _ChainedInit(user_fn)
        if arguments.get("generator") is None:
            arguments["generator"] = torch.Generator().manual_seed(seed)
        original(*bound.args, **bound.kwargs)

    __init__.__wrapped__ = original  # type: ignore[attr-defined]
    __init__._envbuild = True  # type: ignore[attr-defined]
    __init__.__doc__ = original.__doc__
    loader_cls.__init__ = __init__
    return ["torch.utils.data.DataLoader: worker_init_fn seeds numpy/random from torch.initial_seed() % 2**32",
            f"torch.utils.data.DataLoader: generator=torch.Generator().manual_seed({seed})"]


# --- the GPU check -----------------------------------------------------------------------


def _arch(name: str) -> Optional[tuple]:
    """"sm_90" / "sm_100a" / "compute_120" -> (9, 0) / (10, 0) / (12, 0)."""
    digits = "".join(c for c in name.split("_", 1)[-1] if c.isdigit())
    return (int(digits[:-1]), int(digits[-1])) if len(digits) >= 2 else None


def gpu_arch_problem(arch_list: List[str], capabilities: List[str]) -> Optional[str]:
    """Why a build with `arch_list` (torch.cuda.get_arch_list()) cannot run on GPUs of these compute
    capabilities ("8.6"), or None. A cubin runs on its own major at an equal or higher minor; PTX
    (compute_XY) is compiled by the driver for any GPU at least that new."""
    sms = [a for a in (_arch(x) for x in arch_list if x.startswith("sm_")) if a]
    ptx = [a for a in (_arch(x) for x in arch_list if x.startswith("compute_")) if a]
    if not sms and not ptx:
        return None  # a CPU build: nothing runs on the GPU anyway
    for index, cap in enumerate(capabilities):
        try:
            major, minor = (int(p) for p in cap.split("."))
        except ValueError:
            continue
        if any(m == major and n <= minor for m, n in sms) or any((m, n) <= (major, minor) for m, n in ptx):
            continue
        return (f"this torch build has GPU code for {' '.join(arch_list)} only; GPU {index} has compute capability "
                f"{cap} (sm_{major}{minor}) and would fail at its first kernel. Lock a torch build that supports it "
                f"(the cuda setting in the project's spec and its torch source), or run on another GPU")
    return None


def check_torch_gpu(torch: ModuleType) -> List[str]:
    """On a GPU run: stop before the user's code when the build cannot run on these GPUs; record
    what torch sees. Reads compile-time facts only (no CUDA initialization)."""
    caps = [c for c in os.environ.get(CAPABILITIES_ENV, "").split(",") if c]
    flags = getattr(getattr(torch, "_C", None), "_cuda_getArchFlags", None)
    arch_list = (flags() or "").split() if callable(flags) else []
    seen = {"torch": getattr(torch, "__version__", None),
            "cuda": getattr(getattr(torch, "version", None), "cuda", None), "arch_list": arch_list}
    if caps:
        try:
            seen["cudnn"] = torch.backends.cudnn.version()
        except Exception:
            seen["cudnn"] = None
    run_dir = os.environ.get("ENVBUILD_RUN_DIR")
    if run_dir:
        try:
            with open(os.path.join(run_dir, CUDA_FILE), "w") as f:
                json.dump(seen, f)
        except OSError:
            pass
    problem = gpu_arch_problem(arch_list, caps)
    if problem:
        raise SystemExit(f"envbuild: torch {seen['torch']}: {problem}")
    return []


# --- the import hook -------------------------------------------------------------------


class _PostImportLoader(importlib.abc.Loader):
    """Wraps a module's real loader; runs a callback once the module has executed."""

    def __init__(self, loader: Any, callback: Callable[[ModuleType], None]) -> None:
        self._loader = loader
        self._callback = callback

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Optional[ModuleType]:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        self._callback(module)

    def __getattr__(self, name: str) -> Any:  # get_resource_reader, is_package, get_data, ...
        return getattr(self._loader, name)


class PostImportFinder(importlib.abc.MetaPathFinder):
    """A sys.meta_path finder that only wraps the loaders of the named top-level modules."""

    def __init__(self, callbacks: dict) -> None:
        self.callbacks = callbacks  # module name -> callback(module)
        self._busy: set = set()

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in self.callbacks or fullname in self._busy:
            return None
        self._busy.add(fullname)
        try:  # ask the other finders; this one stays out of the way
            for finder in sys.meta_path:
                if finder is self or not hasattr(finder, "find_spec"):
                    continue
                spec = finder.find_spec(fullname, path, target)
                if spec is not None:
                    break
            else:
                return None
        finally:
            self._busy.discard(fullname)
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        callback = self.callbacks.pop(fullname)  # once per process
        spec.loader = _PostImportLoader(spec.loader, callback)
        return spec


def _guard(name: str, fn: Callable[[ModuleType], List[str]]) -> Callable[[ModuleType], None]:
    def callback(module: ModuleType) -> None:
        try:
            _record(fn(module))
        except Exception as e:  # never break the import; say so on stderr and in the record
            print(f"envbuild: could not apply {name} settings: {e}", file=sys.stderr)
            _record([f"{name}: FAILED: {e}"])

    return callback


def install(seed: int, deterministic: bool) -> None:
    """Seed now what is cheap; hook numpy and torch to be set up when (if) they are imported."""
    _record(seed_random(seed))

    callbacks = {
        "numpy": _guard("numpy", lambda np: apply_numpy(np, seed)),
        "torch": _guard("torch", lambda torch: check_torch_gpu(torch) + apply_torch(torch, seed, deterministic)),
        # torch imports torch.utils.data while it loads; hooked on its own so the order never matters
        "torch.utils.data": _guard("DataLoader", lambda data: patch_dataloader(sys.modules["torch"], seed)),
    }
    for name in list(callbacks):
        if name in sys.modules:  # imported before us (another .pth): apply now
            callbacks.pop(name)(sys.modules[name])
    sys.meta_path.insert(0, PostImportFinder(callbacks))


def _main() -> None:
    raw = os.environ.get("ENVBUILD_SEED")
    if not raw:
        return
    try:
        seed = int(raw)
    except ValueError:
        print(f"envbuild: ignoring ENVBUILD_SEED={raw!r}: not an integer", file=sys.stderr)
        return
    if getattr(sys, "_envbuild_hook_installed", False):
        return
    sys._envbuild_hook_installed = True  # type: ignore[attr-defined]
    install(seed, os.environ.get("ENVBUILD_DETERMINISTIC", "1") != "0")


_main()

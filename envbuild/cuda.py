"""CUDA and torch: which torch build a lock picks, and the NVIDIA driver that build needs.

The driver floors are NVIDIA's, from the CUDA Compatibility guide (docs.nvidia.com/deploy/cuda-compatibility,
"Minor Version Compatibility": a build for CUDA X.Y runs on any driver of at least the floor of
major X) and the CUDA Toolkit release notes (table "CUDA Toolkit and Corresponding Driver
Versions": the driver each toolkit release shipped with, so the newest CUDA a driver runs natively).
uv tabulates the same floors for `--torch-backend` (crates/uv-torch/src/backend.rs).
"""

from __future__ import annotations

import re
from typing import Any, Mapping

# CUDA major (and the minors it covers) -> minimum Linux driver, by minor-version compatibility.
DRIVER_FLOORS: tuple[tuple[int, int, int, str], ...] = (
    (13, 0, 99, "580"),
    (12, 0, 99, "525.60.13"),
    (11, 1, 8, "450.80.02"),
    (11, 0, 0, "450.36.06"),  # 11.0 predates minor-version compatibility: its own toolkit driver
)
# CUDA toolkit release -> the driver it shipped with (Linux x86_64, GA releases).
TOOLKIT_DRIVERS: tuple[tuple[str, str], ...] = (
    ("13.0", "580.65.06"), ("12.9", "575.51.03"), ("12.8", "570.26"), ("12.6", "560.28.03"),
    ("12.5", "555.42.02"), ("12.4", "550.54.14"), ("12.3", "545.23.06"), ("12.2", "535.54.03"),
    ("12.1", "530.30.02"), ("12.0", "525.60.13"), ("11.8", "520.61.05"), ("11.7", "515.43.04"),
    ("11.6", "510.39.01"), ("11.5", "495.29.05"), ("11.4", "470.42.01"), ("11.3", "465.19.01"),
    ("11.2", "460.27.03"), ("11.1", "455.23"), ("11.0", "450.36.06"),
)
# What to suggest per CUDA major when a driver is too old: a version PyTorch publishes builds for.
SUGGESTED = {13: "13.0", 12: "12.8", 11: "11.8"}
TORCH_FAMILY = ("torch", "torchvision", "torchaudio")  # the packages the PyTorch variant indexes build per CUDA
_NVIDIA_LIB = re.compile(r"^nvidia-(cuda-runtime|cudnn|nccl)(-cu\d+)?$")


def version_key(version: str) -> tuple[int, ...]:
    """"570.26" -> (570, 26): driver and CUDA versions compare number by number."""
    return tuple(int(p) for p in re.findall(r"\d+", version))


def min_driver(cuda: str) -> str | None:
    """The oldest driver that runs a build for CUDA `cuda` ("12.8"), or None when unknown."""
    key = version_key(cuda)
    major, minor = (key + (0, 0))[:2]
    return next((floor for m, lo, hi, floor in DRIVER_FLOORS if m == major and lo <= minor <= hi), None)


def driver_cuda(driver: str) -> str | None:
    """The newest CUDA release the driver shipped with or after ("575.57.08" -> "12.9")."""
    key = version_key(driver)
    return next((cuda for cuda, floor in TOOLKIT_DRIVERS if key >= version_key(floor)), None)


def variant_tag(cuda: str) -> str:
    """The local-version tag of PyTorch's builds: "cpu" -> "cpu", "12.8" -> "cu128"."""
    return "cpu" if cuda == "cpu" else "cu" + cuda.replace(".", "")


# --- the spec side: where the chosen build comes from -------------------------------------


def torch_source(spec: Any) -> tuple[list[str], list[str]]:
    """(index URLs, find-links directories) that carry the spec's torch build; nothing for "auto".

    "cpu" or a CUDA version with no source configured is refused: the public index's default build
    would be locked instead, which is exactly what `cuda` says not to do.
    """
    from envbuild.errors import SpecError
    from envbuild.spec import key_of

    cuda = getattr(spec, "cuda", "auto")
    if cuda == "auto":
        return [], []
    where = getattr(spec, "torch_sources", {}).get(cuda)
    table = key_of(spec, "torch-sources")
    if not where:
        raise SpecError(spec.source, key_of(spec, "cuda"), f"{cuda!r} has no source for its torch builds",
                        f'add [{table}] "{cuda}" = "<the PyTorch {variant_tag(cuda)} wheel index URL, or a '
                        f'directory of {variant_tag(cuda)} wheels>", or set cuda = "auto"')
    if re.match(r"^[a-z][a-z0-9+.-]*://", where):
        return [where], []
    path = (spec.root / where).resolve()
    if not path.is_dir():
        raise SpecError(spec.source, f'{table}."{cuda}"', f"{where!r} is neither a URL nor a directory",
                        "give an index URL (https://...) or an existing directory of wheels")
    return [], [str(path)]


def check_build(spec: Any, pins: Mapping[str, str]) -> None:
    """Refuse a resolution that did not take the torch build the spec's `cuda` asks for."""
    from envbuild.errors import SpecError
    from envbuild.spec import key_of

    cuda = getattr(spec, "cuda", "auto")
    if cuda == "auto":
        return
    tag = variant_tag(cuda)
    for name in TORCH_FAMILY:
        version = pins.get(name)
        if version is not None and local_tag(version) != tag:
            raise SpecError(spec.source, key_of(spec, "cuda"),
                            f"asks for {tag} builds, but the resolver picked {name}=={version} from another index "
                            f"(the {tag} source has no build of it that the requirements allow)",
                            f"pin {name} to a version the {tag} source carries, e.g. {name}==<version>")
    if cuda == "cpu":
        cuda_libs = sorted(n for n in pins if n.startswith("nvidia-"))
        if cuda_libs:
            raise SpecError(spec.source, key_of(spec, "cuda"),
                            f'is "cpu" but the lock would install {", ".join(cuda_libs)}',
                            "find the requirement that pulls them in (requirements.lock says `# via`) and drop it")


def local_tag(version: str) -> str | None:
    return version.split("+", 1)[1] if "+" in version else None


# --- the lock side: what the pinned build needs ---------------------------------------------


def lock_facts(cuda_setting: str, pins: Mapping[str, str]) -> dict[str, str]:
    """What envbuild.lock records about the torch build: {} when torch is not locked.

    The CUDA version comes from torch's local version (+cu128) or the pinned nvidia-cuda-runtime;
    cuDNN and NCCL from the pinned nvidia-cudnn / nvidia-nccl packages.
    """
    torch = pins.get("torch")
    if torch is None:
        return {}
    libs = {m.group(1): v for n, v in pins.items() if (m := _NVIDIA_LIB.match(n))}
    tag = local_tag(torch) or ""
    facts = {"setting": cuda_setting, "torch": torch}
    if tag == "cpu" or (not tag.startswith("cu") and "cuda-runtime" not in libs):
        facts["build"] = "cpu"
        return facts
    runtime = f"{tag[2:-1]}.{tag[-1]}" if re.fullmatch(r"cu\d{3,}", tag) else ".".join(libs["cuda-runtime"].split(".")[:2])
    facts.update(build=f"cu{runtime.replace('.', '')}", cuda=runtime)
    if "cudnn" in libs:
        facts["cudnn"] = libs["cudnn"]
    if "nccl" in libs:
        facts["nccl"] = libs["nccl"]
    floor = min_driver(runtime)
    if floor:
        facts["min_driver"] = floor
    return facts


def summary(facts: Mapping[str, str]) -> str | None:
    """The one line `envbuild lock` prints about the torch build, or None without torch."""
    if not facts:
        return None
    torch = facts["torch"]
    if facts.get("build") == "cpu":
        return f"torch {torch} (CPU build): needs no NVIDIA driver; runs on the CPU only"
    parts = [f"CUDA {facts['cuda']}"]
    if facts.get("cudnn"):
        parts.append(f"cuDNN {'.'.join(facts['cudnn'].split('.')[:2])}")
    need = f"needs NVIDIA driver >= {facts['min_driver']}" if facts.get("min_driver") else "driver floor unknown"
    return f"torch {torch} ({', '.join(parts)}): {need} on the GPU host"


def driver_problem(facts: Mapping[str, str], driver: str | None) -> tuple[str, str] | None:
    """(why the host driver cannot run the locked build, the fix), or None when it can or there is none."""
    floor = facts.get("min_driver")
    if not floor or not driver or version_key(driver) >= version_key(floor):
        return None
    runs = next((SUGGESTED[m] for m, _, _, f in DRIVER_FLOORS if m in SUGGESTED and version_key(driver) >= version_key(f)),
                None)
    older = f'lock a build this driver runs with cuda = "{runs}" (and its torch source), or ' if runs else ""
    return (f"NVIDIA driver {driver} is older than {floor}, which torch {facts['torch']} (CUDA {facts['cuda']}) needs",
            f"{older}upgrade the driver to >= {floor}")

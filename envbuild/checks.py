"""What envbuild needs from the host, and whether it is there (`envbuild doctor`).

Each check returns a `Check`; the probes go through `_run` and `shutil.which` so tests can
replace them with fakes (the GPU facts come from nvidia.py: tests put a stand-in nvidia-smi on PATH).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from envbuild import engine
from envbuild.fsutil import cache_dir
from envbuild.spec import DEFAULT_BASE

MIN_FREE_GIB = 2  # less than this and a torch image will not build
LOW_FREE_GIB = 10


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    required: bool
    detail: str
    fix: str = ""

    @property
    def status(self) -> str:
        return "ok" if self.ok else ("missing" if self.required else "warn")

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "status": self.status}


def _run(args: list[str], timeout: float = 20) -> tuple[int, str]:
    """(exit code, stdout) of a probe; (127, "") when it cannot run at all."""
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return 127, ""
    return proc.returncode, proc.stdout.strip()


def check_python() -> Check:
    v = sys.version_info
    ok = v >= (3, 10)
    return Check("python", ok, True, f"{v.major}.{v.minor}.{v.micro} ({sys.executable})",
                 "" if ok else "install Python >= 3.10 and reinstall envbuild with it")


def check_docker() -> Check:
    from envbuild.engine import FIX

    docker = shutil.which(os.environ.get("ENVBUILD_DOCKER", "docker"))
    if not docker:
        return Check("docker engine", False, True, "docker CLI not on PATH",
                     "install Docker (Debian: sudo make docker-up)")
    rc, out = _run([docker, "version", "--format", "{{.Server.Version}} {{.Client.Version}}"])
    parts = out.split()
    if rc != 0 or len(parts) != 2:
        return Check("docker engine", False, True, "not reachable", FIX)
    return Check("docker engine", True, True, f"engine {parts[0]}, CLI {parts[1]}, reachable")


def check_registry(registry: str, why: str) -> Check:
    from envbuild.errors import RegistryError
    from envbuild.registry import ping

    try:
        ping(registry)
    except RegistryError as e:
        return Check("registry", False, True, f"{registry} ({why}): {e}".split(";")[0],
                     "make docker-up (loopback registry), or check the base's registry")
    return Check("registry", True, True, f"{registry} ({why}) reachable")


def check_gpus(found: list[dict[str, Any]]) -> Check:
    """The host's GPUs (`found`: nvidia.gpus(), the one nvidia-smi query doctor makes)."""
    if not found:
        why = "nvidia-smi not found" if not shutil.which("nvidia-smi") else "nvidia-smi lists no GPU"
        return Check("nvidia gpus", False, False, f"none ({why}): runs use the CPU",
                     "optional: install the NVIDIA driver and nvidia-container-toolkit to use GPUs")
    names = "; ".join(f"{g['index']}: {g['name']} {g['memory']}" + (f" (sm {g['compute_capability']})"
                      if g.get("compute_capability") else "") for g in found)
    detail = f"{len(found)} ({names}), driver {found[0]['driver']}"
    if not engine.nvidia_toolkit():
        return Check("nvidia gpus", False, False, detail + "; nvidia-container-toolkit missing",
                     "optional: install nvidia-container-toolkit so `docker run --gpus` works")
    return Check("nvidia gpus", True, False, detail)


def check_driver(cuda_facts: dict[str, str], found: list[dict[str, Any]]) -> Check:
    """The host driver against the project's locked torch build: a failed check when it is too old."""
    from envbuild.nvidia import driver_status

    ok, detail, fix = driver_status(cuda_facts, found)
    return Check("nvidia driver", ok, bool(cuda_facts.get("min_driver")), detail, fix)


def check_disk(path: Path | None = None) -> Check:
    """Free space where images and the envbuild cache go."""
    path = path or cache_dir()
    while not path.exists():
        path = path.parent
    free = shutil.disk_usage(path).free / 2**30
    detail = f"{free:.1f} GiB free at {path}"
    if free < MIN_FREE_GIB:
        return Check("free disk", False, True, detail, f"free at least {MIN_FREE_GIB} GiB (docker system prune)")
    if free < LOW_FREE_GIB:
        return Check("free disk", False, False, detail + " (low)", "images with torch need several GiB")
    return Check("free disk", True, True, detail)


def check_tool(name: str, required: bool, use: str, fix: str) -> Check:
    """A command-line tool on PATH, with the first line of its --version."""
    path = shutil.which(name)
    if not path:
        return Check(name, False, required, f"not on PATH ({use})", fix)
    rc, out = _run([path, "--version"])
    version = out.splitlines()[0] if rc == 0 and out else path
    return Check(name, True, required, f"{version} ({use})")


def check_debootstrap() -> Check:
    # debootstrap has no --version: its presence (and root) is what `base bootstrap` needs
    path = shutil.which("debootstrap")
    if not path:
        return Check("debootstrap", False, False, "not on PATH (only `envbuild base bootstrap` needs it)",
                     "optional: apt-get install debootstrap (Debian), or push a base image by other means")
    root = os.geteuid() == 0
    return Check("debootstrap", root, False, f"{path}{'' if root else ', but not root'} (for base bootstrap)",
                 "" if root else "run `envbuild base bootstrap` as root")


def run_checks(base: str = DEFAULT_BASE, why: str = "default base",
               cuda_facts: dict[str, str] | None = None) -> list[Check]:
    """Every check, in the order the table shows them; `cuda_facts`: the project's locked torch build."""
    from envbuild.nvidia import gpus
    from envbuild.registry import parse_reference

    found = gpus()
    return [
        check_docker(),
        check_registry(parse_reference(base).registry, why),
        check_gpus(found),
        check_driver(cuda_facts or {}, found),
        check_disk(),
        check_tool("git", True, "code provenance in run records", "install git (Debian: apt-get install git)"),
        check_debootstrap(),
        check_python(),
    ]

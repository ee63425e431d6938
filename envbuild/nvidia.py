"""What the host has for GPUs: its NVIDIA driver version and its GPUs, read once.

The driver is read where uv reads it: an override variable (ENVBUILD_CUDA_DRIVER_VERSION, for CI
and tests), /sys/module/nvidia/version, /proc/driver/nvidia/version, then nvidia-smi. The GPUs
come from ONE nvidia-smi query that `doctor` (checks.py) and the run record (provenance.py) share.
`driver_status` is the one judgement of driver vs lock that `run`, `doctor` and `verify` make.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Mapping

from envbuild import cuda
from envbuild.record import CUDA_FILE

DRIVER_ENV = "ENVBUILD_CUDA_DRIVER_VERSION"
CAPABILITIES_ENV = "ENVBUILD_GPU_CAPABILITIES"  # for the in-image hook: "9.0,8.6", one per visible GPU
SYS_VERSION = Path("/sys/module/nvidia/version")
PROC_VERSION = Path("/proc/driver/nvidia/version")
QUERY = ("index", "name", "driver_version", "memory.total", "uuid", "compute_cap")
_KEYS = ("index", "name", "driver", "memory", "uuid", "compute_capability")


def _smi(fields: tuple[str, ...]) -> list[list[str]] | None:
    """Rows of `nvidia-smi --query-gpu=FIELDS`, or None when it is missing or fails."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return None
    try:
        proc = subprocess.run([smi, f"--query-gpu={','.join(fields)}", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    return [[f.strip() for f in line.split(",")] for line in proc.stdout.splitlines() if line.strip()]


def gpus(rows: list[list[str]] | None = None) -> list[dict[str, Any]]:
    """[{index, name, driver, memory, uuid, compute_capability, cuda}] of the host's NVIDIA GPUs;
    [] without nvidia-smi. `cuda` is the newest CUDA release the driver shipped with or after.
    `rows`: nvidia-smi's answer to QUERY asked elsewhere (another host, over ssh)."""
    if rows is None:
        rows = _smi(QUERY)
    if rows is None:  # drivers before ~510 do not know compute_cap: ask without it
        rows = [r + [""] for r in _smi(QUERY[:-1]) or []]
    out = []
    for row in rows:
        if len(row) != len(QUERY):  # not an answer to this query (a warning line, a name with a comma)
            continue
        gpu: dict[str, Any] = dict(zip(_KEYS, row))
        gpu["compute_capability"] = gpu["compute_capability"] or None
        gpu["cuda"] = cuda.driver_cuda(gpu["driver"]) if gpu["driver"] else None
        out.append(gpu)
    return out


def driver_version(found: list[dict[str, Any]] | None = None) -> tuple[str | None, str]:
    """(the host's NVIDIA driver version, where it was read), or (None, why not)."""
    override = os.environ.get(DRIVER_ENV, "").strip()
    if override:
        return override, DRIVER_ENV
    for path in (SYS_VERSION, PROC_VERSION):
        try:
            text = path.read_text()
        except OSError:
            continue
        m = re.search(r"(?:^|\s)(\d+\.\d+(?:\.\d+)?)(?:\s|$)", text)
        if m:
            return m.group(1), str(path)
    found = gpus() if found is None else found
    if found and found[0].get("driver"):
        return found[0]["driver"], "nvidia-smi"
    return None, "no NVIDIA driver found (no nvidia module, no nvidia-smi)"


def driver_status(facts: Mapping[str, str], found: list[dict[str, Any]] | None = None) -> tuple[bool, str, str]:
    """(ok, detail, fix) of this host's driver for the locked torch build."""
    driver, where = driver_version(found)
    floor = facts.get("min_driver")
    if driver is None:
        need = f"; the locked CUDA {facts['cuda']} build runs on the CPU here" if floor else ""
        return True, where + need, ""
    problem = cuda.driver_problem(facts, driver)
    if problem:
        return False, f"{driver} (from {where}): {problem[0]}", problem[1]
    if floor:
        return True, f"{driver} (from {where}) >= {floor}, which torch {facts['torch']} (CUDA {facts['cuda']}) needs", ""
    return True, f"{driver} (from {where})", ""


def capabilities(found: list[dict[str, Any]], selection: str | None) -> str:
    """The compute capabilities of the GPUs a run gets (`--gpus all|N|device=0,GPU-..`), comma-joined."""
    chosen = found
    if selection and selection.startswith("device="):
        wanted = selection.split("=", 1)[1].split(",")
        chosen = [g for g in found if g.get("index") in wanted or g.get("uuid") in wanted]
    elif selection and selection.isdigit():
        chosen = found[: int(selection)]
    return ",".join(g["compute_capability"] for g in chosen if g.get("compute_capability"))


def preflight(facts: Mapping[str, str], selection: str | None) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Before a run, nothing started yet: (the host's GPUs, for the record; the container variables
    for the in-image check). A GPU run whose driver is older than the locked build needs is refused."""
    from envbuild.errors import EXIT_USAGE, EnvbuildError

    found = gpus()
    if not selection:
        return found, {}
    problem = cuda.driver_problem(facts, driver_version(found)[0])
    if problem:
        raise EnvbuildError(f"{problem[0]}; {problem[1]}", EXIT_USAGE)
    caps = capabilities(found, selection)
    return found, {CAPABILITIES_ENV: caps} if caps else {}


def torch_seen(run_dir: Path) -> dict[str, Any] | None:
    """What torch saw inside the container (runtime/site/envbuild_hook.py writes cuda.json), or None
    when the run never imported torch."""
    import json

    try:
        return json.loads((Path(run_dir) / CUDA_FILE).read_text())
    except (OSError, ValueError):
        return None

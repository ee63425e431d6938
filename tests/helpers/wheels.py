"""Small stand-in wheels for lock and build tests: torch builds with local versions (+cpu, +cu128)
and nvidia-* libraries, written into a find-links directory."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def make_wheel(dest: Path, name: str, version: str, requires: tuple[str, ...] = (), *,
               files: dict[str, str] | None = None) -> Path:
    """A minimal pure-Python wheel `name-version-py3-none-any.whl` in `dest`, with Requires-Dist lines."""
    dest.mkdir(parents=True, exist_ok=True)
    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    meta = "".join([f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
                    *(f"Requires-Dist: {r}\n" for r in requires)])
    contents = {f"{dist}/__init__.py": f"__version__ = {version!r}\n", **(files or {}),
                f"{info}/METADATA": meta,
                f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: envbuild-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = "".join(f"{p},{_record_hash(t.encode())},{len(t.encode())}\n" for p, t in contents.items())
    path = dest / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for p, text in [*contents.items(), (f"{info}/RECORD", record + f"{info}/RECORD,,\n")]:
            zi = zipfile.ZipInfo(p, date_time=(1980, 1, 1, 0, 0, 0))
            z.writestr(zi, text)
    return path


CU128_LIBS = {"nvidia-cuda-runtime-cu12": "12.8.90", "nvidia-cudnn-cu12": "9.10.2.21", "nvidia-nccl-cu12": "2.27.3"}
CU130_LIBS = {"nvidia-cuda-runtime": "13.0.96", "nvidia-cudnn-cu13": "9.13.0.50", "nvidia-nccl-cu13": "2.28.3",
              "nvidia-cublas": "13.4.1.3"}


def torch_builds(root: Path, version: str = "2.15.0") -> dict[str, Path]:
    """Find-links directories: {"cpu": torch+cpu (no nvidia-*), "cu128": torch+cu128 with its nvidia-* libraries,
    "default": torch without a local version, needing the CUDA 13 libraries (as the public index's build)}."""
    dirs = {"cpu": root / "cpu", "cu128": root / "cu128", "default": root / "default"}
    make_wheel(dirs["cpu"], "torch", f"{version}+cpu")
    make_wheel(dirs["cu128"], "torch", f"{version}+cu128", tuple(f"{n}=={v}" for n, v in CU128_LIBS.items()))
    for n, v in CU128_LIBS.items():
        make_wheel(dirs["cu128"], n, v)
    make_wheel(dirs["default"], "torch", version, tuple(f"{n}=={v}" for n, v in CU130_LIBS.items()))
    for n, v in CU130_LIBS.items():
        make_wheel(dirs["default"], n, v)
    return dirs

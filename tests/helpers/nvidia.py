"""A stand-in NVIDIA host: an nvidia-smi script on PATH that answers the query envbuild makes, and a
container-toolkit binary, so `--gpus` is accepted."""

from __future__ import annotations

from pathlib import Path

# what an H200 host's nvidia-smi printed for nvidia.QUERY
H200 = "0, NVIDIA H200, 580.65.06, 143771 MiB, GPU-07a466ee-866c-ad45-6157-a8affb1feafe, 9.0"
P100 = "1, Tesla P100-PCIE-16GB, 580.65.06, 16384 MiB, GPU-5b1e0000-0000-0000-0000-00000000p100, 6.0"


def fake_nvidia(bin_dir: Path, *rows: str, driver: str | None = None, toolkit: bool = True) -> Path:
    """Write nvidia-smi (printing `rows`, with `driver` in place of theirs when given) and nvidia-ctk into bin_dir."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    if driver:
        rows = tuple(", ".join([*r.split(", ")[:2], driver, *r.split(", ")[3:]]) for r in rows)
    smi = bin_dir / "nvidia-smi"
    smi.write_text("#!/bin/sh\nprintf '%s\\n'" + "".join(f" '{r}'" for r in rows) + "\n")  # a builtin: no PATH needed
    smi.chmod(0o755)
    if toolkit:
        ctk = bin_dir / "nvidia-ctk"
        ctk.write_text("#!/bin/sh\nexit 0\n")
        ctk.chmod(0o755)
    return bin_dir

"""Every spelling of a target platform, in one table.

A spec names a platform as Docker does (`linux/amd64`); each tool wants its own word for it:
the OCI config (GOARCH and variant), wheel tags and `uname -m` (x86_64), uv's `--python-platform`,
conda's subdir, Debian's architecture, and the qemu-user binfmt handler that runs it elsewhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Platform:
    name: str  # linux/amd64: what specs, locks and docker say
    goarch: str  # amd64: the OCI config's "architecture"
    variant: str | None  # v8 for arm64, as registries list it
    machine: str  # x86_64: uname -m, wheel tags, PEP 508 platform_machine, conda __archspec
    uv: str  # uv pip compile --python-platform (manylinux for Debian bookworm's glibc)
    conda: str  # conda subdir
    deb: str  # Debian architecture
    qemu: str  # the binfmt_misc handler that runs it on another machine


ALL = (
    Platform("linux/amd64", "amd64", None, "x86_64", "x86_64-manylinux_2_36", "linux-64", "amd64", "qemu-x86_64"),
    Platform("linux/arm64", "arm64", "v8", "aarch64", "aarch64-manylinux_2_36", "linux-aarch64", "arm64",
             "qemu-aarch64"),
)
BY_NAME = {p.name: p for p in ALL}
NAMES = tuple(BY_NAME)
_MACHINES = {"x86_64": "linux/amd64", "amd64": "linux/amd64", "aarch64": "linux/arm64", "arm64": "linux/arm64"}


def get(name: str) -> Platform:
    """The platform named `name`; KeyError for one envbuild does not build."""
    return BY_NAME[name]


def by_conda(subdir: str) -> Platform | None:
    return next((p for p in ALL if p.conda == subdir), None)


def by_deb(arch: str) -> Platform | None:
    return next((p for p in ALL if p.deb == arch), None)


def from_machine(machine: str) -> str | None:
    """The platform name of a `uname -m` (or Debian/Go) machine word, None when envbuild has none."""
    return _MACHINES.get(machine.lower())


def host() -> str | None:
    """This machine's platform (the local engine's, for a local engine)."""
    return from_machine(os.uname().machine)


def choose(locked: list[str] | tuple[str, ...], wanted: str | None) -> str:
    """The platform to build or run for a lock's platforms: `wanted`, else the engine's own, else the
    lock's only one (a cross-platform build)."""
    from envbuild.errors import EnvbuildError

    platform = wanted or host() or locked[0]
    if platform not in locked:
        if wanted is None and len(locked) == 1:
            return locked[0]
        raise EnvbuildError(f"envbuild.lock is for {', '.join(locked)}, not {platform}; add \"{platform}\" "
                            "to platforms and run envbuild lock")
    if platform not in BY_NAME:
        raise EnvbuildError(f"platform {platform}: envbuild builds {', '.join(NAMES)}")
    return platform

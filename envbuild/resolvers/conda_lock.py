"""conda-lock itself, used when a conda, mamba or micromamba executable is on PATH.

conda-lock solves by running that executable (`create --dry-run --json`); without one it would
try to download micromamba, which fails offline, so `available()` decides between this module
and the py-rattler solver. conda-lock locks the `pip:` section itself (manager: pip entries).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Sequence

from envbuild.resolvers import ResolverInfo, failure, run_tool, tool, tool_version
from envbuild.resolvers.conda_env import SUBDIRS

NAME = "conda-lock"
EXECUTABLES = ("micromamba", "mamba", "conda")


def available() -> str | None:
    """Path of the first conda-like executable on PATH, or None."""
    for name in EXECUTABLES:
        found = shutil.which(name)
        if found:
            return found
    return None


def version() -> str:
    return tool_version([tool("conda-lock"), "--version"])


def resolve(spec: Any, out_path: Path, upgrade: bool = False, upgrade_packages: Sequence[str] = (),
            previous: Path | None = None) -> ResolverInfo:
    exe = available()
    assert exe, "conda_lock.resolve needs a conda executable; check available() first"
    with tempfile.TemporaryDirectory(prefix="envbuild-conda-lock-") as tmp:
        out = Path(tmp) / "conda-lock.yml"
        if previous is not None and previous.is_file() and not upgrade:
            shutil.copyfile(previous, out)  # conda-lock keeps unchanged pins of an existing lockfile
        args = [tool("conda-lock"), "lock", "--file", str(spec.conda), "--lockfile", str(out), "--conda", exe,
                *[a for p in spec.platforms for a in ("--platform", SUBDIRS[p])]]
        for name in upgrade_packages:
            args += ["--update", name]
        proc = run_tool(args, cwd=spec.root)
        if proc.returncode != 0 or not out.is_file():
            raise failure("conda-lock", proc.stderr + proc.stdout)
        shutil.copyfile(out, out_path)
    return ResolverInfo(NAME, version())


def conda_solver() -> Any:
    """The module that locks environment.yml here: conda-lock with an executable, else rattler."""
    if available():
        return sys.modules[__name__]
    from envbuild.resolvers import rattler

    return rattler

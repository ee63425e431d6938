"""Lock inputs for build tests, made with the real pip-compile.

The one place tests create a locked project. MERGE: once `envbuild lock` is on main, replace the
body of `make_locked_project` with running `envbuild lock` on the written project.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from envbuild import __version__
from envbuild.fsutil import sha256_file
from envbuild.lockfile import REQUIREMENTS_LOCK, Base, EnvLock, write_lock
from envbuild.registry import resolve

PIP_COMPILE = "/work/venv/bin/pip-compile"


def write_project(root: Path, name: str, requirements: list[str], *, base: str, image: str | None = None) -> None:
    root.mkdir(parents=True, exist_ok=True)
    extra = f'image = "{image}"\n' if image else ""
    (root / "pyproject.toml").write_text(f'[tool.envbuild]\nname = "{name}"\nbase = "{base}"\n{extra}')
    (root / "requirements.in").write_text("".join(r + "\n" for r in requirements))
    (root / "train.py").write_text("print('hello')\n")


def lock_project(root: Path, *, base: str) -> EnvLock:
    """requirements.in -> requirements.lock (pip-compile, hashed) and envbuild.lock."""
    subprocess.run([PIP_COMPILE, "-q", "--generate-hashes", "--allow-unsafe", "--no-emit-index-url",
                    "--no-emit-find-links", "--strip-extras", "-o", REQUIREMENTS_LOCK, "requirements.in"],
                   cwd=root, check=True, capture_output=True)
    resolved = resolve(base)
    inputs = {"requirements.in": sha256_file(root / "requirements.in")}
    lock = EnvLock(
        envbuild=__version__, python="3.11", platforms=["linux/amd64"],
        inputs_hash=inputs["requirements.in"], inputs=inputs,
        base=Base(tag=base, digest=resolved.digest, platforms=resolved.platforms),
        lockfiles={REQUIREMENTS_LOCK: sha256_file(root / REQUIREMENTS_LOCK)},
        resolver={"name": "pip-tools", "version": "7"},
    )
    write_lock(root, lock)
    return lock


def make_locked_project(root: Path, name: str, requirements: list[str], *, base: str,
                        image: str | None = None) -> EnvLock:
    write_project(root, name, requirements, base=base, image=image)
    return lock_project(root, base=base)

"""The one place tests (and bench/build.py) make a locked project: the real `envbuild lock`."""

from __future__ import annotations

from pathlib import Path

from envbuild.errors import EnvbuildError
from envbuild.lockfile import EnvLock, require_lock
from envbuild.locker import lock_project as _lock
from envbuild.spec import load_spec


def write_project(root: Path, name: str, requirements: list[str], *, base: str, image: str | None = None) -> None:
    root.mkdir(parents=True, exist_ok=True)
    extra = f'image = "{image}"\n' if image else ""
    (root / "pyproject.toml").write_text(f'[tool.envbuild]\nname = "{name}"\nbase = "{base}"\n{extra}')
    (root / "requirements.in").write_text("".join(r + "\n" for r in requirements))
    (root / "train.py").write_text("print('hello')\n")


def lock_project(root: Path, *, base: str) -> EnvLock:
    """requirements.in -> requirements.lock (pip-tools, hashed) and envbuild.lock, as `envbuild lock` does."""
    spec = load_spec(root)
    if spec.base != base:
        raise EnvbuildError(f"{root}: spec base {spec.base} is not {base}")
    _lock(spec)
    return require_lock(root)


def make_locked_project(root: Path, name: str, requirements: list[str], *, base: str,
                        image: str | None = None) -> EnvLock:
    write_project(root, name, requirements, base=base, image=image)
    return lock_project(root, base=base)

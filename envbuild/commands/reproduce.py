"""envbuild reproduce (not built yet)."""

from __future__ import annotations

from envbuild.errors import EnvbuildError


def reproduce() -> None:
    """Not built yet."""
    raise EnvbuildError("envbuild reproduce is not built yet")

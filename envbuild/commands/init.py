"""envbuild init (not built yet)."""

from __future__ import annotations

from envbuild.errors import EnvbuildError


def init() -> None:
    """Not built yet."""
    raise EnvbuildError("envbuild init is not built yet")

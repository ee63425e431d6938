"""envbuild verify (not built yet)."""

from __future__ import annotations

from envbuild.errors import EnvbuildError


def verify() -> None:
    """Not built yet."""
    raise EnvbuildError("envbuild verify is not built yet")
